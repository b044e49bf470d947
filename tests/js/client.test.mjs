// Unit tests of static/client.js, run with Node's own runner: node --test tests/js/
// Each test drives fake transports and a fake clock through the client's seams.

import { test } from "node:test";
import assert from "node:assert/strict";

import { backoffDelay, classifyHealth, createClient } from "../../static/client.js";
import {
  BASE, Clock, fakeEventSource, fakeFetch, fakeWebSocket, heartbeat, settle, snapshot, snapshotServices, update,
} from "./fakes.mjs";

const HEALTH = {
  "http://svc.test:3001/health": { status: 200, body: { status: "pass" } },
  "http://svc.test:3002/health": { status: 200, body: { status: "pass" } },
  "http://svc.test:3003/health": { status: 200, body: { status: "pass" } },
};

function rig(extra = {}) {
  const clock = new Clock();
  const ws = fakeWebSocket();
  const es = fakeEventSource();
  const net = fakeFetch({
    [BASE + "api/services"]: {
      status: 200,
      body: { services: Object.entries(snapshotServices()).map(([name, s]) => ({ name, ...s })), config_error: null },
    },
    ...HEALTH,
    ...(extra.routes || {}),
  });
  const hm = createClient(BASE, {
    WebSocket: ws.FakeWebSocket, EventSource: es.FakeEventSource, fetch: net.fetch,
    now: clock.now, setTimeout: clock.setTimeout, clearTimeout: clock.clearTimeout,
    random: () => 0.5, bind: false, ...(extra.options || {}),
  });
  const seen = { connection: [], change: [] };
  hm.on("connection", (c) => seen.connection.push(c.transport));
  hm.on("change", (c) => seen.change.push(c));
  return { clock, ws, es, net, hm, seen, healthCalls: () => net.calls.filter((u) => u.endsWith("/health")) };
}

/** A rig connected over the WebSocket with a snapshot of stream "s1" at seq 5. */
async function live(extra) {
  const r = rig(extra);
  r.hm.start();
  r.ws.sockets[0].receive({ type: "welcome", stream: "s1", seq: 5 });
  r.ws.sockets[0].receive(snapshot("s1", 5, extra && extra.overrides));
  await settle();
  return r;
}

test("backoff is exponential to the cap with full jitter", () => {
  for (const [attempt, cap] of [[0, 1000], [1, 2000], [3, 8000], [10, 10000]]) {
    assert.equal(backoffDelay(attempt, 1000, 10000, () => 1), cap);
    assert.equal(backoffDelay(attempt, 1000, 10000, () => 0.5), cap / 2);
    assert.equal(backoffDelay(attempt, 1000, 10000, () => 0), 100, "never a busy loop");
  }
});

test("health answers are read as healthmon reads them", () => {
  const cases = [
    [200, "", "up"],
    [200, '{"status":"pass"}', "up"],
    [200, '{"status":"warn","output":"slow disk"}', "degraded"],
    [200, '{"status":"pass","checks":{"db":[{"status":"fail","output":"gone"}]}}', "down"],
    [503, '{"status":"fail","output":"db gone"}', "down"],
    [200, "OK", "up"],
    [500, "", "down"],
  ];
  for (const [code, body, want] of cases) assert.equal(classifyHealth(code, body).status, want, `${code} ${body}`);
  assert.equal(classifyHealth(503, '{"output":"db gone"}').reason, "HTTP 503: db gone");
  assert.equal(classifyHealth(200, '{"checks":{"db":{"status":"warn","observedValue":9,"observedUnit":"ms"}}}').checks[0].observed, "9 ms");
});

