// The page's one store: what the cards, the log and the header show. Live
// state (status, reason, freshness, latency) is copied from the client module
// (../client.js) after every change; the page adds only what is its own:
// uptime changes and latency samples, stored uptime, the event log, mocks
// and modes.

import { addChange, takeHistory } from "./history.js";

export const LOG_CAP = 200;

export const store = {
  order: [],
  services: {},
  connection: "connecting", // live | polling | connecting
  transport: "connecting", // websocket | sse | polling | connecting
  connectionWhy: "",
  channel: null, // the open push channel (websocket | sse), even while polling
  reconnectAt: null,
  configError: null,
  configFile: null, // the file the server runs from (its config_file), or null
  restartNeeded: [], // saved keys waiting for a restart, "section.key"
  // The server's stored history: {available, problem}, or null when it is off.
  history: undefined,
  channels: { ws: null, sse: null }, // running, as GET /api/services last said
  // The oldest "since" the server has sent: about when its board first saw
  // its services, so how far back its uptime figures reach.
  boardSince: null,
  log: [],
};

const listeners = [];
let scheduled = false;

export function subscribe(fn) { listeners.push(fn); }

/** Render on the next frame (many changes in one frame render once). */
export function changed() {
  if (scheduled) return;
  scheduled = true;
  window.requestAnimationFrame(() => {
    scheduled = false;
    listeners.forEach((fn) => fn(store));
  });
}

// The client says websocket/sse/polling/bootstrap; the page's log says push or poll.
function sourceOf(source) {
  if (source === "polling") return "poll";
  if (source === "websocket" || source === "sse") return "push";
  return "snapshot";
}

// Failing checks, worst first; the Status enum's degraded/down read as warn/fail.
export function normChecks(list) {
  if (!Array.isArray(list)) return [];
  return list.filter((c) => c && typeof c.name === "string").map((c) => {
    const bad = c.status === "down" || c.status === "fail";
    return {
      name: c.name,
      word: bad ? "fail" : "warn",
      output: typeof c.output === "string" && c.output ? c.output : null,
      observed: typeof c.observed === "string" && c.observed ? c.observed : null,
    };
  });
}

/** A new record from the client's view of one service and the server's entry (history). */
export function addService(info, entry, now) {
  const svc = {
    name: info.name,
    url: info.url || "",
    dataEndpoint: info.dataEndpoint || "",
    healthUrl: info.healthUrl,
    dataUrl: info.dataUrl,
    mock: typeof info.mock === "boolean" ? info.mock : null,
    mode: info.mode,
    status: "unknown",
    wasStale: false, // what the card showed last, to announce a change once
    changes: [], // uptime: [ts, up], oldest first, after an optional base
    base: null,
    stored: null, // the server's 24 h and 30 d figures: {at, windows}
    samples: [], // {at, latency, status}, oldest first, at most 60
  };
  store.services[info.name] = svc;
  sync(svc, info);
  if (svc.status !== "unknown") addChange(svc, svc.since || now, svc.status);
  if (entry) takeHistory(svc, entry.history, now, store.boardSince);
  return svc;
}

/** Copy the client's live state of a service into its record. */
export function sync(svc, info) {
  if (!info) return;
  svc.status = info.status;
  svc.reason = info.reason;
  svc.since = info.since;
  svc.checks = normChecks(info.checks);
  svc.latencyMs = info.latencyMs;
  svc.source = sourceOf(info.source);
  svc.stale = info.stale;
  svc.serverStale = info.serverStale;
  svc.freshAt = info.checkedAt;
  svc.blockedBy = info.blockedBy;
  svc.unreadable = info.unreadable || null; // this page cannot check it itself (no CORS)
  if (info.healthUrl) svc.healthUrl = info.healthUrl;
  // null: no data endpoint a page can fetch (none configured, or not http).
  svc.dataUrl = info.dataUrl || null;
  svc.dataEndpoint = info.dataEndpoint || "";
}

/** The oldest "since" among services the server describes (see boardSince). */
export function noteSince(list) {
  list.forEach((s) => {
    if (s && typeof s.since === "number" && (store.boardSince === null || s.since < store.boardSince)) {
      store.boardSince = s.since;
    }
  });
}

// The event log. The server keeps the latest status changes and sends them
// with every snapshot and GET /api/services, so a reload or a second screen
// starts with the same log; this page adds the changes it sees live (with the
// server's own time, so the same change is one entry) and those it found by
// polling, which the server may not have seen.
let logSeq = 0;
const logKeys = new Set();
// Two entries of a service with the same from → to next to each other are one
// change seen twice (a service cannot go up → down twice in a row): by this
// page's polling and by the server, up to this far apart (the server's
// monitor may see it later, when it restarts).
const SAME_CHANGE_MS = 60000;

function logKey(e) { return e.service + "|" + e.from + "|" + e.to + "|" + e.ts; }

// The entry of the same service just before or just after `entry` in time,
// if it records the same change.
function twinOf(entry) {
  let before = null;
  let after = null;
  store.log.forEach((e) => {
    if (e.service !== entry.service) return;
    if (e.ts <= entry.ts) { if (!before || e.ts > before.ts) before = e; }
    else if (!after || e.ts < after.ts) after = e;
  });
  return [before, after].find((e) => e && e.from === entry.from && e.to === entry.to &&
    Math.abs(e.ts - entry.ts) <= SAME_CHANGE_MS) || null;
}

function insertLog(entry) {
  if (logKeys.has(logKey(entry))) return false;
  const twin = twinOf(entry);
  if (twin) {
    // One line: "poll" if this page found it itself, the server's time if known.
    if (entry.source === "poll") twin.source = "poll";
    if (entry.server && !twin.server) { twin.ts = entry.ts; twin.server = true; }
    twin.rev += 1;
    logKeys.add(logKey(twin));
    store.log.sort((a, b) => b.ts - a.ts || b.seq - a.seq);
    return true;
  }
  logKeys.add(logKey(entry));
  logSeq += 1;
  entry.seq = logSeq;
  entry.rev = 0;
  // Newest first, by time; a late arrival slots into place.
  let i = 0;
  while (i < store.log.length && store.log[i].ts > entry.ts) i++;
  store.log.splice(i, 0, entry);
  if (store.log.length > LOG_CAP) store.log.length = LOG_CAP;
  return true;
}

export function addLog(name, from, to, source, reason, ts) {
  const src = sourceOf(source);
  return insertLog({ ts: typeof ts === "number" ? ts : Date.now(), service: name, from, to, source: src, reason, server: src === "push" });
}

/** Merge the server's latest changes ([{ts, service, from, to, reason}], oldest first). */
export function seedLog(list) {
  if (!Array.isArray(list)) return false;
  let added = false;
  list.forEach((c) => {
    if (!c || typeof c.service !== "string" || typeof c.ts !== "number" || typeof c.to !== "string") return;
    const from = typeof c.from === "string" ? c.from : "unknown";
    if (insertLog({ ts: c.ts, service: c.service, from, to: c.to, source: "push", reason: c.reason || null, server: true })) added = true;
  });
  return added;
}
