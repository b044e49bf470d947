// What a page may offer for a service's data, and the seconds the card and its
// history line show: static/client.js and static/dashboard/history.js in Node.

import { test } from "node:test";
import assert from "node:assert/strict";

import { createClient } from "../../static/client.js";
import { stateSeconds } from "../../static/dashboard/history.js";
import { ago } from "../../static/dashboard/format.js";
import { BASE, Clock, fakeWebSocket, settle, snapshot } from "./fakes.mjs";

async function dataUrlOf(entry) {
  const clock = new Clock();
  const ws = fakeWebSocket();
  const hm = createClient(BASE, {
    WebSocket: ws.FakeWebSocket, transports: ["websocket"], bind: false,
    now: clock.now, setTimeout: clock.setTimeout, clearTimeout: clock.clearTimeout,
  });
  hm.start();
  ws.sockets[0].receive({ type: "welcome", stream: "s1", seq: 1 });
  ws.sockets[0].receive(snapshot("s1", 1, { auth: entry }));
  await settle();
  const service = hm.service("auth");
  hm.close();
  return [service.dataUrl, service.dataEndpoint];
}

const DATA_CASES = [
  ["an http data endpoint", {}, ["http://svc.test:3001/data", "/data"]],
  ["none configured: data_url null", { data_url: null, data_endpoint: null }, [null, ""]],
  ["none configured: has_data false", { has_data: false, data_endpoint: "/" }, [null, ""]],
  ["a tcp service: its address is no data URL", { url: "tcp://svc.test:5432", data_url: "tcp://svc.test:5432" }, [null, ""]],
  ["a grpc service", { url: "grpc://svc.test:50051", data_url: "grpc://svc.test:50051" }, [null, ""]],
];

for (const [what, entry, expected] of DATA_CASES) {
  test(`a service's data URL: ${what}`, async () => {
    assert.deepEqual(await dataUrlOf(entry), expected);
  });
}

const SECOND = 1000;

function service(status, since, samples, stale = false) {
  return { status, since, stale, samples: samples.map(([at, s]) => ({ at, latency: 1, status: s })) };
}

test("the history line's seconds in the current state are the card's 'for N s'", () => {
  const since = 100 * SECOND;
  // A heartbeat 0.3 s after the change, then one a second: three samples down
  // at 2.4 s, which the card rounds to "2 s".
  const samples = [[97.3, "up"], [98.3, "up"], [99.3, "up"], [100.3, "down"], [101.3, "down"], [102.3, "down"]]
    .map(([t, s]) => [t * SECOND, s]);
  for (const now of [101.4, 102.4, 102.6, 130, 159.4].map((t) => t * SECOND)) {
    const counts = stateSeconds(service("down", since, samples), now);
    assert.equal(counts.down + " s", ago(since, now), `at ${now}`);
    assert.equal(counts.up, Math.min(3, 60 - counts.down), "what came before, from the samples, within 60 s");
  }
});

test("the 60 s are never exceeded, and a long run fills them", () => {
  const samples = Array.from({ length: 60 }, (_, i) => [i * SECOND, i < 30 ? "up" : "down"]);
  assert.deepEqual(stateSeconds(service("down", 30 * SECOND, samples), 75 * SECOND), { down: 45, up: 15 });
  assert.deepEqual(stateSeconds(service("down", 0, samples), 600 * SECOND), { down: 60 });
});

test("stale or unknown: the samples alone, one a second", () => {
  const samples = [[1000, "up"], [2000, "stale"], [3000, "stale"]];
  assert.deepEqual(stateSeconds(service("up", 500, samples, true), 10 * SECOND), { up: 1, stale: 2 });
  assert.deepEqual(stateSeconds(service("unknown", null, [[1000, "none"]]), 10 * SECOND), {});
});
