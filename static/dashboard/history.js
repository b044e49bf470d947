// Uptime over the hour and the last 60 s of latency samples, per service:
// the same time-weighted sum as src/healthmon/history.py; and the stored
// figures (24 h, 30 d) carried on from the server's history. Pure functions
// of a service record ({status, since, changes, base, stored, samples}) and
// the time.

import { seconds } from "./format.js";

export const SAMPLES = 60; // one latency sample a heartbeat
export const UPTIME_WINDOW_MS = 3600000; // "Uptime (1 h)"
export const MAX_CHANGES = 2048; // as src/healthmon/history.py

export function isUp(status) { return status === "up" || status === "degraded"; }

/**
 * Record a status change at `ts` (up ↔ degraded is no change for uptime),
 * for the hour and for the stored figures alike.
 */
export function addChange(svc, ts, status) {
  if (status === "unknown") return;
  pushChange(svc.changes, ts, isUp(status));
  if (svc.stored) pushChange(svc.stored.changes, ts, isUp(status));
}

function pushChange(list, ts, up) {
  const last = list.length ? list[list.length - 1] : null;
  if (last && last[0] > ts) ts = last[0]; // never before a change already known
  if (last && last[1] === up) return;
  list.push([ts, up]);
  if (list.length > MAX_CHANGES) list.splice(0, list.length - MAX_CHANGES);
}

// Percent of the known part of the last hour spent up (or degraded), or
// null when nothing is known. `svc.base` stands for what the server knew
// before this page's own changes start: its figure (upFrac) over the span
// it covered (knownMs), sliding out of the window as time passes.
export function uptimeOf(svc, now) {
  return uptimeFigures(svc, now).percent;
}

/**
 * {percent, knownMs}: the uptime and the span it really covers (at most the
 * hour), so the card can say "since start (12 min)" until a full hour is known.
 */
export function uptimeFigures(svc, now) {
  const start = now - UPTIME_WINDOW_MS;
  const list = svc.changes;
  while (list.length > 1 && list[1][0] <= start) list.shift();
  let upMs = 0;
  let knownMs = 0;
  const base = svc.base;
  if (base) {
    const kept = Math.max(0, Math.min(base.knownMs, UPTIME_WINDOW_MS - (now - base.at)));
    knownMs += kept;
    upMs += kept * base.upFrac;
  }
  if (!list.length && !base) return { percent: null, knownMs: 0 };
  for (let i = 0; i < list.length; i++) {
    const begin = Math.max(list[i][0], start);
    const end = i + 1 < list.length ? list[i + 1][0] : now;
    const span = Math.max(0, end - begin);
    knownMs += span;
    if (list[i][1]) upMs += span;
  }
  knownMs = Math.min(knownMs, UPTIME_WINDOW_MS);
  if (knownMs === 0) {
    if (list.length) return { percent: list[list.length - 1][1] ? 100 : 0, knownMs };
    return { percent: Math.round(base.upFrac * 10000) / 100, knownMs };
  }
  return { percent: Math.round(10000 * upMs / knownMs) / 100, knownMs };
}

// The server's history: uptime over the hour and up to 60 latency samples,
// about a second apart, oldest first. Each sample's state is known when it
// was taken after the current state began; before that, what this page saw
// itself at about that time, if anything.
export function takeHistory(svc, history, now, boardSince) {
  if (!history || typeof history !== "object") return;
  takeUptime(svc, history, now, boardSince);
  if (!Array.isArray(history.latency)) return;
  const seen = svc.samples;
  const list = history.latency.slice(-SAMPLES);
  svc.samples = list.map((latency, i) => {
    const at = now - (list.length - 1 - i) * 1000;
    let status = svc.status !== "unknown" && svc.since && at >= svc.since ? svc.status : null;
    for (let j = 0; status === null && j < seen.length; j++) {
      if (Math.abs(seen[j].at - at) <= 600) status = seen[j].status;
    }
    return { at, latency: typeof latency === "number" ? latency : null, status: status || "none" };
  });
}

// The server's uptime. Its list of changes, when sent, replaces this page's
// (exact). Otherwise its figure becomes the base the page's own changes
// from now on are added to, over the span the server knew: the hour, or
// less when its board is younger (since its oldest "since").
export function takeUptime(svc, history, now, boardSince) {
  if (Array.isArray(history.changes)) {
    svc.base = null;
    svc.changes = history.changes.filter((c) => Array.isArray(c) && typeof c[0] === "number")
      .map((c) => [c[0], !!c[1]]).slice(-MAX_CHANGES);
    if (svc.status !== "unknown") addChange(svc, svc.since || now, svc.status);
    return;
  }
  if (typeof history.uptime_1h !== "number") return;
  const knownMs = typeof history.known_ms === "number" ? history.known_ms
    : boardSince !== null ? Math.max(0, Math.min(UPTIME_WINDOW_MS, now - boardSince)) : UPTIME_WINDOW_MS;
  svc.base = { at: now, upFrac: history.uptime_1h / 100, knownMs };
  svc.changes = svc.status === "unknown" ? [] : [[now, isUp(svc.status)]];
}

