// healthmon client: the live state of every service a healthmon server watches,
// and gating of any page's controls by it. A dependency-free ES module: healthmon
// serves it at /client.js, and it works as well copied into another app.
//
//   import { connect } from "http://localhost:4000/client.js";
//   const hm = await connect("http://localhost:4000");
//   hm.gate(document.querySelector("#checkout"), { requires: ["billing"] });
//
// or, with no script of your own:
//
//   <script type="module" src="http://localhost:4000/client.js" data-hm-connect></script>
//   <button data-hm-requires="billing">Checkout</button>
//
// Transports, best first: a WebSocket (/ws), Server-Sent Events (/events), then
// polling each service's health URL from the page itself. The client moves
// down the ladder at once when a channel fails, and climbs back (probing with
// exponential backoff and full jitter) as soon as a better one works again; a
// reconnect resumes where it left off (?since= / Last-Event-ID). See docs/client.md.

export const VERSION = "1";

const STATES = ["up", "degraded", "down", "unknown"];
const PUSH = ["websocket", "sse"];
// Messages that change state carry `stream` and `seq` (restartNeeded only where the server numbers it).
const NUMBERED = ["initialSnapshot", "statusUpdate", "configError", "restartNeeded"];
const CHANNEL_NAMES = { websocket: "WebSocket", sse: "Server-Sent Events stream" };
// The status words healthmon knows (healthmon/health.py); any other is "warn".
const PASS = ["pass", "ok", "up"];
const WARN = ["warn", "warning", "degraded", "unknown"];
const FAIL = ["fail", "error", "down", "out_of_service"];

/** Every option and its default (docs/client.md explains each). */
export const DEFAULTS = Object.freeze({
  transports: ["websocket", "sse", "polling"],
  silenceMs: 3000, // no message on an open channel for this long: it is dead
  openTimeoutMs: 3000, // a channel that says nothing for this long after opening failed
  pollEveryMs: 1000, // polling: each service about every second
  pollTimeoutMs: 1500, // each poll request's own timeout
  backoffBaseMs: 1000, // retries and probes of a better transport: 1 s doubling...
  backoffCapMs: 10000, // ...to 10 s, with full jitter
  tickMs: 250, // how often staleness and silence are re-checked
  connectTimeoutMs: 3000, // connect() resolves by then even when nothing is known yet
  intervalMs: 500, // the server's check interval and timeout, until it says a
  timeoutMs: 1000, // service's stale bound itself (stale_after_ms)
  bind: true, // gate [data-hm-requires] elements of `root` automatically
});

// ---- pure helpers ---------------------------------------------------------

/** Exponential backoff with full jitter: uniform in [0, min(cap, base·2^attempt)], at least 100 ms. */
export function backoffDelay(attempt, baseMs = 1000, capMs = 10000, random = Math.random) {
  const cap = Math.min(capMs, baseMs * Math.pow(2, attempt));
  return Math.max(100, random() * cap);
}

/**
 * A status value as healthmon reads it: {word: "pass"|"warn"|"fail", unknown}.
 * A word it does not know is never guessed up: "warn", with the word as `unknown`.
 */
function readStatus(value) {
  const word = typeof value === "string" ? value.trim().toLowerCase() : null;
  if (PASS.indexOf(word) >= 0) return { word: "pass", unknown: null };
  if (WARN.indexOf(word) >= 0) return { word: "warn", unknown: null };
  if (FAIL.indexOf(word) >= 0) return { word: "fail", unknown: null };
  const shown = typeof value === "string" ? "'" + value.slice(0, 40) + "'" : String(JSON.stringify(value)).slice(0, 40);
  return { word: "warn", unknown: "unknown status " + shown };
}

/** A health answer as healthmon reads it: {status, reason, checks} (health+json, or the HTTP status). */
export function classifyHealth(httpStatus, text) {
  let doc = null;
  try { doc = text ? JSON.parse(text) : null; } catch (e) { doc = null; }
  if (!doc || typeof doc !== "object" || Array.isArray(doc)) doc = null;
  const output = doc && typeof doc.output === "string" && doc.output ? doc.output.slice(0, 200) : null;
  const checks = bodyChecks(doc);
  if (httpStatus < 200 || httpStatus > 299) {
    return { status: "down", reason: "HTTP " + httpStatus + (output ? ": " + output : ""), checks };
  }
  // No "status" says nothing; any other value is read, and an unknown word is "warn".
  const top = doc && "status" in doc ? readStatus(doc.status) : null;
  let verdict = top ? top.word : "pass";
  if (verdict !== "fail" && checks.some((c) => c.status === "fail")) verdict = "fail";
  else if (verdict === "pass" && checks.length) verdict = "warn";
  if (verdict === "pass") return { status: "up", reason: null, checks: [] }; // pass / ok / up, or no body
  const status = verdict === "fail" ? "down" : "degraded";
  if (top && top.unknown && top.word === verdict) {
    return { status, reason: top.unknown + (output ? ": " + output : ""), checks };
  }
  const word = doc && typeof doc.status === "string" ? doc.status.trim().toLowerCase() : verdict;
  return { status, reason: output || firstCheck(checks) || "health status: " + word, checks };
}

// The failing checks of a health+json body, worst first.
function bodyChecks(doc) {
  const found = [];
  const checks = doc && doc.checks && typeof doc.checks === "object" ? doc.checks : {};
  Object.keys(checks).forEach((name) => {
    const entries = Array.isArray(checks[name]) ? checks[name] : [checks[name]];
    entries.forEach((e) => {
      if (!e || typeof e !== "object" || !("status" in e)) return; // no status says nothing
      const read = readStatus(e.status);
      if (read.word === "pass") return;
      const observed = e.observedValue !== undefined && e.observedValue !== null
        ? String(e.observedValue) + (e.observedUnit ? " " + e.observedUnit : "") : null;
      const said = typeof e.output === "string" && e.output ? e.output.slice(0, 200) : null;
      found.push({
        name: e.componentId ? name + " (" + e.componentId + ")" : name,
        status: read.word,
        output: read.unknown ? read.unknown + (said ? ": " + said : "") : said,
        observed,
      });
    });
  });
  found.sort((a, b) => (b.status === "fail") - (a.status === "fail"));
  return found;
}

