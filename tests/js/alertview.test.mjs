// How the alert log, the silences and a card's held mark read
// (static/dashboard/alertview.js): pure functions, run with node --test tests/js/.

import { test } from "node:test";
import assert from "node:assert/strict";

import { alertRowView, emptyLogText, holdText, markDelay, silenceBody, silenceView } from "../../static/dashboard/alertview.js";
import { clock } from "../../static/dashboard/format.js";

const AT = Date.UTC(2026, 11, 4, 13, 2, 10);

function row(state, extra = {}) {
  return {
    key: "k1", channel: "hook", state, attempts: 1, created_ms: AT, updated_ms: AT, next_ms: null,
    answer: null, title: "billing is down: connection refused",
    alerts: [{ service: "billing", kind: "down" }], ...extra,
  };
}

test("every state reads as a shape and a word, never a colour alone", () => {
  const words = ["sent", "retrying", "failed", "held", "pending"].map((s) => {
    const v = alertRowView(row(s));
    return v.shape + " " + v.word;
  });
  assert.deepEqual(words, ["✓ sent", "↻ retrying", "✕ failed", "‖ held", "◌ pending"]);
  assert.equal(alertRowView(row("odd")).word, "odd"); // a state the page does not know yet
});

test("a row carries the local time, the channel and the services it speaks of", () => {
  const v = alertRowView(row("sent"));
  assert.equal(v.time, clock(AT));
  assert.match(v.time, /^\d\d:\d\d:\d\d$/);
  assert.equal(v.channel, "hook");
  assert.deepEqual(v.services, ["billing"]);
  assert.equal(v.title, "billing is down: connection refused");
  assert.equal(v.detail, "");
});

test("retrying says the next try, failed the receiver's answer, held why", () => {
  const next = AT + 9000;
  assert.equal(alertRowView(row("retrying", { next_ms: next, answer: "500" })).detail, "next try " + clock(next) + " · 500");
  assert.equal(alertRowView(row("failed", { answer: "connection refused" })).detail, "answer: connection refused");
  const held = alertRowView(row("held", { channel: "-", answer: "silenced: deploy" }));
  assert.equal(held.detail, "silenced: deploy");
  assert.equal(held.channel, "not sent");
});

test("without a title the services are the title", () => {
  const v = alertRowView(row("sent", { title: null, alerts: [{ service: "db" }, { service: "api" }, { service: "db" }] }));
  assert.equal(v.title, "db, api");
});

test("an empty log without channels says what to add to config.toml", () => {
  assert.match(emptyLogText([]), /No alert channel is configured.*\[\[channels\]\].*config\.toml/);
  assert.match(emptyLogText(undefined), /\[\[channels\]\]/);
  assert.equal(emptyLogText(["hook"]), "No alerts yet: one is sent to hook when a service changes state.");
});

test("a silence reads as its services, its end in local HH:MM and its comment", () => {
  const v = silenceView({ id: "s1", services: ["*"], until_ms: AT, comment: "deploy" });
  assert.deepEqual(v, { id: "s1", services: "all services", until: "until " + clock(AT).slice(0, 5), comment: "deploy" });
  assert.equal(silenceView({ id: "s2", services: ["pay*", "auth"], until_ms: AT, comment: null }).comment, "");
});

test("the held mark says until when, if known", () => {
  assert.equal(holdText(null, AT), null);
  assert.equal(holdText("maintenance: backup", null), "Alerts held — maintenance: backup");
  assert.equal(holdText("silenced: deploy", AT), "Alerts held until " + clock(AT).slice(0, 5) + " — silenced: deploy");
});

test("the form's body: a typed pattern wins over the select, a blank comment is left out", () => {
  assert.deepEqual(silenceBody("*", "", "60", ""), { services: ["*"], minutes: 60 });
  assert.deepEqual(silenceBody("auth", " pay* ", "15", " deploy "), { services: ["pay*"], minutes: 15, comment: "deploy" });
});

test("the next look at the marks is at the server's boundary, between 1 s and 60 s away", () => {
  assert.equal(markDelay(null, 0), 60000);
  assert.equal(markDelay(5000, 0), 5250);
  assert.equal(markDelay(-100, 0), 1000);
  assert.equal(markDelay(10 * 60000, 0), 60000);
});