test("a status word healthmon does not know is never read as up", () => {
  const cases = [
    ['{"status":"unhealthy"}', "degraded", "unknown status 'unhealthy'"],
    ['{"status":"failed","output":"db"}', "degraded", "unknown status 'failed': db"],
    ['{"status":"CRITICAL"}', "degraded", "unknown status 'CRITICAL'"],
    ['{"status":false}', "degraded", "unknown status false"],
    ['{"status":null}', "degraded", "unknown status null"],
    ['{"status":"OUT_OF_SERVICE"}', "down", "health status: out_of_service"],
    ['{"status":"UNKNOWN"}', "degraded", "health status: unknown"],
    ['{"status":"pass","checks":{"db":[{"status":"unhealthy"}]}}', "degraded", "db: warn: unknown status 'unhealthy'"],
    ['{"status":"pass","checks":{"db":[{"status":"unhealthy"},{"status":"fail"}]}}', "down", "db: fail (+1 more)"],
    ['{"status":"pass","checks":{"db":[{"observedValue":3}]}}', "up", null],
  ];
  for (const [body, status, reason] of cases) {
    const read = classifyHealth(200, body);
    assert.deepEqual([read.status, read.reason], [status, reason], body);
  }
});

test("a snapshot over the WebSocket gives every service's status and resolves ready", async () => {
  const r = await live({ overrides: { billing: { status: "down", reason: "connection refused" } } });
  const hm = await r.hm.ready;
  assert.equal(hm, r.hm);
  assert.deepEqual(r.hm.names(), ["auth", "billing", "db"]);
  const billing = r.hm.status("billing");
  assert.equal(billing.status, "down");
  assert.equal(billing.up, false);
  assert.equal(billing.stale, false);
  assert.equal(billing.reason, "connection refused");
  assert.equal(billing.source, "websocket");
  assert.equal(r.hm.connection().transport, "websocket");
  assert.equal(r.ws.sockets[0].url, "ws://hm.test:4000/ws");
  assert.deepEqual(r.healthCalls(), [], "no polling while live");
});

test("a status update changes the state and fires one change event", async () => {
  const r = await live();
  r.seen.change.length = 0;
  r.ws.sockets[0].receive(update("s1", 6, "auth", "degraded"));
  assert.equal(r.hm.status("auth").status, "degraded");
  assert.equal(r.seen.change.length, 1);
  assert.equal(r.seen.change[0].name, "auth");
  assert.equal(r.seen.change[0].previous.status, "up");
  assert.equal(r.seen.change[0].current.status, "degraded");
});

test("a message already applied (same stream, seq not newer) is ignored", async () => {
  const r = await live();
  r.ws.sockets[0].receive(update("s1", 6, "auth", "down"));
  r.ws.sockets[0].receive(update("s1", 6, "auth", "up"));
  r.ws.sockets[0].receive(update("s1", 4, "auth", "up"));
  assert.equal(r.hm.status("auth").status, "down");
  assert.equal(r.hm.position(), "s1:6");
});

test("a reconnect resumes with ?since=stream:seq and applies only what was missed", async () => {
  const r = await live({ options: { transports: ["websocket", "polling"] } });
  r.ws.sockets[0].receive(update("s1", 6, "auth", "down"));
  r.ws.sockets[0].serverClose(1006);
  await r.clock.advance(0);
  await r.clock.advance(10000);
  const again = r.ws.sockets.at(-1);
  assert.equal(again.url, "ws://hm.test:4000/ws?since=s1%3A6");
  again.receive({ type: "welcome", stream: "s1", seq: 8 });
  again.receive(update("s1", 7, "billing", "down"));
  again.receive(update("s1", 8, "auth", "up"));
  assert.equal(r.hm.status("billing").status, "down");
  assert.equal(r.hm.status("auth").status, "up");
  assert.equal(r.hm.position(), "s1:8");
  assert.equal(r.hm.connection().transport, "websocket");
});

test("a hole in the sequence fetches the document to fill it", async () => {
  const r = await live();
  r.ws.sockets[0].receive(update("s1", 9, "auth", "down"));
  await r.clock.advance(0);
  assert.ok(r.net.calls.includes(BASE + "api/services"));
});