function firstCheck(checks) {
  if (!checks.length) return null;
  const c = checks[0];
  const detail = c.output || c.observed;
  return c.name + ": " + c.status + (detail ? ": " + detail : "") + (checks.length > 1 ? " (+" + (checks.length - 1) + " more)" : "");
}

// Why this page cannot check a service itself, in words.
const UNREADABLE = "can't check from this page: the service answers, but does not allow this page's origin to read its health (no CORS)";

/** Why a request failed, in words. */
export function describeFailure(err, timeoutMs) {
  if (err && err.name === "AbortError") return "no answer within " + timeoutMs + " ms";
  return "no answer: connection refused or network error";
}

function list(value) {
  if (Array.isArray(value)) return value.filter((v) => typeof v === "string" && v);
  if (typeof value === "string") return value.split(/[\s,]+/).filter(Boolean);
  return [];
}

function ago(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 60 ? s + " s" : Math.floor(s / 60) + " min";
}

// ---- the client -------------------------------------------------------------

/**
 * Connect to healthmon at `baseUrl` and resolve with a client once the first
 * state is known (or after `connectTimeoutMs`, with every service unknown).
 */
export async function connect(baseUrl, options = {}) {
  const hm = createClient(baseUrl, options);
  hm.start();
  await hm.ready;
  return hm;
}