// ---- stored history (the server's [history]) -----------------------------------

const DAY_MS = 86400000;
// How far the server's figures lag: it reads them every 5 s from what it
// writes every second. A new figure takes over from the page's own count
// only this far back, so a short outage the server has not read yet is not
// forgotten (counted twice at worst: a few seconds in a day or a month).
export const STORED_LAG_MS = 6000;
/** The windows a card shows, as the server names them, with their length and label. */
export const STORED_WINDOWS = [["24h", DAY_MS, "24 h"], ["30d", 30 * DAY_MS, "30 d"]];

/**
 * Keep a service entry's `uptime` ({"24h": {uptime, known_ms, covered_ms, down_ms}, ...},
 * or null) as the base the page's own changes are added to (their own list:
 * the hour's is started again by every server figure). The page's count
 * goes on from STORED_LAG_MS back when it has one, else from `now`.
 * An entry without the field changes nothing.
 */
export function takeStored(svc, uptime, now) {
  if (uptime === undefined) return;
  if (!uptime || typeof uptime !== "object") {
    svc.stored = null;
    return;
  }
  const before = svc.stored;
  let at = now;
  let changes = svc.status === "unknown" ? [] : [[now, isUp(svc.status)]];
  if (before && before.changes.length) {
    at = Math.min(now, Math.max(before.at, now - STORED_LAG_MS));
    const kept = before.changes.filter((c) => c[0] > at);
    const earlier = before.changes.filter((c) => c[0] <= at);
    changes = earlier.length ? [[at, earlier[earlier.length - 1][1]], ...kept] : kept;
  }
  svc.stored = { at, windows: uptime, changes };
}

// Time known and time up in [from, to) by a list of changes.
function ownSpan(list, from, to) {
  let upMs = 0;
  let knownMs = 0;
  for (let i = 0; i < list.length; i++) {
    const begin = Math.max(list[i][0], from);
    const end = Math.min(i + 1 < list.length ? list[i + 1][0] : to, to);
    if (end <= begin) continue;
    knownMs += end - begin;
    if (list[i][1]) upMs += end - begin;
  }
  return { upMs, knownMs };
}

/**
 * Each stored window's figures now: {percent, knownMs, coveredMs, windowMs},
 * percent null when nothing is known; null when the server sent none. The
 * stored base (what the server knew when it was received) slides out of its
 * window as this page's own changes since then come in, as for the hour.
 */
export function storedFigures(svc, now) {
  if (!svc.stored) return null;
  const { at, windows } = svc.stored;
  const own = ownSpan(svc.stored.changes, at, now);
  const elapsed = Math.max(0, now - at);
  const out = {};
  for (const [key, windowMs] of STORED_WINDOWS) {
    const w = windows[key];
    if (!w || typeof w !== "object") return null;
    const baseKnown = typeof w.known_ms === "number" ? w.known_ms : 0;
    const kept = typeof w.uptime === "number" ? Math.max(0, Math.min(baseKnown, windowMs - elapsed)) : 0;
    const knownMs = Math.min(windowMs, kept + own.knownMs);
    const upMs = (typeof w.uptime === "number" ? kept * w.uptime / 100 : 0) + own.upMs;
    const covered = typeof w.covered_ms === "number" ? w.covered_ms : 0;
    out[key] = {
      percent: knownMs > 0 ? 100 * upMs / knownMs : null,
      knownMs,
      coveredMs: Math.min(windowMs, Math.max(covered + elapsed, knownMs)),
      windowMs,
    };
  }
  return out;
}

/**
 * An uptime as the page prints it: "100 %" only when no known moment was
 * down, else floored to two decimals (99.996 is "99.99 %", never "100.00 %").
 */
export function percentText(percent) {
  if (typeof percent !== "number") return "—";
  if (percent >= 100) return "100 %";
  return (Math.floor(percent * 100 + 1e-9) / 100).toFixed(2) + " %";
}

export function addSample(svc, latency, status, now) {
  svc.samples.push({ at: now, latency: typeof latency === "number" ? latency : null, status });
  if (svc.samples.length > SAMPLES) svc.samples.splice(0, svc.samples.length - SAMPLES);
}

/**
 * Seconds in each state over the last 60 s. The current state's run is the
 * number the card's "Down for N s" shows (seconds since `since`, rounded the
 * same way); what came before it is counted from the samples, one a second.
 */
export function stateSeconds(svc, now) {
  const counts = {};
  const add = (status, n) => { if (n > 0 && status !== "none") counts[status] = (counts[status] || 0) + n; };
  const samples = svc.samples;
  if (svc.stale || svc.status === "unknown" || typeof svc.since !== "number") {
    samples.forEach((s) => add(s.status, 1));
    return counts;
  }
  const run = Math.min(SAMPLES, seconds(now - svc.since));
  const before = samples.filter((s) => s.at < svc.since && s.status !== "none");
  before.slice(Math.max(0, before.length - (SAMPLES - run))).forEach((s) => add(s.status, 1));
  add(svc.status, run);
  return counts;
}
