// The page's stored uptime (static/dashboard/history.js) and how its durations read
// (static/dashboard/format.js): pure functions, run with node --test tests/js/.

import { test } from "node:test";
import assert from "node:assert/strict";

import { addChange, percentText, storedFigures, takeStored } from "../../static/dashboard/history.js";
import { span } from "../../static/dashboard/format.js";

const MIN = 60000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

function service(status = "up") {
  return { status, changes: [], base: null, stored: null };
}

function windows(day, month) {
  return { "24h": day, "30d": month, "7d": month };
}

test("a stored figure is carried on as received until the page sees something", () => {
  const svc = service();
  takeStored(svc, windows(
    { uptime: 99.5, known_ms: 20 * HOUR, covered_ms: DAY, down_ms: 6 * MIN },
    { uptime: 99.9, known_ms: 4 * DAY, covered_ms: 5 * DAY, down_ms: 6 * MIN },
  ), 1000);
  const f = storedFigures(svc, 1000);
  assert.equal(f["24h"].percent, 99.5);
  assert.equal(f["24h"].knownMs, 20 * HOUR);
  assert.equal(f["30d"].coveredMs, 5 * DAY);
  assert.equal(f["30d"].windowMs, 30 * DAY);
});

test("time the page watches adds to the stored figure: down time lowers it at once", () => {
  const svc = service();
  takeStored(svc, windows(
    { uptime: 100, known_ms: DAY, covered_ms: DAY, down_ms: 0 },
    { uptime: 100, known_ms: 2 * DAY, covered_ms: 2 * DAY, down_ms: 0 },
  ), 0);
  addChange(svc, 10 * MIN, "down");
  const f = storedFigures(svc, 20 * MIN);
  // The day slides on: 20 min of the stored day left the window, 10 min up and 10 min down came.
  assert.equal(f["24h"].knownMs, DAY);
  assert.ok(Math.abs(f["24h"].percent - 100 * (DAY - 10 * MIN) / DAY) < 1e-9);
  assert.equal(f["30d"].knownMs, 2 * DAY + 20 * MIN);
  assert.ok(f["30d"].percent < 100);
  // Degraded counts as up, as on the server: no more down time, the figure holds.
  addChange(svc, 20 * MIN, "degraded");
  assert.ok(Math.abs(storedFigures(svc, 30 * MIN)["24h"].percent - f["24h"].percent) < 1e-9);
});

test("nothing known stays unknown, and no server figure means no stored figures", () => {
  const svc = service("unknown");
  takeStored(svc, windows(
    { uptime: null, known_ms: 0, covered_ms: 0, down_ms: 0 },
    { uptime: null, known_ms: 0, covered_ms: 0, down_ms: 0 },
  ), 0);
  assert.equal(storedFigures(svc, 5000)["30d"].percent, null);
  takeStored(svc, null, 6000);
  assert.equal(storedFigures(svc, 7000), null);
  takeStored(svc, undefined, 8000); // an entry without the field changes nothing
  assert.equal(svc.stored, null);
});

for (const [percent, text] of [
  [100, "100 %"], [99.996, "99.99 %"], [99.95, "99.95 %"], [99.3, "99.30 %"], [0, "0.00 %"], [null, "—"],
]) {
  test(`uptime ${percent} reads "${text}" (floored: never a rounded-up 100)`, () => {
    assert.equal(percentText(percent), text);
  });
}

for (const [ms, parts, text] of [
  [4 * DAY + 17 * HOUR + 5 * MIN, 2, "4 d 17 h"], [4 * DAY + 17 * HOUR, 1, "4 d"], [DAY + 5 * MIN, 2, "1 d"],
  [23 * HOUR + 58 * MIN, 2, "23 h 58 min"], [45 * MIN, 1, "45 min"], [42000, 2, "42 s"], [0, 1, "0 s"],
]) {
  test(`${ms} ms reads "${text}" in ${parts} unit(s)`, () => {
    assert.equal(span(ms, parts), text);
  });
}

test("a new server figure that has not counted a short outage yet does not erase it", () => {
  const svc = service();
  const quiet = { uptime: 100, known_ms: DAY, covered_ms: DAY, down_ms: 0 };
  takeStored(svc, windows(quiet, quiet), 0);
  addChange(svc, 60000, "down");
  addChange(svc, 61000, "up");
  // The server read its figures before the outage; the page keeps the second it saw.
  takeStored(svc, windows(quiet, quiet), 63000);
  assert.ok(storedFigures(svc, 63000)["24h"].percent < 100);
  // Well after, a figure that has it replaces the page's count.
  const counted = { uptime: 99.9988, known_ms: DAY, covered_ms: DAY, down_ms: 1000 };
  takeStored(svc, windows(counted, counted), 120000);
  assert.ok(Math.abs(storedFigures(svc, 120000)["24h"].percent - 99.9988) < 1e-6);
});