/** The client without starting it (tests, or to subscribe before anything arrives): call start(). */
export function createClient(baseUrl, options = {}) {
  const o = Object.assign({}, DEFAULTS, options);
  const g = globalThis;
  const now = o.now || (() => Date.now());
  const setT = o.setTimeout || ((fn, ms) => g.setTimeout(fn, ms));
  const clearT = o.clearTimeout || ((id) => g.clearTimeout(id));
  const random = o.random || Math.random;
  const fetchFn = (...args) => (o.fetch || g.fetch)(...args);
  const base = baseUrl ? new URL(String(baseUrl), g.location ? g.location.href : undefined)
    : new URL(g.location.href);
  if (!base.pathname.endsWith("/")) base.pathname += "/";
  base.search = "";
  base.hash = "";
  const kinds = PUSH.filter((k) => o.transports.indexOf(k) >= 0);
  const canPoll = o.transports.indexOf("polling") >= 0;

  const services = new Map(); // name -> internal record
  let order = [];
  let stream = null; // the hub instance whose sequence numbers we hold
  let seq = null; // the last numbered message applied
  let monitor = { alive: null };
  let configError = null;
  let configPushes = 0; // config states pushed so far: a document asked for before one is older
  let channel = null; // the adopted push channel: {kind, handle, lastAt}
  let candidate = null; // a channel being tried
  let failures = 0; // climbs that did not reach the best transport, for backoff
  let climbTimer = null;
  let retryAt = null;
  const why = {}; // the last failure of each push channel, in words
  let polling = false;
  let pollGeneration = 0;
  let lastPollAt = null;
  let resyncTimer = null;
  let tickTimer = null;
  let started = false;
  let closed = false;
  let knownOnce = false; // a snapshot, a document or a poll round has told us the services
  let connection = { transport: "connecting", channel: null, reason: "", monitorAlive: null, retryAt: null, lastPollAt: null };
  const listeners = { change: [], connection: [], services: [], message: [], update: [] };
  const gates = new Set();
  let resolveReady;
  const ready = new Promise((resolve) => { resolveReady = resolve; });
  let readyTimer = null;

  // -- events -----------------------------------------------------------------

  function emit(type, arg) {
    listeners[type].slice().forEach((fn) => {
      try { fn(arg); } catch (e) { (g.reportError || console.error)(e); }
    });
  }

  // -- service records -------------------------------------------------------

  function defaultStaleAfter() { return 2 * (o.intervalMs + o.timeoutMs); }

  function record(name) {
    return {
      name, url: null, healthUrl: null, dataUrl: null, dataEndpoint: "", mock: null, mode: undefined,
      dependsOn: [], status: "unknown", reason: null, since: null, checks: [], latencyMs: null,
      source: null, staleAfterMs: defaultStaleAfter(), pushFreshAt: null, pollFreshAt: null,
      serverStale: false, shown: null,
      // Set when this page found it cannot read the service's health (CORS): it is then
      // not polled, and keeps its last pushed state (stale) or stays unknown, never down.
      unreadable: null,
    };
  }

  // Static facts about a service (URLs, dependencies, stale bound), from a
  // snapshot entry or an /api/services entry.
  function takeInfo(svc, s) {
    if (typeof s.url === "string") svc.url = s.url;
    // A browser can only ask http(s) services itself: tcp and grpc ones wait for push.
    const healthUrl = svc.healthUrl;
    if (typeof s.health_url === "string" && /^https?:\/\//i.test(s.health_url)) svc.healthUrl = s.health_url;
    else if (svc.url && typeof s.health_path === "string") svc.healthUrl = svc.url + s.health_path;
    if (svc.healthUrl !== healthUrl) svc.unreadable = null; // another URL: worth a try
    // A data endpoint only where one is configured, and only an http(s) one a
    // page can fetch: a tcp or grpc service's "data URL" is its address.
    if ("data_url" in s || "has_data" in s) {
      svc.dataUrl = s.has_data !== false && typeof s.data_url === "string" && /^https?:\/\//i.test(s.data_url) ? s.data_url : null;
    } else if (svc.url && typeof s.data_endpoint === "string" && /^https?:\/\//i.test(svc.url)) {
      svc.dataUrl = svc.url + s.data_endpoint;
    }
    if ("data_endpoint" in s) svc.dataEndpoint = svc.dataUrl && typeof s.data_endpoint === "string" ? s.data_endpoint : "";
    if (typeof s.mock === "boolean") { svc.mock = s.mock; svc.mode = s.mode; }
    if (Array.isArray(s.depends_on)) svc.dependsOn = list(s.depends_on);
    if (typeof s.stale_after_ms === "number" && s.stale_after_ms > 0) svc.staleAfterMs = s.stale_after_ms;
  }

  // The server's word on one service's freshness, received at `at`.
  function takeFreshness(svc, s, at) {
    if (typeof s.stale_after_ms === "number" && s.stale_after_ms > 0) svc.staleAfterMs = s.stale_after_ms;
    if (typeof s.age_ms === "number") svc.pushFreshAt = at - Math.max(0, s.age_ms);
    if (typeof s.stale === "boolean") svc.serverStale = s.stale;
  }

  function freshAt(svc) {
    if (svc.pushFreshAt === null) return svc.pollFreshAt;
    if (svc.pollFreshAt === null) return svc.pushFreshAt;
    return Math.max(svc.pushFreshAt, svc.pollFreshAt);
  }

  // Stale: the state held is not backed by a recent check. This page's own
  // fresh check settles it; otherwise the server saying so, or its own count.
  function isStale(svc, at) {
    if (svc.status === "unknown") return false;
    if (svc.pollFreshAt !== null && at - svc.pollFreshAt <= svc.staleAfterMs) return false;
    if (svc.pushFreshAt === null) return true;
    return svc.serverStale || at - svc.pushFreshAt > svc.staleAfterMs;
  }

  // Every transitive dependency that is down, stale or unknown, nearest first.
  function blockersOf(svc, at) {
    const out = [];
    const seen = new Set([svc.name]);
    const queue = svc.dependsOn.slice();
    while (queue.length) {
      const name = queue.shift();
      if (seen.has(name)) continue;
      seen.add(name);
      const dep = services.get(name);
      if (!dep) { out.push({ service: name, status: "unknown" }); continue; }
      if (dep.status === "down") out.push({ service: name, status: isStale(dep, at) ? "stale" : "down" });
      else if (dep.status === "unknown") out.push({ service: name, status: "unknown" });
      else if (isStale(dep, at)) out.push({ service: name, status: "stale" });
      dep.dependsOn.forEach((d) => queue.push(d));
    }
    return out;
  }

  function viewOf(svc, at) {
    return {
      status: svc.status,
      up: svc.status === "up" || svc.status === "degraded",
      stale: isStale(svc, at),
      reason: svc.reason,
      unreadable: svc.unreadable,
      since: svc.since,
      source: svc.source,
      dependsOn: svc.dependsOn.slice(),
      blockedBy: blockersOf(svc, at),
    };
  }

  function sameView(a, b) {
    return a && b && a.status === b.status && a.stale === b.stale && a.reason === b.reason && a.unreadable === b.unreadable &&
      a.since === b.since && a.source === b.source && JSON.stringify(a.blockedBy) === JSON.stringify(b.blockedBy);
  }

  // After every batch of news: tell the listeners what changed, then the gates.
  function settle() {
    const at = now();
    const changes = [];
    order.forEach((name) => {
      const svc = services.get(name);
      const view = viewOf(svc, at);
      if (!sameView(view, svc.shown)) {
        changes.push({ name, previous: svc.shown || viewOf(record(name), at), current: view });
        svc.shown = view;
      }
    });
    changes.forEach((c) => emit("change", c));
    emit("update", { at });
    refreshGates();
  }

  // Apply one observation. A pushed check older than this page's own is news to no one.
  function observe(name, obs, source) {
    const svc = services.get(name);
    if (!svc) return;
    const at = now();
    const checkedAt = typeof obs.checkedAt === "number" ? obs.checkedAt : at;
    if (source === "polling") svc.pollFreshAt = at;
    else if (svc.pollFreshAt !== null && checkedAt < svc.pollFreshAt) return;
    const status = STATES.indexOf(obs.status) >= 0 ? obs.status : "unknown";
    const from = svc.status;
    if (obs.latencyMs !== undefined) svc.latencyMs = obs.latencyMs;
    svc.reason = status === "up" ? null : obs.reason || null;
    if (status === "up") svc.checks = [];
    else if (obs.checks !== undefined) svc.checks = Array.isArray(obs.checks) ? obs.checks : [];
    else if (status !== from) svc.checks = [];
    svc.source = source;
    if (status !== from) {
      svc.status = status;
      svc.since = obs.since || at;
    } else if (obs.since && source !== "polling") {
      svc.since = obs.since; // "since" is when the status began: a new reason alone keeps it
    }
  }

  // Follow the server's set of services: new ones added, removed ones dropped.
  function reconcile(entries) {
    const names = entries.map((s) => s.name);
    const removed = order.filter((n) => names.indexOf(n) < 0);
    const added = [];
    removed.forEach((n) => services.delete(n));
    entries.forEach((s) => {
      let svc = services.get(s.name);
      if (!svc) { svc = record(s.name); services.set(s.name, svc); added.push(s.name); }
      takeInfo(svc, s);
    });
    order = names;
    knownOnce = true;
    if (added.length || removed.length) {
      if (polling) { stopPolling(); startPolling(); }
      emit("services", { names: order.slice(), added, removed });
    }
  }

  function entriesOf(map) {
    return Object.keys(map).map((name) => Object.assign({ name }, map[name]));
  }

  // A snapshot's or a document's statuses, as seen at `at`.
  function applyStatuses(entries, source, at) {
    entries.forEach((s) => {
      const svc = services.get(s.name);
      if (!svc || !s || !s.status || s.status === "unknown") return;
      const checkedAt = typeof s.age_ms === "number" ? at - s.age_ms : at;
      if (svc.pollFreshAt === null || checkedAt >= svc.pollFreshAt) takeFreshness(svc, s, at);
      observe(s.name, { status: s.status, latencyMs: s.latency_ms, reason: s.reason, since: s.since, checks: s.checks, checkedAt }, source);
    });
  }

  // -- messages ----------------------------------------------------------------

  function onMessage(msg, kind) {
    const at = now();
    const numbered = NUMBERED.indexOf(msg.type) >= 0;
    if (numbered && typeof msg.seq === "number" && typeof msg.stream === "string") {
      if (msg.type !== "initialSnapshot" && msg.stream === stream && seq !== null) {
        if (msg.seq <= seq) return; // already applied (a resume overlaps, or a channel switch)
        if (msg.seq > seq + 1) scheduleResync(0); // a hole: the document fills it
      }
      stream = msg.stream;
      seq = msg.seq;
    } else if (msg.type === "welcome" && typeof msg.stream === "string" && msg.stream !== stream) {
      seq = null; // another hub: its snapshot follows
    }
    if (msg.type === "initialSnapshot") {
      const wasAlive = monitor.alive;
      if (msg.monitor && typeof msg.monitor === "object") monitor = msg.monitor;
      if ("config_error" in msg) { configError = msg.config_error || null; configPushes += 1; }
      if (msg.services && typeof msg.services === "object") {
        const entries = entriesOf(msg.services);
        reconcile(entries);
        // A snapshot from a board no monitor feeds is stale: polling knows better.
        if (monitor.alive !== false) applyStatuses(entries, kind, at);
      } else if (msg.data && typeof msg.data === "object" && monitor.alive !== false) {
        if (!knownOnce) reconcile(Object.keys(msg.data).map((name) => ({ name })));
        Object.keys(msg.data).forEach((name) => observe(name, { status: msg.data[name] ? "up" : "down" }, kind));
      }
      if (wasAlive === false && monitor.alive) scheduleResync();
    } else if (msg.type === "statusUpdate" && msg.data && typeof msg.data === "object") {
      const d = msg.data;
      const svc = services.get(d.service);
      if (svc) {
        if (Array.isArray(d.depends_on)) svc.dependsOn = list(d.depends_on);
        const checkedAt = typeof d.age_ms === "number" ? at - d.age_ms : at;
        if (svc.pollFreshAt === null || checkedAt >= svc.pollFreshAt) takeFreshness(svc, d, at);
        observe(d.service, {
          status: d.status || (d.up ? "up" : "down"), latencyMs: d.latency_ms, reason: d.reason,
          since: d.since || d.ts, checks: d.checks, checkedAt,
        }, kind);
      }
    } else if (msg.type === "configError") {
      configError = msg.error || null;
      configPushes += 1;
    } else if (msg.type === "heartbeat") {
      const before = monitor.alive;
      if (msg.monitor && typeof msg.monitor === "object") monitor = msg.monitor;
      takeAges(msg.ages, msg.stale, at);
      if (monitor.alive && msg.latency && typeof msg.latency === "object") {
        order.forEach((name) => {
          const svc = services.get(name);
          if (typeof msg.latency[name] === "number" && !isStale(svc, at)) svc.latencyMs = msg.latency[name];
        });
      }
      if (before === false && monitor.alive) scheduleResync();
    }
    if (knownOnce) markReady();
    evaluate();
    settle();
    emit("message", { message: msg, via: kind, at });
  }

  // Every heartbeat says how old each service's latest check is, and which are stale.
  function takeAges(ages, stale, at) {
    if (!ages || typeof ages !== "object") return;
    const staleNames = Array.isArray(stale) ? stale : [];
    order.forEach((name) => {
      const svc = services.get(name);
      if (typeof ages[name] !== "number") return;
      const checkedAt = at - Math.max(0, ages[name]);
      if (svc.pollFreshAt !== null && checkedAt < svc.pollFreshAt) return;
      svc.pushFreshAt = checkedAt;
      svc.serverStale = staleNames.indexOf(name) >= 0;
    });
  }

  // After the monitor comes back (or a hole in the sequence), the server's
  // document is current once its first round has arrived.
  function scheduleResync(delay) {
    if (resyncTimer) clearT(resyncTimer);
    const wait = typeof delay === "number" ? delay
      : Math.max(...order.map((n) => services.get(n).staleAfterMs), defaultStaleAfter()) / 2 + 250;
    resyncTimer = setT(() => {
      resyncTimer = null;
      refresh({ statuses: true }).catch(() => { /* the next heartbeat or poll corrects us */ });
    }, wait);
  }

  // -- the transport ladder ---------------------------------------------------

  function rank(kind) { return kinds.indexOf(kind); }

  function endpoint(path, params) {
    const url = new URL(path, base);
    Object.keys(params || {}).forEach((k) => url.searchParams.set(k, params[k]));
    return url;
  }

  function resumeParams() {
    return stream !== null && seq !== null ? { since: stream + ":" + seq } : {};
  }

  // Try the push channels from `index` down, only those better than the one adopted.
  function climb(index) {
    if (closed) return;
    if (climbTimer) { clearT(climbTimer); climbTimer = null; }
    retryAt = null;
    const limit = channel ? rank(channel.kind) : kinds.length;
    if (index >= limit) { later(); return; }
    open(kinds[index], index);
  }

  // Nothing better works now: try again after a backoff (polling meanwhile, if need be).
  function later() {
    if (closed || climbTimer) return;
    if (channel && rank(channel.kind) === 0) return;
    const delay = backoffDelay(failures, o.backoffBaseMs, o.backoffCapMs, random);
    failures = Math.min(failures + 1, 20);
    retryAt = now() + delay;
    climbTimer = setT(() => { climbTimer = null; climb(0); }, delay);
    if (!knownOnce && canPoll) refresh().catch(() => {});
    evaluate();
  }

  function open(kind, index) {
    if (candidate) drop(candidate);
    const c = { kind, index, handle: null, timer: null, done: false };
    candidate = c;
    try {
      c.handle = kind === "websocket" ? openSocket(c) : openEvents(c);
    } catch (e) {
      candidate = null;
      failed(c, "cannot open a " + CHANNEL_NAMES[kind]);
      return;
    }
    c.timer = setT(() => failed(c, "the " + CHANNEL_NAMES[kind] + " did not answer within " + o.openTimeoutMs + " ms"), o.openTimeoutMs);
    evaluate();
  }

  function drop(c) {
    c.done = true;
    if (c.timer) clearT(c.timer);
    try { c.handle && c.handle.close(); } catch (e) { /* already closed */ }
  }

  // A candidate failed before it said anything: the next one down, at once.
  function failed(c, reason) {
    if (c.done) return;
    drop(c);
    if (candidate === c) candidate = null;
    why[c.kind] = reason;
    const limit = channel ? rank(channel.kind) : kinds.length;
    if (c.index + 1 < limit) open(kinds[c.index + 1], c.index + 1);
    else later();
  }

  // A candidate's first message: adopt it, and drop any worse channel.
  function adopt(c) {
    if (c.timer) clearT(c.timer);
    c.timer = null;
    candidate = null;
    const old = channel;
    channel = { kind: c.kind, handle: c.handle, c, lastAt: now() };
    if (old) drop(old.c);
    delete why[c.kind];
    if (c.index === 0) {
      failures = 0;
      if (climbTimer) { clearT(climbTimer); climbTimer = null; }
      retryAt = null;
    } else {
      later(); // probe the better channel, with backoff
    }
  }

  // The adopted channel died: the next one down at once, this one again later.
  function lost(c, reason) {
    if (c.done) return;
    if (!channel || channel.c !== c) { failed(c, reason); return; }
    drop(c);
    channel = null;
    why[c.kind] = reason;
    if (climbTimer) { clearT(climbTimer); climbTimer = null; }
    if (c.index + 1 < kinds.length) open(kinds[c.index + 1], c.index + 1);
    else later();
    evaluate();
    settle();
  }

  function heard(c, msg) {
    if (c.done) return;
    if (candidate === c) adopt(c);
    if (!channel || channel.c !== c) return;
    channel.lastAt = now();
    if (!msg || typeof msg !== "object") return;
    onMessage(msg, c.kind);
  }

  function openSocket(c) {
    const Native = o.WebSocket || g.WebSocket;
    const url = endpoint("ws", resumeParams());
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const socket = new Native(url.href);
    // Handler properties, not listeners: a page may wrap them (tests do).
    socket.onmessage = (event) => {
      let msg;
      try { msg = JSON.parse(event.data); } catch (e) { return; }
      heard(c, msg);
    };
    socket.onclose = (event) => {
      // In words a class understands: what happened, never a close code.
      const reason = event.code === 1001 ? (/switched off/.test(event.reason || "") ? "the server switched the WebSocket channel off" : "the server closed the WebSocket channel")
        : event.code === 4000 ? "the WebSocket channel went silent for " + o.silenceMs / 1000 + " s"
        : "the WebSocket channel cannot be reached";
      lost(c, reason);
    };
    socket.onerror = () => { /* onclose follows */ };
    return { close: (code, text) => { try { socket.close(code || 1000, text || ""); } catch (e) { socket.close(); } } };
  }

  function openEvents(c) {
    const Native = o.EventSource || g.EventSource;
    const source = new Native(endpoint("events", resumeParams()).href);
    const onEvent = (type) => (event) => {
      let msg;
      try { msg = JSON.parse(event.data); } catch (e) { return; }
      if (msg && typeof msg === "object" && !msg.type) msg.type = type;
      heard(c, msg);
    };
    ["welcome", "initialSnapshot", "statusUpdate", "heartbeat", "configError", "historyState"].forEach((type) => {
      source.addEventListener(type, onEvent(type));
    });
    source.onmessage = onEvent("message");
    source.onerror = () => {
      // CLOSED: refused for good (an HTTP error, or switched off). CONNECTING:
      // EventSource retries by itself with Last-Event-ID; a candidate that
      // never spoke moves on at once, an adopted one gets its retry (silence decides).
      if (source.readyState === 2) lost(c, "the Server-Sent Events channel cannot be reached");
      else if (candidate === c) failed(c, "the Server-Sent Events channel cannot be reached");
    };
    return { close: () => source.close() };
  }

  // Decide where the state comes from: the adopted channel while its monitor
  // lives; polling otherwise (or connecting, before anything failed).
  function evaluate() {
    let transport;
    let reason = "";
    if (channel && monitor.alive !== false) {
      transport = channel.kind;
      stopPolling();
    } else if (channel) {
      reason = "the monitor has stopped sending heartbeats, so the server cannot vouch for any status";
      transport = canPoll ? "polling" : "connecting";
      if (canPoll) startPolling();
    } else if (candidate && !polling) {
      transport = "connecting";
    } else {
      reason = kinds.map((k) => why[k]).filter(Boolean).join(", and ") || "there is no live channel to healthmon";
      transport = canPoll ? "polling" : "connecting";
      if (canPoll && !candidate) startPolling();
    }
    if (polling && transport === "connecting") transport = "polling";
    const next = {
      transport, channel: channel ? channel.kind : null, reason, monitorAlive: monitor.alive,
      retryAt, lastPollAt,
    };
    const changed = next.transport !== connection.transport || next.channel !== connection.channel ||
      next.reason !== connection.reason || next.monitorAlive !== connection.monitorAlive || next.retryAt !== connection.retryAt;
    connection = next;
    if (changed) {
      emit("connection", Object.assign({}, connection));
      refreshGates();
    }
  }

  // -- polling ------------------------------------------------------------------

  function fetchWithTimeout(url, timeoutMs) {
    const controller = new AbortController();
    const timer = setT(() => controller.abort(), timeoutMs);
    return fetchFn(url, { cache: "no-store", credentials: "omit", signal: controller.signal })
      .then((res) => res.text().then((text) => ({ res, text })))
      .finally(() => clearT(timer));
  }

  // Whether anything answers at `url`, asked without reading the answer
  // ("no-cors": an opaque answer means the service answered).
  function answers(url) {
    const controller = new AbortController();
    const timer = setT(() => controller.abort(), o.pollTimeoutMs);
    return fetchFn(url, { mode: "no-cors", cache: "no-store", credentials: "omit", signal: controller.signal })
      .then(() => true, () => false)
      .finally(() => clearT(timer));
  }

  // One check by the page: a result to observe, or {unreadable} when the service
  // answers but this page may not read it. A browser reports a refused connection
  // and a CORS refusal with the same error, so an opaque second request tells them apart.
  function checkOnce(svc) {
    const begun = now();
    return fetchWithTimeout(svc.healthUrl, o.pollTimeoutMs).then(
      (r) => Object.assign(classifyHealth(r.res.status, r.text), { latencyMs: now() - begun }),
      (err) => {
        const failed = { status: "down", reason: describeFailure(err, o.pollTimeoutMs), latencyMs: now() - begun };
        if (err && err.name === "AbortError") return failed;
        return answers(svc.healthUrl).then((answered) => (answered ? { unreadable: UNREADABLE } : failed));
      }
    );
  }

  function pollLoop(name, generation) {
    const svc = services.get(name);
    if (!polling || generation !== pollGeneration || !svc || !svc.healthUrl || svc.unreadable) return;
    const begun = now();
    checkOnce(svc).then((result) => {
      // A stopped poll's late answer must not overwrite the pushed state.
      if (!polling || generation !== pollGeneration) return;
      lastPollAt = now();
      if (result.unreadable) {
        // Not down, and not polled again: its last pushed state stays (and turns stale).
        svc.unreadable = result.unreadable;
        markReady();
        evaluate();
        settle();
        return;
      }
      observe(name, result, "polling");
      markReady();
      evaluate();
      settle();
      setT(() => pollLoop(name, generation), Math.max(0, o.pollEveryMs - (now() - begun)));
    });
  }

  function startPolling() {
    if (polling || closed) return;
    polling = true;
    pollGeneration += 1;
    const generation = pollGeneration;
    // One loop per service, in parallel: a hung service delays no other.
    order.forEach((name) => pollLoop(name, generation));
  }

  function stopPolling() {
    if (!polling) return;
    polling = false;
    pollGeneration += 1;
  }

  // -- the document ---------------------------------------------------------------

  /**
   * GET /api/services: the services, their URLs and (with `statuses`) their
   * states. Without a live channel it also decides which services exist.
   */
  function refresh(opts) {
    const withStatuses = !!(opts && opts.statuses);
    const pushesBefore = configPushes;
    return fetchFn(endpoint("api/services").href, { cache: "no-store", credentials: "omit" }).then((res) => {
      if (!res.ok) throw new Error("HTTP " + res.status);
      return res.json();
    }).then((doc) => {
      if (!doc || !Array.isArray(doc.services)) throw new Error("not a services document");
      const live = channel && monitor.alive !== false;
      if (!live || !knownOnce) reconcile(doc.services);
      else doc.services.forEach((s) => { const svc = services.get(s.name); if (svc) takeInfo(svc, s); });
      // Every change of it is pushed: one pushed while this document was on its
      // way is at least as new as the document's.
      if ("config_error" in doc && configPushes === pushesBefore) configError = doc.config_error || null;
      if (withStatuses && live) applyStatuses(doc.services, channel.kind, now());
      settle();
      return doc;
    });
  }

  // -- readiness, ticking -----------------------------------------------------------

  function markReady() {
    if (!resolveReady) return;
    const done = resolveReady;
    resolveReady = null;
    if (readyTimer) clearT(readyTimer);
    done(hm);
  }

  function tick() {
    tickTimer = setT(tick, o.tickMs);
    if (channel && now() - channel.lastAt > o.silenceMs) {
      const c = channel.c;
      if (c.kind === "websocket") {
        try { c.handle.close(4000, "silent"); } catch (e) { /* closing */ }
      }
      lost(c, "the " + CHANNEL_NAMES[c.kind] + " went silent (no heartbeat for " + o.silenceMs / 1000 + " s)");
      return;
    }
    evaluate();
    settle();
  }

  // -- gating ---------------------------------------------------------------------------

  function unreachable() {
    return !knownOnce && connection.transport !== "websocket" && connection.transport !== "sse";
  }

  /**
   * Whether a feature that requires `requires` may be used now, and why not.
   * {allowed, cause: null|"down"|"degraded"|"dependency"|"unknown", reason, warning}
   */
  function verdict(opts) {
    const requires = list(opts && opts.requires);
    const strict = opts && opts.allow === "up";
    const failOpen = opts && (opts.whenUnknown === "enable" || opts.whenUnknown === "last-known");
    const lastKnown = opts && opts.whenUnknown === "last-known";
    const at = now();
    const blocked = [];
    const unknown = [];
    const warnings = [];
    const push = (arr, text, cause) => { if (!arr.some((x) => x.text === text)) arr.push({ text, cause }); };
    requires.forEach((name) => {
      const svc = services.get(name);
      if (!svc) {
        push(unknown, unreachable() ? "healthmon is unreachable, so the state of " + name + " is unknown"
          : name + " is not monitored by healthmon", "unknown");
        return;
      }
      const stale = isStale(svc, at);
      const unchecked = svc.unreadable && connection.transport === "polling";
      if (unchecked && (svc.status === "unknown" || (stale && !lastKnown))) {
        push(unknown, "this page " + svc.unreadable.replace(/^can't check from this page/, "can't check " + name) +
          (svc.status === "unknown" ? "" : " (last known: " + svc.status + ")"), "unknown");
      } else if (svc.status === "unknown") {
        push(unknown, unreachable() ? "healthmon is unreachable, so the state of " + name + " is unknown"
          : "the state of " + name + " is not known yet", "unknown");
      } else if (stale && !lastKnown) {
        const fresh = freshAt(svc);
        push(unknown, "no fresh check of " + name + (fresh === null ? "" : " for " + ago(at - fresh)) +
          " (last known: " + svc.status + ")", "unknown");
      } else if (svc.status === "down") {
        push(blocked, name + " is down" + (svc.reason ? " (" + svc.reason + ")" : ""), "down");
      } else if (svc.status === "degraded") {
        const text = name + " is degraded" + (svc.reason ? " (" + svc.reason + ")" : "");
        if (strict) push(blocked, text, "degraded");
        else push(warnings, text, "degraded");
      }
      blockersOf(svc, at).forEach((b) => {
        if (b.status === "down") push(blocked, name + " depends on " + b.service + ", which is down", "dependency");
        else push(unknown, name + " depends on " + b.service + ", whose state is unknown (" + (b.status === "stale" ? "no fresh check" : "not known") + ")", "unknown");
      });
    });
    const join = (arr) => arr.map((x) => x.text).join("; ");
    if (blocked.length) return { allowed: false, cause: blocked[0].cause, reason: join(blocked), warning: null };
    if (unknown.length) {
      return failOpen ? { allowed: true, cause: "unknown", reason: null, warning: join(unknown) }
        : { allowed: false, cause: "unknown", reason: join(unknown), warning: null };
    }
    return { allowed: true, cause: warnings.length ? "degraded" : null, reason: null, warning: warnings.length ? join(warnings) : null };
  }

  function refreshGates() {
    gates.forEach((gate) => gate.apply());
    refreshBadges();
  }

  function gate(element, opts) {
    const gateObj = new Gate(hm, element, opts || {});
    gates.add(gateObj);
    gateObj.apply();
    return gateObj;
  }

  // -- declarative binding -------------------------------------------------------------

  let observer = null;
  let boundRoot = null;
  const declared = new Map(); // element -> gate

  function declaredOptions(el) {
    return {
      requires: list(el.getAttribute("data-hm-requires")),
      allow: el.getAttribute("data-hm-allow") || undefined,
      whenUnknown: el.getAttribute("data-hm-when-unknown") || undefined,
    };
  }

  function scan() {
    if (!boundRoot) return;
    declared.forEach((gateObj, el) => {
      if (!el.isConnected || !el.hasAttribute("data-hm-requires")) { gateObj.release(); declared.delete(el); }
    });
    boundRoot.querySelectorAll("[data-hm-requires]").forEach((el) => {
      const wanted = declaredOptions(el);
      const existing = declared.get(el);
      if (existing) existing.update(wanted);
      else declared.set(el, gate(el, wanted));
    });
    refreshBadges();
  }

  /** Gate every [data-hm-requires] element under `root`, now and whenever one is added or changed. */
  function bind(root) {
    const doc = root || g.document;
    if (!doc || observer) return;
    boundRoot = doc;
    scan();
    if (typeof g.MutationObserver === "function") {
      let queued = false;
      observer = new g.MutationObserver(() => {
        if (queued) return;
        queued = true;
        Promise.resolve().then(() => { queued = false; scan(); });
      });
      observer.observe(doc, {
        subtree: true, childList: true, attributes: true,
        attributeFilter: ["data-hm-requires", "data-hm-allow", "data-hm-when-unknown", "data-hm-status"],
      });
    }
  }

  // <span data-hm-status="billing"> shows billing's state; <span data-hm-connection> the transport.
  function refreshBadges() {
    if (!boundRoot) return;
    const at = now();
    boundRoot.querySelectorAll("[data-hm-status]").forEach((el) => {
      const svc = services.get(el.getAttribute("data-hm-status"));
      const status = svc ? svc.status : "unknown";
      const stale = svc ? isStale(svc, at) : false;
      const text = status + (stale ? " (not confirmed)" : "");
      if (el.getAttribute("data-status") !== status) el.setAttribute("data-status", status);
      if (el.getAttribute("data-stale") !== String(stale)) el.setAttribute("data-stale", String(stale));
      if (el.textContent !== text) el.textContent = text;
    });
    boundRoot.querySelectorAll("[data-hm-connection]").forEach((el) => {
      const t = connection.transport;
      const text = t === "websocket" ? "Live (WebSocket)" : t === "sse" ? "Live (Server-Sent Events)"
        : t === "polling" ? "Polling services directly" : "Connecting…";
      if (el.getAttribute("data-transport") !== t) el.setAttribute("data-transport", t);
      if (el.textContent !== text) el.textContent = text;
    });
  }

  // -- the public object ---------------------------------------------------------------

  const hm = {
    ready,
    get baseUrl() { return base.href; },
    start() {
      if (started || closed) return hm;
      started = true;
      if (Array.isArray(o.services) && o.services.length) {
        reconcile(o.services);
        applyStatuses(o.services, "bootstrap", now());
        settle();
      }
      readyTimer = setT(markReady, o.connectTimeoutMs);
      if (o.bind && (o.root || g.document)) bind(o.root);
      tickTimer = setT(tick, o.tickMs);
      if (kinds.length) climb(0);
      else evaluate();
      return hm;
    },
    /** {status, up, stale, reason, since, source, dependsOn, blockedBy} of one service. */
    status(name) {
      const svc = services.get(name);
      return viewOf(svc || record(name), now());
    },
    /** Everything known about one service (a copy), or null. */
    service(name) {
      const svc = services.get(name);
      if (!svc) return null;
      const at = now();
      return {
        name: svc.name, url: svc.url, healthUrl: svc.healthUrl, dataUrl: svc.dataUrl, dataEndpoint: svc.dataEndpoint,
        mock: svc.mock, mode: svc.mode, dependsOn: svc.dependsOn.slice(), status: svc.status, reason: svc.reason,
        since: svc.since, checks: svc.checks.slice(), latencyMs: svc.latencyMs, source: svc.source,
        stale: isStale(svc, at), serverStale: svc.serverStale, staleAfterMs: svc.staleAfterMs,
        checkedAt: freshAt(svc), blockedBy: blockersOf(svc, at), unreadable: svc.unreadable,
      };
    },
    names() { return order.slice(); },
    connection() { return Object.assign({}, connection); },
    configError() { return configError; },
    monitor() { return Object.assign({}, monitor); },
    /** The stream and sequence number last applied ("stream:seq"), or null. */
    position() { return stream !== null && seq !== null ? stream + ":" + seq : null; },
    on(type, fn) {
      if (!listeners[type]) throw new Error("unknown event: " + type);
      listeners[type].push(fn);
      return () => { const i = listeners[type].indexOf(fn); if (i >= 0) listeners[type].splice(i, 1); };
    },
    verdict,
    gate,
    bind,
    refresh,
    backoffDelay: (attempt) => backoffDelay(attempt, o.backoffBaseMs, o.backoffCapMs, random),
    close() {
      closed = true;
      if (candidate) drop(candidate);
      if (channel) drop(channel.c);
      candidate = null;
      channel = null;
      stopPolling();
      [climbTimer, tickTimer, resyncTimer, readyTimer].forEach((t) => { if (t) clearT(t); });
      if (observer) observer.disconnect();
      gates.forEach((gateObj) => gateObj.release());
      markReady();
    },
  };
  hm._internal = { gates, get channel() { return channel ? channel.kind : null; }, get polling() { return polling; } };
  hm._removeGate = (gateObj) => gates.delete(gateObj);
  return hm;
}

// ---- a gated element ------------------------------------------------------------

const CONTROLS = ["BUTTON", "INPUT", "SELECT", "TEXTAREA", "FIELDSET", "OPTGROUP", "OPTION"];
const SUBMITS = "button[type=submit], button:not([type]), input[type=submit], input[type=image]";
let reasonIds = 0;

/**
 * One gated element. Closed: aria-disabled="true", `disabled` on a form
 * control (a form's submit buttons for a form), clicks (links, other
 * elements) and submits (forms) blocked, and the reason in words in a
 * [data-hm-reason] element beside it (and its title). The gate owns
 * `disabled`: one written in the markup is the closed state until the module
 * runs, and the first verdict that allows lifts it; release() puts back what
 * the markup had.
 */
class Gate {
  constructor(hm, element, opts) {
    this.hm = hm;
    this.element = element;
    this.opts = Object.assign({}, opts);
    this.current = null;
    this.saved = {
      ariaDisabled: element.getAttribute("aria-disabled"),
      title: element.getAttribute("title"),
      describedBy: element.getAttribute("aria-describedby"),
      disabled: CONTROLS.indexOf(element.tagName) >= 0 ? element.disabled : null,
    };
    this.submits = new Map(); // a form's submit button -> {disabled, ariaDisabled} before the gate
    this.reasonEl = this.opts.reason === false ? null : this.findReason();
    this.block = (event) => {
      if (!this.current || this.current.allowed) return;
      event.preventDefault();
      event.stopImmediatePropagation();
      if (this.reasonEl) {
        this.reasonEl.hidden = false;
        this.reasonEl.setAttribute("data-hm-blocked", String(Date.now()));
      }
      element.dispatchEvent(new CustomEvent("hm-blocked", { bubbles: true, detail: this.current }));
    };
    element.addEventListener(element.tagName === "FORM" ? "submit" : "click", this.block, true);
  }

  findReason() {
    const el = this.element;
    const doc = el.ownerDocument;
    const named = el.getAttribute("data-hm-reason-in");
    if (named && doc.getElementById(named)) return doc.getElementById(named);
    if (el.tagName === "FORM") {
      const inside = el.querySelector("[data-hm-reason]");
      if (inside) return inside;
    }
    const next = el.nextElementSibling;
    if (next && next.hasAttribute("data-hm-reason")) return next;
    const made = doc.createElement("span");
    made.className = "hm-reason";
    made.setAttribute("data-hm-reason", "");
    made.setAttribute("data-hm-made", "");
    made.hidden = true;
    if (el.tagName === "FORM") el.appendChild(made);
    else el.insertAdjacentElement("afterend", made);
    return made;
  }

  update(opts) {
    this.opts = Object.assign({}, opts);
    this.apply();
  }

  apply() {
    const v = this.hm.verdict(this.opts);
    const prev = this.current;
    this.current = v;
    if (prev && prev.allowed === v.allowed && prev.reason === v.reason && prev.warning === v.warning && prev.cause === v.cause) return;
    const el = this.element;
    const closed = !v.allowed;
    el.setAttribute("aria-disabled", closed ? "true" : "false");
    el.setAttribute("data-hm-gate", closed ? "closed" : "open");
    if (v.cause) el.setAttribute("data-hm-cause", v.cause);
    else el.removeAttribute("data-hm-cause");
    if (this.saved.disabled !== null) el.disabled = closed;
    if (el.tagName === "FORM") {
      // A form has no `disabled` of its own: its submit buttons do.
      el.querySelectorAll(SUBMITS).forEach((b) => {
        if (!this.submits.has(b)) this.submits.set(b, { disabled: b.disabled, ariaDisabled: b.getAttribute("aria-disabled") });
        b.disabled = closed;
        b.setAttribute("aria-disabled", closed ? "true" : "false");
      });
    }
    const text = closed ? v.reason : v.warning || "";
    if (this.reasonEl && this.opts.reason !== false) {
      if (!this.reasonEl.id) this.reasonEl.id = "hm-reason-" + ++reasonIds;
      this.reasonEl.textContent = text;
      this.reasonEl.hidden = !text;
      this.reasonEl.setAttribute("data-hm-cause", v.cause || "");
      const ids = (this.saved.describedBy || "").split(/\s+/).filter(Boolean);
      if (ids.indexOf(this.reasonEl.id) < 0) ids.push(this.reasonEl.id);
      el.setAttribute("aria-describedby", ids.join(" "));
    }
    if (closed && this.reasonEl) el.setAttribute("title", v.reason);
    else if (this.saved.title !== null) el.setAttribute("title", this.saved.title);
    else el.removeAttribute("title");
    if (typeof this.opts.onVerdict === "function") this.opts.onVerdict(v, el);
    el.dispatchEvent(new CustomEvent("hm-gate", { bubbles: true, detail: v }));
  }

  verdict() { return this.current; }

  /** Stop gating: the element is as it was before. */
  release() {
    const el = this.element;
    el.removeEventListener(el.tagName === "FORM" ? "submit" : "click", this.block, true);
    const restore = (name, value) => { if (value === null) el.removeAttribute(name); else el.setAttribute(name, value); };
    restore("aria-disabled", this.saved.ariaDisabled);
    restore("title", this.saved.title);
    restore("aria-describedby", this.saved.describedBy);
    el.removeAttribute("data-hm-gate");
    el.removeAttribute("data-hm-cause");
    if (this.saved.disabled !== null) el.disabled = this.saved.disabled;
    this.submits.forEach((was, b) => {
      b.disabled = was.disabled;
      if (was.ariaDisabled === null) b.removeAttribute("aria-disabled");
      else b.setAttribute("aria-disabled", was.ariaDisabled);
    });
    this.submits.clear();
    if (this.reasonEl && this.reasonEl.hasAttribute("data-hm-made")) this.reasonEl.remove();
    else if (this.reasonEl) { this.reasonEl.textContent = ""; this.reasonEl.hidden = true; }
    this.hm._removeGate(this);
  }
}

// ---- <script type="module" src=".../client.js" data-hm-connect="BASE"> ------------
// Connects by itself, binds [data-hm-requires] and exposes the client as
// window.hm (and on the document's "hm-ready" event). BASE defaults to the
// origin the script came from.
if (typeof document !== "undefined" && typeof document.querySelector === "function") {
  const tag = document.querySelector("script[data-hm-connect]");
  if (tag && !globalThis.__hmAutoConnect) {
    globalThis.__hmAutoConnect = true;
    const target = tag.getAttribute("data-hm-connect") || new URL(tag.src, location.href).origin + "/";
    connect(target).then((hm) => {
      if (!("hm" in globalThis)) globalThis.hm = hm;
      document.dispatchEvent(new CustomEvent("hm-ready", { detail: hm }));
    });
  }
}