test("with the WebSocket switched off the client moves to SSE at once, resuming, and does not poll", async () => {
  const r = await live();
  r.ws.sockets[0].serverClose(1001);
  assert.equal(r.es.sources.length, 1, "SSE tried at once, no backoff");
  assert.equal(r.es.sources[0].url, "http://hm.test:4000/events?since=s1%3A5");
  r.es.sources[0].receive("welcome", { stream: "s1", seq: 6 });
  r.es.sources[0].receive("statusUpdate", update("s1", 6, "billing", "down"));
  assert.equal(r.hm.connection().transport, "sse");
  assert.equal(r.hm.status("billing").source, "sse");
  assert.equal(r.hm.status("billing").status, "down");
  // Heartbeats keep the stream alive; nothing polls while it works.
  for (let i = 0; i < 5; i++) {
    await r.clock.advance(1000);
    r.es.sources[0].receive("heartbeat", heartbeat());
  }
  assert.deepEqual(r.healthCalls(), []);
  assert.ok(!r.seen.connection.includes("polling"));
});

test("a historyState event on SSE reaches the page's message listeners, as on the WebSocket", async () => {
  const r = await live();
  const heard = [];
  r.hm.on("message", ({ message, via }) => { if (message.type === "historyState") heard.push([via, message.history]); });
  const state = { available: false, problem: "the disk is full" };
  r.ws.sockets[0].receive({ type: "historyState", history: state, ts: 1 });
  r.ws.sockets[0].serverClose(1001);
  r.es.sources[0].receive("welcome", { stream: "s1", seq: 5 });
  r.es.sources[0].receive("historyState", { type: "historyState", history: { available: true, problem: null }, ts: 2 });
  assert.deepEqual(heard, [["websocket", state], ["sse", { available: true, problem: null }]]);
});

test("while on SSE it probes the WebSocket with backoff and returns to it when it works", async () => {
  const r = await live();
  r.ws.sockets[0].serverClose(1001);
  const sse = r.es.sources[0];
  sse.receive("welcome", { stream: "s1", seq: 5 });
  // The first probe fails (still switched off): the next waits longer.
  await r.clock.advance(600);
  assert.equal(r.ws.sockets.length, 2);
  r.ws.sockets[1].serverClose(1006);
  sse.receive("heartbeat", heartbeat());
  await r.clock.advance(900);
  assert.equal(r.ws.sockets.length, 2, "backoff doubled: no probe yet");
  sse.receive("heartbeat", heartbeat());
  await r.clock.advance(300);
  assert.equal(r.ws.sockets.length, 3);
  const back = r.ws.sockets[2];
  assert.equal(back.url, "ws://hm.test:4000/ws?since=s1%3A5");
  back.receive({ type: "welcome", stream: "s1", seq: 5 });
  assert.equal(r.hm.connection().transport, "websocket");
  assert.equal(sse.closed, true, "the worse channel is dropped");
  assert.equal(r.hm.connection().transport, "websocket");
});

test("with both channels off it polls each health URL, and stops when a channel works", async () => {
  const r = await live();
  r.ws.sockets[0].serverClose(1001);
  r.es.sources[0].fail(true);
  await r.clock.advance(0);
  assert.equal(r.hm.connection().transport, "polling");
  assert.match(r.hm.connection().reason, /Server-Sent Events/);
  assert.deepEqual(r.healthCalls().sort(), Object.keys(HEALTH).sort());
  assert.equal(r.hm.status("auth").source, "polling");
  const before = r.healthCalls().length;
  await r.clock.advance(1000);
  assert.equal(r.healthCalls().length, before + 3, "about once a second each");
  // The retry finds the WebSocket back: polling stops.
  const count = r.ws.sockets.length;
  while (r.ws.sockets.length === count) await r.clock.advance(100);
  const back = r.ws.sockets.at(-1);
  back.receive({ type: "welcome", stream: "s1", seq: 5 });
  const polled = r.healthCalls().length;
  await r.clock.advance(2000);
  back.receive(heartbeat());
  assert.equal(r.hm.connection().transport, "websocket");
  assert.ok(r.healthCalls().length <= polled + 3, "at most the requests already in flight");
});

async function pollingWith(routes) {
  const r = await live({ routes });
  r.ws.sockets[0].serverClose(1001);
  r.es.sources[0].fail(true);
  await r.clock.advance(0);
  assert.equal(r.hm.connection().transport, "polling");
  return r;
}

test("a service that answers without CORS is never shown down, and is polled no more", async () => {
  const url = "http://svc.test:3002/health";
  const r = await pollingWith({ [url]: { status: 200, body: { status: "pass" }, cors: false } });
  const billing = r.hm.status("billing");
  assert.equal(billing.status, "up", "its last pushed state stays");
  assert.match(billing.unreadable, /^can't check from this page/);
  assert.equal(r.hm.service("billing").unreadable, billing.unreadable);
  const asked = r.net.calls.filter((u) => u === url).length;
  assert.equal(asked, 2, "one read, one opaque request");
  await r.clock.advance(5000);
  assert.equal(r.net.calls.filter((u) => u === url).length, asked, "not polled again");
  assert.equal(r.hm.status("auth").source, "polling", "the others are");
  assert.ok(r.seen.change.every((c) => c.name !== "billing" || c.current.status !== "down"));
  // Its state is not confirmed, and gating says why.
  assert.equal(r.hm.status("billing").stale, true);
  const verdict = r.hm.verdict({ requires: ["billing"] });
  assert.equal(verdict.allowed, false);
  assert.equal(verdict.cause, "unknown");
  assert.match(verdict.reason, /^this page can't check billing: .*\(last known: up\)$/);
});

test("a service that refuses connections is shown down by the page's own poll", async () => {
  const url = "http://svc.test:3002/health";
  const r = await pollingWith({ [url]: undefined });
  const billing = r.hm.status("billing");
  assert.deepEqual([billing.status, billing.source, billing.unreadable], ["down", "polling", null]);
  assert.equal(billing.reason, "no answer: connection refused or network error");
});

test("a dead monitor makes the client poll while the socket stays open", async () => {
  const r = await live();
  r.ws.sockets[0].receive(heartbeat(false));
  await r.clock.advance(0);
  assert.equal(r.hm.connection().transport, "polling");
  assert.equal(r.hm.connection().channel, "websocket");
  assert.match(r.hm.connection().reason, /monitor/);
  assert.ok(r.healthCalls().length >= 3);
  assert.equal(r.ws.sockets[0].closedWith, null);
  r.ws.sockets[0].receive(heartbeat(true));
  assert.equal(r.hm.connection().transport, "websocket");
});

test("a silent channel is dropped after silenceMs", async () => {
  const r = await live({ options: { transports: ["websocket", "polling"] } });
  await r.clock.advance(3300);
  assert.notEqual(r.ws.sockets[0].closedWith, null);
  assert.equal(r.hm.connection().transport, "polling");
  assert.match(r.hm.connection().reason, /silent/);
});

test("a service whose checks stopped turns stale, and stale reads as unknown for gating", async () => {
  const r = await live();
  assert.equal(r.hm.verdict({ requires: ["auth"] }).allowed, true);
  // Heartbeats keep coming but auth's age grows past its stale bound.
  for (let i = 1; i <= 4; i++) {
    await r.clock.advance(1000);
    r.ws.sockets[0].receive(heartbeat(true, { ages: { auth: i * 1000, billing: 0, db: 0 } }));
  }
  assert.equal(r.hm.status("auth").stale, true);
  assert.equal(r.hm.status("auth").status, "up", "the last known status is kept");
  const closed = r.hm.verdict({ requires: ["auth"], whenUnknown: "disable" });
  assert.equal(closed.allowed, false);
  assert.equal(closed.cause, "unknown");
  assert.match(closed.reason, /no fresh check of auth for 4 s/);
  const open = r.hm.verdict({ requires: ["auth"], whenUnknown: "enable" });
  assert.equal(open.allowed, true);
  assert.match(open.warning, /no fresh check of auth/);
});

test("gating: down blocks, degraded blocks only with allow up, reasons in words", async () => {
  const r = await live({ overrides: { auth: { status: "degraded", reason: "slow" }, billing: { status: "down", reason: "HTTP 503" } } });
  assert.deepEqual(r.hm.verdict({ requires: ["billing"] }), {
    allowed: false, cause: "down", reason: "billing is down (HTTP 503)", warning: null,
  });
  assert.equal(r.hm.verdict({ requires: ["auth"], allow: "up" }).allowed, false);
  assert.equal(r.hm.verdict({ requires: ["auth"], allow: "up" }).reason, "auth is degraded (slow)");
  const lenient = r.hm.verdict({ requires: ["auth"], allow: "up-or-degraded" });
  assert.equal(lenient.allowed, true);
  assert.equal(lenient.warning, "auth is degraded (slow)");
  assert.equal(r.hm.verdict({ requires: "auth billing" }).allowed, false, "a space-separated list works too");
});

test("gating follows dependencies: billing is gated while db is down", async () => {
  const r = await live();
  r.ws.sockets[0].receive(update("s1", 6, "db", "down"));
  const v = r.hm.verdict({ requires: ["billing"] });
  assert.equal(v.allowed, false);
  assert.equal(v.cause, "dependency");
  assert.equal(v.reason, "billing depends on db, which is down");
  assert.deepEqual(r.hm.status("billing").blockedBy, [{ service: "db", status: "down" }]);
  r.ws.sockets[0].receive(update("s1", 7, "db", "up"));
  assert.equal(r.hm.verdict({ requires: ["billing"] }).allowed, true);
});

test("healthmon unreachable: a fail-closed feature is disabled, a fail-open one enabled", async () => {
  const r = rig({ routes: { [BASE + "api/services"]: null } });
  r.hm.start();
  r.ws.sockets[0].serverClose(1006);
  r.es.sources[0].fail(true);
  await r.clock.advance(3000);
  const hm = await r.hm.ready;
  assert.equal(hm.names().length, 0);
  const closed = hm.verdict({ requires: ["billing"], whenUnknown: "disable" });
  assert.equal(closed.allowed, false);
  assert.match(closed.reason, /healthmon is unreachable/);
  assert.equal(hm.verdict({ requires: ["billing"], whenUnknown: "enable" }).allowed, true);
  assert.equal(hm.status("billing").status, "unknown");
});

test("the original wire format (no seq, booleans only) still works", async () => {
  const r = rig({ options: { transports: ["websocket"] } });
  r.hm.start();
  r.ws.sockets[0].receive({ type: "welcome", clients: 1 });
  r.ws.sockets[0].receive({ type: "initialSnapshot", data: { auth: true, billing: false } });
  r.ws.sockets[0].receive({ type: "statusUpdate", data: { service: "auth", up: false, ts: 5 } });
  assert.equal(r.hm.status("billing").status, "down");
  assert.equal(r.hm.status("auth").status, "down");
  assert.equal(r.hm.position(), null);
});

test("bootstrap services give a state before any channel answers", async () => {
  const services = Object.entries(snapshotServices({ billing: { status: "down" } })).map(([name, s]) => ({ name, ...s }));
  const r = rig({ options: { services } });
  r.hm.start();
  assert.equal(r.hm.status("billing").status, "down");
  assert.equal(r.hm.status("billing").source, "bootstrap");
  assert.equal(r.hm.connection().transport, "connecting");
});

test("close() stops every channel and timer", async () => {
  const r = await live();
  r.hm.close();
  assert.notEqual(r.ws.sockets[0].closedWith, null);
  await r.clock.advance(60000);
  assert.equal(r.ws.sockets.length, 1);
  assert.deepEqual(r.healthCalls(), []);
});

test("a document on its way while a config error was pushed does not undo the error", async () => {
  const docs = fakeFetch({
    [BASE + "api/services"]: {
      status: 200,
      body: { services: Object.entries(snapshotServices()).map(([name, s]) => ({ name, ...s })), config_error: null },
    },
  });
  const held = [];
  let holding = false;
  const fetch = (url, init) => (holding
    ? new Promise((resolve) => held.push(() => resolve(docs.fetch(url, init))))
    : docs.fetch(url, init));
  const r = await live({ options: { fetch } });
  holding = true;
  const asked = r.hm.refresh(); // answered as the file stood before the save
  const error = "config.toml:6: monitor.interval_ms: must be a number";
  r.ws.sockets[0].receive({ type: "configError", stream: "s1", seq: 6, error });
  await settle();
  assert.equal(r.hm.configError(), error);
  held.forEach((release) => release());
  await asked;
  assert.equal(r.hm.configError(), error, "the older document leaves the pushed error");
  holding = false;
  await r.hm.refresh(); // asked for after the push: the document is the news now
  assert.equal(r.hm.configError(), null);
});
