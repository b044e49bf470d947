// healthmon page: one store, fed by the WebSocket (push) or, when that is not
// live, by polling each service directly (poll); every part of the page reads
// the store and nothing else. No framework, no build step.
(function () {
  "use strict";

  // ---- constants --------------------------------------------------------
  var SILENCE_MS = 3000; // no heartbeat for this long: the socket is silent
  var POLL_EVERY_MS = 1000; // fallback: each service about every second
  var POLL_TIMEOUT_MS = 1500; // each fallback request's own timeout
  var DATA_TIMEOUT_MS = 8000; // modal and form requests
  var BACKOFF_BASE_MS = 1000;
  var BACKOFF_CAP_MS = 10000;
  var LOG_CAP = 200;
  var SAMPLES = 60; // the history area's last 60 s: one latency sample a heartbeat
  var META_REFRESH_MS = 60000; // mocks, modes, config error (and the server's uptime) once a minute
  var UPTIME_WINDOW_MS = 3600000; // "Uptime (1 h)", as src/healthmon/history.py
  var MAX_CHANGES = 2048; // as src/healthmon/history.py
  var CHECKS_SHOWN = 3;
  var WORDS = { up: "Up", degraded: "Degraded", down: "Down", unknown: "Unknown" };
  var SHAPES = { up: "✓", degraded: "▲", down: "✕", unknown: "?" };
  var RANK = { down: 3, degraded: 2, unknown: 1, up: 0 };
  var PASS = ["pass", "ok", "up"];
  var WARN = ["warn", "warning", "degraded"];
  var FAIL = ["fail", "error", "down"];

  // ---- the one store ----------------------------------------------------
  var boot = JSON.parse(document.getElementById("bootstrap").textContent);
  var loadedAt = Date.now();
  var store = {
    order: [],
    services: {},
    connection: "connecting", // live | polling | connecting
    connectionWhy: "",
    monitor: boot.monitor || { alive: null },
    controls: { monitor: boot.monitor ? boot.monitor.running : null, ws: boot.ws ? boot.ws.running : null },
    intervalMs: boot.interval_ms || 500,
    timeoutMs: boot.timeout_ms || 1000,
    lastBeatAt: null,
    lastPollAt: null,
    reconnectAt: null,
    configError: boot.config_error || null,
    // The oldest "since" the server has sent: about when its board first saw
    // its services (a service that never changed began then), so how far back
    // its uptime figures reach. Its own history stays on the server.
    boardSince: null,
    log: [],
  };
  var listeners = [];
  var scheduled = false;

  function subscribe(fn) { listeners.push(fn); }
  function changed() {
    if (scheduled) return;
    scheduled = true;
    window.requestAnimationFrame(function () {
      scheduled = false;
      for (var i = 0; i < listeners.length; i++) listeners[i](store);
    });
  }

  // A service entry from a snapshot or GET /api/services (the same shape,
  // though a snapshot carries no "mock" or "mode": those stay unknown until
  // the next GET /api/services says), received at ``now``.
  function newService(s, now) {
    var svc = {
      name: s.name,
      url: s.url,
      dataEndpoint: s.data_endpoint || "",
      healthUrl: s.health_url || s.url + s.health_path,
      dataUrl: s.data_url || s.url + s.data_endpoint,
      mock: typeof s.mock === "boolean" ? s.mock : null,
      mode: s.mode,
      status: WORDS[s.status] ? s.status : "unknown",
      latencyMs: s.latency_ms,
      reason: s.reason,
      checks: normChecks(s.checks),
      since: s.since,
      // Freshness. The server says how old its latest check is (age_ms) and
      // whether that is too old (stale); the page keeps the time of that
      // check on its own clock (receipt − age), and the time of its own last
      // check when it polls. Wall clocks are never compared across machines.
      staleAfterMs: defaultStaleAfter(),
      pushFreshAt: null, // this page's clock: when the server's latest check was made
      pollFreshAt: null, // this page's clock: its own latest check (fallback)
      serverStale: false,
      wasStale: false, // what the card showed last, to announce the change once
      source: "snapshot",
      // Uptime: the status changes this page knows ([ts, up], oldest first),
      // after an optional base from the server's figure (see uptimeOf).
      changes: [],
      base: null,
      samples: [], // {at, latency, status}, oldest first, at most SAMPLES
    };
    takeFreshness(svc, s, now);
    if (svc.status !== "unknown") addChange(svc, svc.since || now, svc.status);
    takeHistory(svc, s.history, now);
    return svc;
  }

  // A service is stale after 2 × (interval + timeout) without a check, unless
  // the server says otherwise per service (stale_after_ms).
  function defaultStaleAfter() { return 2 * (store.intervalMs + store.timeoutMs); }

  // The server's word on one service's freshness, received at ``now``:
  // {stale, age_ms, stale_after_ms} from a snapshot, the API or a status update.
  function takeFreshness(svc, s, now) {
    if (typeof s.stale_after_ms === "number" && s.stale_after_ms > 0) svc.staleAfterMs = s.stale_after_ms;
    if (typeof s.age_ms === "number") svc.pushFreshAt = now - Math.max(0, s.age_ms);
    if (typeof s.stale === "boolean") svc.serverStale = s.stale;
  }

  // When the latest check this page knows of was made (its own or the server's).
  function freshAt(svc) {
    if (svc.pushFreshAt === null) return svc.pollFreshAt;
    if (svc.pollFreshAt === null) return svc.pushFreshAt;
    return Math.max(svc.pushFreshAt, svc.pollFreshAt);
  }

  // Stale: the state shown is not backed by a recent check. The page's own
  // fresh check (fallback polling) settles it; otherwise the server saying
  // so, or the page's own count (the socket may have gone quiet), does.
  function isStale(svc, now) {
    if (svc.status === "unknown") return false;
    if (svc.pollFreshAt !== null && now - svc.pollFreshAt <= svc.staleAfterMs) return false;
    if (svc.pushFreshAt === null) return true;
    return svc.serverStale || now - svc.pushFreshAt > svc.staleAfterMs;
  }

  // ---- uptime: the same time-weighted sum as src/healthmon/history.py ----
  function isUp(status) { return status === "up" || status === "degraded"; }

  function addChange(svc, ts, status) {
    if (status === "unknown") return;
    var list = svc.changes;
    var last = list.length ? list[list.length - 1] : null;
    if (last && last[0] > ts) ts = last[0]; // never before a change already known
    if (last && last[1] === isUp(status)) return; // up ↔ degraded: the same for uptime
    list.push([ts, isUp(status)]);
    if (list.length > MAX_CHANGES) list.splice(0, list.length - MAX_CHANGES);
  }

  // Percent of the known part of the last hour spent up (or degraded), or
  // null when nothing is known. ``svc.base`` stands for what the server knew
  // before this page's own changes start: its figure (upFrac) over the span
  // it covered (knownMs), sliding out of the window as time passes.
  function uptimeOf(svc, now) {
    var start = now - UPTIME_WINDOW_MS;
    var list = svc.changes;
    while (list.length > 1 && list[1][0] <= start) list.shift();
    var upMs = 0;
    var knownMs = 0;
    var base = svc.base;
    if (base) {
      var kept = Math.max(0, Math.min(base.knownMs, UPTIME_WINDOW_MS - (now - base.at)));
      knownMs += kept;
      upMs += kept * base.upFrac;
    }
    if (!list.length && !base) return null;
    for (var i = 0; i < list.length; i++) {
      var begin = Math.max(list[i][0], start);
      var end = i + 1 < list.length ? list[i + 1][0] : now;
      var span = Math.max(0, end - begin);
      knownMs += span;
      if (list[i][1]) upMs += span;
    }
    if (knownMs === 0) {
      if (list.length) return list[list.length - 1][1] ? 100 : 0;
      return Math.round(base.upFrac * 10000) / 100;
    }
    return Math.round(10000 * upMs / knownMs) / 100;
  }

  // Failing checks, worst first; the Status enum's degraded/down read as warn/fail.
  function normChecks(list) {
    if (!Array.isArray(list)) return [];
    return list.filter(function (c) { return c && typeof c.name === "string"; }).map(function (c) {
      var bad = c.status === "down" || c.status === "fail";
      return {
        name: c.name,
        word: bad ? "fail" : "warn",
        output: typeof c.output === "string" && c.output ? c.output : null,
        observed: typeof c.observed === "string" && c.observed ? c.observed : null,
      };
    });
  }

  // The server's history: uptime over the hour and up to 60 latency samples,
  // about a second apart, oldest first. Each sample's state is known when it
  // was taken after the current state began; before that, what this page saw
  // itself at about that time, if anything.
  function takeHistory(svc, history, now) {
    if (!history || typeof history !== "object") return;
    takeUptime(svc, history, now);
    if (!Array.isArray(history.latency)) return;
    var seen = svc.samples;
    var list = history.latency.slice(-SAMPLES);
    svc.samples = list.map(function (latency, i) {
      var at = now - (list.length - 1 - i) * 1000;
      var status = svc.status !== "unknown" && svc.since && at >= svc.since ? svc.status : null;
      for (var j = 0; status === null && j < seen.length; j++) {
        if (Math.abs(seen[j].at - at) <= 600) status = seen[j].status;
      }
      return { at: at, latency: typeof latency === "number" ? latency : null, status: status || "none" };
    });
  }

  // The oldest "since" among services the server describes (see boardSince).
  function noteSince(list) {
    list.forEach(function (s) {
      if (s && typeof s.since === "number" && (store.boardSince === null || s.since < store.boardSince)) {
        store.boardSince = s.since;
      }
    });
  }

  // The server's uptime. Its list of changes, when sent, replaces this page's
  // (exact). Otherwise its figure becomes the base the page's own changes
  // from now on are added to, over the span the server knew: the hour, or
  // less when its board is younger (since its oldest "since").
  function takeUptime(svc, history, now) {
    if (Array.isArray(history.changes)) {
      svc.base = null;
      svc.changes = history.changes.filter(function (c) {
        return Array.isArray(c) && typeof c[0] === "number";
      }).map(function (c) { return [c[0], !!c[1]]; }).slice(-MAX_CHANGES);
      if (svc.status !== "unknown") addChange(svc, svc.since || now, svc.status);
      return;
    }
    if (typeof history.uptime_1h !== "number") return;
    var knownMs = typeof history.known_ms === "number" ? history.known_ms
      : store.boardSince !== null ? Math.max(0, Math.min(UPTIME_WINDOW_MS, now - store.boardSince)) : UPTIME_WINDOW_MS;
    svc.base = { at: now, upFrac: history.uptime_1h / 100, knownMs: knownMs };
    svc.changes = svc.status === "unknown" ? [] : [[now, isUp(svc.status)]];
  }

  function addSample(svc, latency, status, now) {
    svc.samples.push({ at: now, latency: typeof latency === "number" ? latency : null, status: status });
    if (svc.samples.length > SAMPLES) svc.samples.splice(0, svc.samples.length - SAMPLES);
  }

  noteSince(boot.services || []);
  (boot.services || []).forEach(function (s) {
    store.order.push(s.name);
    store.services[s.name] = newService(s, loadedAt);
  });

  var logSeq = 0;
  function addLog(svc, from, to, source, reason) {
    logSeq += 1;
    store.log.unshift({ seq: logSeq, ts: Date.now(), service: svc.name, from: from, to: to, source: source, reason: reason });
    if (store.log.length > LOG_CAP) store.log.length = LOG_CAP;
  }

  // Apply one observation of a service; logs and announces real changes.
  // ``obs.checkedAt`` (this page's clock) is when the check was made; a
  // pushed check older than the page's own is news to no one.
  function observe(name, obs, source) {
    var svc = store.services[name];
    if (!svc) return;
    var now = Date.now();
    var checkedAt = typeof obs.checkedAt === "number" ? obs.checkedAt : now;
    if (source === "poll") svc.pollFreshAt = now;
    else if (svc.pollFreshAt !== null && checkedAt < svc.pollFreshAt) { changed(); return; }
    var status = WORDS[obs.status] ? obs.status : "unknown";
    var from = svc.status;
    svc.latencyMs = obs.latencyMs !== undefined ? obs.latencyMs : svc.latencyMs;
    svc.reason = status === "up" ? null : obs.reason || null;
    if (status === "up") svc.checks = [];
    else if (obs.checks !== undefined) svc.checks = normChecks(obs.checks);
    else if (status !== from) svc.checks = []; // an observation without checks (no body)
    svc.source = source;
    if (status !== from) {
      svc.status = status;
      svc.since = obs.since || now;
      addChange(svc, svc.since, status);
      // First knowledge (unknown → x) is not a change worth a log line.
      if (from !== "unknown") {
        addLog(svc, from, status, source, svc.reason);
        announce(name + " is " + WORDS[status].toLowerCase() + (svc.reason ? ": " + svc.reason : ""));
      }
    } else if (obs.since && source !== "poll") {
      svc.since = obs.since;
    }
    changed();
  }

  // A snapshot or GET /api/services document, received at ``now``.
  function applySnapshot(services, source) {
    var now = Date.now();
    noteSince(Object.keys(services).map(function (name) { return services[name]; }));
    Object.keys(services).forEach(function (name) {
      var s = services[name];
      var svc = store.services[name];
      if (!svc || !s || !s.status || s.status === "unknown") return;
      var checkedAt = typeof s.age_ms === "number" ? now - s.age_ms : now;
      // Freshness first, unless this page's own check is newer than the server's.
      if (svc.pollFreshAt === null || checkedAt >= svc.pollFreshAt) takeFreshness(svc, s, now);
      observe(name, {
        status: s.status, latencyMs: s.latency_ms, reason: s.reason, since: s.since, checks: s.checks, checkedAt: checkedAt,
      }, source);
      takeHistory(svc, s.history, now);
    });
  }

  // Follow the server's set of services (a config reload, or a reload missed
  // while the socket was down): new ones get a card, removed ones lose theirs;
  // every other card, the log and the focus stay as they are.
  function reconcile(list, now) {
    var names = list.map(function (s) { return s.name; });
    var added = [];
    var removed = store.order.filter(function (name) { return names.indexOf(name) < 0; });
    removed.forEach(function (name) {
      delete store.services[name];
      unmountService(name);
    });
    list.forEach(function (s) {
      var svc = store.services[s.name];
      if (!svc) {
        store.services[s.name] = newService(s, now);
        added.push(s.name);
        return;
      }
      if (typeof s.mock === "boolean" && svc.mock !== s.mock) {
        svc.mock = s.mock;
        svc.mode = s.mode;
        syncControlRow(svc);
      }
    });
    store.order = names;
    added.forEach(function (name) { mountService(store.services[name]); });
    if (added.length || removed.length) {
      if (polling) { stopPolling(); startPolling(); }
      var parts = [];
      if (added.length) parts.push("Added " + added.join(", ") + ".");
      if (removed.length) parts.push("Removed " + removed.join(", ") + ".");
      announce(parts.join(" "));
      changed();
    }
    return added;
  }

  function setConfigError(error) {
    var value = typeof error === "string" && error ? error : null;
    if (value === store.configError) return;
    store.configError = value;
    announce(value ? "config.toml not applied: " + value : "config.toml applied.");
    changed();
  }

  function setConnection(kind, why) {
    if (store.connection === kind && store.connectionWhy === why) return;
    var before = store.connection;
    store.connection = kind;
    store.connectionWhy = why || "";
    if (before !== kind) {
      if (kind === "live") announce("Live updates restored.");
      else if (kind === "polling") announce("Live updates lost; checking services directly.");
    }
    changed();
  }

  // ---- the polite live region -------------------------------------------
  var pending = [];
  var announceTimer = null;
  function announce(text) {
    pending.push(text);
    if (announceTimer) return;
    announceTimer = window.setTimeout(function () {
      announceTimer = null;
      document.getElementById("announcer").textContent = pending.join(" ");
      pending = [];
    }, 250);
  }

  // ---- fallback polling -------------------------------------------------
  var polling = false;
  var pollGeneration = 0;

  function classify(httpStatus, text) {
    var doc = null;
    try { doc = text ? JSON.parse(text) : null; } catch (e) { doc = null; }
    var output = doc && typeof doc.output === "string" && doc.output ? doc.output.slice(0, 200) : null;
    var checks = bodyChecks(doc);
    if (httpStatus < 200 || httpStatus > 299) {
      return { status: "down", reason: "HTTP " + httpStatus + (output ? ": " + output : ""), checks: checks };
    }
    var verdict = doc && typeof doc.status === "string" ? doc.status.trim().toLowerCase() : null;
    if (FAIL.indexOf(verdict) < 0 && checks.some(function (c) { return c.status === "fail"; })) verdict = "fail";
    else if (PASS.indexOf(verdict) >= 0 || !verdict) verdict = checks.length ? "warn" : verdict;
    if (WARN.indexOf(verdict) >= 0) return { status: "degraded", reason: output || firstCheck(checks) || "health status: warn", checks: checks };
    if (FAIL.indexOf(verdict) >= 0) return { status: "down", reason: output || firstCheck(checks) || "health status: " + verdict, checks: checks };
    return { status: "up", reason: null, checks: [] }; // pass / ok / up, or no body
  }

  // Polling reads the failing checks of a health+json body itself, worst first.
  function bodyChecks(doc) {
    var found = [];
    var checks = doc && doc.checks && typeof doc.checks === "object" ? doc.checks : {};
    Object.keys(checks).forEach(function (name) {
      var entries = Array.isArray(checks[name]) ? checks[name] : [checks[name]];
      entries.forEach(function (e) {
        var word = e && typeof e.status === "string" ? e.status.trim().toLowerCase() : "";
        var bad = FAIL.indexOf(word) >= 0 ? "fail" : WARN.indexOf(word) >= 0 ? "warn" : null;
        if (!bad) return;
        var observed = e.observedValue !== undefined && e.observedValue !== null
          ? String(e.observedValue) + (e.observedUnit ? " " + e.observedUnit : "") : null;
        found.push({
          name: e.componentId ? name + " (" + e.componentId + ")" : name,
          status: bad,
          output: typeof e.output === "string" ? e.output.slice(0, 200) : null,
          observed: observed,
        });
      });
    });
    found.sort(function (a, b) { return (b.status === "fail") - (a.status === "fail"); });
    return found;
  }

  function firstCheck(checks) {
    if (!checks.length) return null;
    var c = checks[0];
    var detail = c.output || c.observed;
    return c.name + ": " + c.status + (detail ? ": " + detail : "") + (checks.length > 1 ? " (+" + (checks.length - 1) + " more)" : "");
  }

  function fetchWithTimeout(url, timeoutMs) {
    var controller = new AbortController();
    var timer = window.setTimeout(function () { controller.abort(); }, timeoutMs);
    return fetch(url, { cache: "no-store", credentials: "omit", signal: controller.signal })
      .then(function (res) {
        return res.text().then(function (text) { return { res: res, text: text }; });
      })
      .finally(function () { window.clearTimeout(timer); });
  }

  function describeFailure(err, timeoutMs) {
    if (err && err.name === "AbortError") return "no answer within " + timeoutMs + " ms";
    return "no answer (connection refused or network error)";
  }

  function checkOnce(svc) {
    var started = performance.now();
    return fetchWithTimeout(svc.healthUrl, POLL_TIMEOUT_MS).then(
      function (r) {
        var c = classify(r.res.status, r.text);
        c.latencyMs = performance.now() - started;
        return c;
      },
      function (err) {
        return { status: "down", reason: describeFailure(err, POLL_TIMEOUT_MS), latencyMs: performance.now() - started };
      }
    );
  }

  function pollLoop(name, generation) {
    if (!polling || generation !== pollGeneration || !store.services[name]) return;
    var started = Date.now();
    checkOnce(store.services[name]).then(function (result) {
      // A stopped poll's late answer must not overwrite the snapshot.
      if (!polling || generation !== pollGeneration) return;
      store.lastPollAt = Date.now();
      observe(name, result, "poll");
      var wait = Math.max(0, POLL_EVERY_MS - (Date.now() - started));
      window.setTimeout(function () { pollLoop(name, generation); }, wait);
    });
  }

  function startPolling() {
    if (polling) return;
    polling = true;
    pollGeneration += 1;
    var generation = pollGeneration;
    // One loop per service, in parallel: a hung service delays no other.
    store.order.forEach(function (name) { pollLoop(name, generation); });
  }

  function stopPolling() {
    if (!polling) return;
    polling = false;
    pollGeneration += 1;
  }

  // ---- the WebSocket ----------------------------------------------------
  var ws = null;
  var wsReady = false; // snapshot received on the current socket
  var attempt = 0;
  var reconnectTimer = null;
  var resyncTimer = null;

  function wsUrl() {
    return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";
  }

  function connect() {
    reconnectTimer = null;
    store.reconnectAt = null;
    var socket;
    try {
      socket = new WebSocket(wsUrl());
    } catch (e) {
      scheduleReconnect("cannot open a WebSocket");
      return;
    }
    ws = socket;
    wsReady = false;
    socket.onmessage = function (event) {
      if (ws !== socket) return;
      var msg;
      try { msg = JSON.parse(event.data); } catch (e) { return; }
      if (!msg || typeof msg !== "object") return;
      onMessage(msg);
    };
    socket.onclose = function (event) {
      if (ws !== socket) return;
      ws = null;
      wsReady = false;
      var why = event.code === 1001 ? "the server closed the WebSocket channel"
        : event.code === 4000 ? "the WebSocket went silent (no heartbeat for 3 s)"
        : "the WebSocket cannot connect (closed with code " + event.code + ")";
      scheduleReconnect(why);
    };
  }

  // Exponential backoff with full jitter, so many tabs never reconnect together.
  function backoffDelay(n) {
    var cap = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * Math.pow(2, n));
    return Math.max(100, Math.random() * cap);
  }

  function scheduleReconnect(why) {
    if (reconnectTimer) return;
    var delay = backoffDelay(attempt);
    attempt = Math.min(attempt + 1, 20);
    store.reconnectAt = Date.now() + delay;
    reconnectTimer = window.setTimeout(connect, delay);
    evaluate(why);
  }

  function onMessage(msg) {
    var now = Date.now();
    if (msg.type === "initialSnapshot") {
      wsReady = true;
      attempt = 0;
      store.lastBeatAt = now;
      var wasAlive = store.monitor.alive;
      if (msg.monitor) store.monitor = msg.monitor;
      if ("config_error" in msg) setConfigError(msg.config_error);
      if (msg.services && typeof msg.services === "object") {
        var list = Object.keys(msg.services).map(function (name) {
          return Object.assign({ name: name }, msg.services[name]);
        });
        noteSince(list);
        // A snapshot does not say which services are mocks: the
        // refreshControls() below asks GET /api/services.
        reconcile(list, now);
      }
      // A snapshot from a board no monitor feeds is stale; polling knows better.
      if (store.monitor.alive !== false && msg.services) {
        applySnapshot(msg.services, "push");
      } else if (store.monitor.alive !== false && msg.data) {
        Object.keys(msg.data).forEach(function (name) {
          observe(name, { status: msg.data[name] ? "up" : "down" }, "push");
        });
      }
      refreshControls();
      evaluate();
      if (wasAlive === false && store.monitor.alive) scheduleResync();
    } else if (msg.type === "statusUpdate" && msg.data) {
      var d = msg.data;
      var svc = store.services[d.service];
      if (!svc) return;
      var status = d.status || (d.up ? "up" : "down");
      var checkedAt = typeof d.age_ms === "number" ? now - d.age_ms : now;
      if (svc.pollFreshAt === null || checkedAt >= svc.pollFreshAt) takeFreshness(svc, d, now);
      // "since" is when the status began: a new reason alone does not move it.
      observe(d.service, {
        status: status, latencyMs: d.latency_ms, reason: d.reason, since: d.since || d.ts, checks: d.checks, checkedAt: checkedAt,
      }, "push");
      takeHistory(svc, d.history, now);
      if (controlsOpen()) refreshControlsSoon();
    } else if (msg.type === "configError") {
      setConfigError(msg.error);
    } else if (msg.type === "heartbeat") {
      store.lastBeatAt = now;
      var before = store.monitor.alive;
      if (msg.monitor) store.monitor = msg.monitor;
      takeAges(msg.ages, msg.stale, now);
      if (store.monitor.alive) takeLatencies(msg.latency, now);
      if (before === false && store.monitor.alive) scheduleResync();
      if (before !== store.monitor.alive) refreshControls();
      evaluate();
      changed();
    }
  }

  // Each heartbeat carries every service's latest check latency: the card's
  // latency and one more point on its sparkline (a gap, marked stale, when
  // that latency is not from a fresh check).
  function takeLatencies(latency, now) {
    if (!wsReady || !latency || typeof latency !== "object") return;
    store.order.forEach(function (name) {
      if (!(name in latency)) return;
      var svc = store.services[name];
      var value = latency[name];
      if (isStale(svc, now)) {
        addSample(svc, null, "stale", now);
        return;
      }
      if (typeof value === "number") svc.latencyMs = value;
      addSample(svc, value, svc.status, now);
    });
  }

  // Each heartbeat also says how old every service's latest check is, and
  // which are stale: per service, never one verdict for the whole board.
  function takeAges(ages, stale, now) {
    if (!wsReady) return;
    var staleNames = Array.isArray(stale) ? stale : [];
    store.order.forEach(function (name) {
      var svc = store.services[name];
      var age = ages && typeof ages === "object" ? ages[name] : undefined;
      if (typeof age !== "number") return;
      var checkedAt = now - Math.max(0, age);
      if (svc.pollFreshAt !== null && checkedAt < svc.pollFreshAt) return; // this page's check is newer
      svc.pushFreshAt = checkedAt;
      svc.serverStale = staleNames.indexOf(name) >= 0;
    });
  }

  // After the monitor comes back, its first round reaches the board within
  // one interval plus one timeout; then the server's document is current.
  function scheduleResync() {
    if (resyncTimer) window.clearTimeout(resyncTimer);
    resyncTimer = window.setTimeout(function () {
      resyncTimer = null;
      getServices().then(function (doc) {
        if (store.connection !== "live") return;
        applyDocument(doc, "push");
      }, function () { /* the next heartbeat or poll corrects us */ });
    }, store.intervalMs + store.timeoutMs + 250);
  }

  // Decide live / polling / connecting from the socket and the monitor.
  function evaluate(why) {
    var now = Date.now();
    var open = ws !== null && ws.readyState === WebSocket.OPEN;
    var beating = store.lastBeatAt !== null && now - store.lastBeatAt < SILENCE_MS;
    if (open && wsReady && !beating) {
      // Silent socket: drop it and reconnect with backoff; poll meanwhile.
      var silent = ws;
      ws = null;
      wsReady = false;
      try { silent.close(4000, "silent"); } catch (e) { /* already closing */ }
      scheduleReconnect("the WebSocket went silent (no heartbeat for 3 s)");
      return;
    }
    if (open && wsReady && store.monitor.alive !== false) {
      stopPolling();
      setConnection("live", "");
      return;
    }
    if (open && wsReady) {
      startPolling();
      setConnection("polling", "the monitor is not sending heartbeats (it is stopped or stuck)");
      return;
    }
    if (!polling && (ws !== null || store.connection === "connecting") && !why) {
      setConnection("connecting", "");
      return;
    }
    startPolling();
    setConnection("polling", why || store.connectionWhy || "the WebSocket is not connected");
  }

  // ---- HTTP API ---------------------------------------------------------
  function getServices() {
    return fetch("/api/services", { cache: "no-store" }).then(function (res) {
      if (!res.ok) throw new Error("HTTP " + res.status);
      return res.json();
    });
  }

  function postJson(path, body) {
    return fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    }).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (json) {
        if (!res.ok) throw new Error(json.error || "HTTP " + res.status);
        return json;
      });
    });
  }

  // ---- rendering: cards -------------------------------------------------
  function $(root, sel) { return root.querySelector(sel); }
  function cardOf(name) { return document.querySelector('.card[data-service="' + CSS.escape(name) + '"]'); }
  function modalOf(name) { return document.querySelector('dialog[data-modal="' + CSS.escape(name) + '"]'); }

  function pad2(n) { return n < 10 ? "0" + n : "" + n; }
  function clock(ms) {
    var d = new Date(ms);
    return pad2(d.getHours()) + ":" + pad2(d.getMinutes()) + ":" + pad2(d.getSeconds());
  }
  function ago(ms, now) {
    var s = Math.max(0, Math.round((now - ms) / 1000));
    if (s < 60) return s + " s";
    var m = Math.floor(s / 60);
    if (m < 60) return m + " min";
    var h = Math.floor(m / 60);
    return h + " h " + (m % 60) + " min";
  }
  // "4 s" since the latest check this page knows of (its own or the server's).
  function staleFor(svc, now) {
    var at = freshAt(svc);
    return at === null ? "an unknown time" : ago(at, now);
  }

  function setPill(el, status) {
    el.setAttribute("data-status", status);
    $(el, ".shape").textContent = SHAPES[status];
    $(el, ".word").textContent = WORDS[status];
  }

  // Stale, the gate stays as it was last known, and its legend says so.
  function setGate(card, svc, stale, now) {
    var gate = $(card, "[data-role=gate]");
    var legend = $(card, "[data-role=gate-reason]");
    var down = svc.status === "down";
    gate.disabled = down;
    gate.setAttribute("aria-disabled", down ? "true" : "false");
    var controls = gate.querySelectorAll("button, input");
    for (var i = 0; i < controls.length; i++) controls[i].disabled = down;
    var form = $(card, "[data-action=form]");
    form.setAttribute("aria-disabled", down ? "true" : "false");
    gate.setAttribute("data-gate", down ? "disabled" : svc.status === "degraded" ? "warning" : "enabled");
    gate.setAttribute("data-stale", stale ? "true" : "false");
    if (stale) {
      setText(legend, SHAPES[svc.status] + " Last known: " + svc.status + (down && svc.reason ? " (" + svc.reason + ")" : "") +
        " · not confirmed for " + staleFor(svc, now));
    } else if (down) {
      setText(legend, "✕ Unavailable — " + svc.name + " is down" + (svc.reason ? " (" + svc.reason + ")" : ""));
    } else if (svc.status === "degraded") {
      setText(legend, "▲ Warning — " + svc.name + " is degraded; answers may be slow or partial");
    } else if (svc.status === "unknown") {
      setText(legend, "Available — status not checked yet");
    } else {
      setText(legend, "Available");
    }
  }

  function renderCard(svc, now) {
    var card = cardOf(svc.name);
    if (!card) return;
    var stale = isStale(svc, now);
    if (stale !== svc.wasStale) {
      // Once per change, never the ticking count.
      if (stale) announce(svc.name + ": no fresh check; showing the last known state, " + svc.status + ".");
      else if (svc.status !== "unknown") announce(svc.name + " checked again: " + svc.status + ".");
      svc.wasStale = stale;
    }
    card.setAttribute("data-status", svc.status);
    card.setAttribute("data-stale", stale ? "true" : "false");
    setPill($(card, "[data-role=state]"), svc.status);
    var staleNote = $(card, "[data-role=stale]");
    staleNote.hidden = !stale;
    setText($(staleNote, ".stale-text"), stale ? "Stale — no fresh check for " + staleFor(svc, now) : "");
    var since = $(card, "[data-role=since]");
    if (svc.status === "unknown") setText(since, "Waiting for the first check");
    else if (stale) setText(since, "Last known: " + WORDS[svc.status] + (svc.since ? " since " + clock(svc.since) : ""));
    else if (svc.since) setText(since, WORDS[svc.status] + " for " + ago(svc.since, now) + " (since " + clock(svc.since) + ")");
    else setText(since, WORDS[svc.status]);
    // Live, every heartbeat refreshes the latency: no "confirmed" needed.
    var latency = "Latency " + (typeof svc.latencyMs === "number" ? Math.round(svc.latencyMs) + " ms" : "—");
    var fresh = "";
    if (stale) fresh = " · last known";
    else if (svc.source === "poll") fresh = " · measured by this page";
    setText($(card, "[data-role=latency]"), latency);
    setText($(card, "[data-role=freshness]"), fresh);
    var reason = $(card, "[data-role=reason]");
    reason.hidden = !svc.reason;
    setText(reason, svc.reason ? "Reason: " + svc.reason : "");
    renderChecks($(card, "[data-role=checks]"), svc);
    setGate(card, svc, stale, now);
    renderHistory(card, svc, now);
  }

  function setText(el, text) { if (el.textContent !== text) el.textContent = text; }

  // The failing checks, worst first: at most three, then "+N more".
  function renderChecks(list, svc) {
    var checks = svc.status === "up" ? [] : svc.checks;
    var key = JSON.stringify(checks);
    if (list.getAttribute("data-key") === key) return;
    list.setAttribute("data-key", key);
    list.textContent = "";
    list.hidden = checks.length === 0;
    checks.slice(0, CHECKS_SHOWN).forEach(function (c) {
      var li = document.createElement("li");
      li.className = "check";
      li.setAttribute("data-check", c.name);
      li.setAttribute("data-status", c.word === "fail" ? "down" : "degraded");
      var name = document.createElement("span");
      name.className = "check-name";
      name.textContent = c.name;
      var word = document.createElement("span");
      word.className = "check-status";
      word.textContent = c.word;
      li.append(name, " ", word);
      var detail = c.output || c.observed;
      if (c.output && c.observed) detail = c.output + " (" + c.observed + ")";
      if (detail) {
        var out = document.createElement("span");
        out.className = "check-output";
        out.textContent = detail;
        li.append(" ", out);
      }
      list.appendChild(li);
    });
    if (checks.length > CHECKS_SHOWN) {
      var more = document.createElement("li");
      more.className = "check-more";
      more.textContent = "+" + (checks.length - CHECKS_SHOWN) + " more";
      list.appendChild(more);
    }
  }

  function fmtMs(v) { return v < 10 ? (Math.round(v * 10) / 10) + " ms" : Math.round(v) + " ms"; }

  // Uptime over the hour, and the last 60 s on one time axis: latency as a
  // line (gaps where no sample), each sample's state as a band beneath.
  var SVG = "http://www.w3.org/2000/svg";
  function bandCell(x, status) {
    var cell = document.createElementNS(SVG, "rect");
    cell.setAttribute("x", String(x + 0.1));
    cell.setAttribute("y", "20");
    cell.setAttribute("width", "0.8");
    cell.setAttribute("height", "4");
    cell.setAttribute("class", "band band-" + status);
    return cell;
  }
  function renderHistory(card, svc, now) {
    var up = uptimeOf(svc, now);
    setText($(card, "[data-role=uptime]").firstChild, "Uptime " + (typeof up === "number" ? up.toFixed(2) + " %" : "—") + " ");
    var samples = svc.samples;
    var key = samples.length ? samples.length + ":" + samples[samples.length - 1].at + ":" + samples[0].at + ":" + samples[samples.length - 1].status : "0";
    var spark = $(card, "[data-role=spark]");
    if (spark.getAttribute("data-key") === key) return;
    spark.setAttribute("data-key", key);
    var values = samples.map(function (s) { return s.latency; }).filter(function (v) { return v !== null; });
    var max = values.length ? Math.max.apply(null, values) : 0;
    var min = values.length ? Math.min.apply(null, values) : 0;
    // The line's scale: 0 … the highest sample, but at least 10 ms, so a
    // fast service's sub-millisecond jitter stays a flat line near the floor.
    var top = Math.max(max, 10);
    var offset = SAMPLES - samples.length; // right-aligned: "now" is the right edge
    var lines = $(spark, "[data-role=lines]");
    var band = $(spark, "[data-role=band]");
    lines.textContent = "";
    band.textContent = "";
    for (var k = 0; k < offset; k++) band.appendChild(bandCell(k, "empty")); // padded on the left
    var run = [];
    function flush() {
      if (run.length === 1) run.push((parseFloat(run[0]) + 0.6).toFixed(2) + "," + run[0].split(",")[1]);
      if (run.length > 1) {
        var line = document.createElementNS(SVG, "polyline");
        line.setAttribute("points", run.join(" "));
        line.setAttribute("class", "spark-line");
        lines.appendChild(line);
      }
      run = [];
    }
    samples.forEach(function (s, i) {
      var x = offset + i + 0.5;
      if (s.latency === null) flush();
      else run.push(x.toFixed(2) + "," + (18 - (s.latency / top) * 16).toFixed(2));
      band.appendChild(bandCell(offset + i, s.status));
    });
    flush();
    spark.setAttribute("data-points", String(values.length));
    var counts = {};
    samples.forEach(function (s) { if (s.status !== "none") counts[s.status] = (counts[s.status] || 0) + 1; });
    var states = Object.keys(counts).map(function (k) { return counts[k] + " s " + k; }).join(", ");
    var text = values.length
      ? "Last 60 s: min " + fmtMs(min) + ", max " + fmtMs(max)
      : "Last 60 s: no latency samples yet";
    if (states) text += " · " + states;
    setText($(card, "[data-role=spark-text]"), text);
  }

  function renderSummary(now) {
    var counts = { down: 0, degraded: 0, unknown: 0, up: 0 };
    var worst = "up";
    var stale = 0;
    store.order.forEach(function (name) {
      var svc = store.services[name];
      var s = svc.status;
      counts[s] += 1;
      if (RANK[s] > RANK[worst]) worst = s;
      if (isStale(svc, now)) stale += 1;
    });
    var head = worst === "down" ? "Outage" : worst === "degraded" ? "Partially degraded"
      : worst === "unknown" ? "Checking…" : stale ? "Last known: all up" : "All systems up";
    var summary = document.getElementById("summary");
    summary.setAttribute("data-worst", worst);
    summary.setAttribute("data-stale", String(stale));
    setText($(summary, ".summary-head"), SHAPES[worst] + " " + head);
    var parts = [];
    ["down", "degraded", "unknown", "up"].forEach(function (k) { if (counts[k]) parts.push(counts[k] + " " + k); });
    if (stale) parts.push("◷ " + stale + " stale");
    setText($(summary, ".summary-counts"), parts.join(" · "));
    var title = counts.down ? "(" + counts.down + " down) healthmon"
      : counts.degraded ? "(" + counts.degraded + " degraded) healthmon" : "healthmon";
    if (document.title !== title) document.title = title;
  }

  function renderConnection(now) {
    var pill = document.getElementById("connection");
    var kind = store.connection;
    pill.setAttribute("data-connection", kind);
    var text = kind === "live" ? "Live"
      : kind === "polling" ? "Polling" + (store.lastPollAt ? " · updated " + ago(store.lastPollAt, now) + " ago" : "")
      : "Connecting…";
    $(pill, ".shape").textContent = kind === "live" ? "●" : kind === "polling" ? "◐" : "◌";
    $(pill, ".connection-text").textContent = text;
    var banner = document.getElementById("banner");
    banner.hidden = kind !== "polling";
    if (kind === "polling") {
      var retry = store.reconnectAt ? " Reconnecting in " + Math.max(0, Math.ceil((store.reconnectAt - now) / 1000)) + " s." : "";
      $(banner, ".banner-title").textContent = "Live updates unavailable: " + store.connectionWhy + ".";
      $(banner, ".banner-text").textContent = "This page is checking each service directly, every second." + retry;
    }
  }

  function renderLog() {
    var list = document.getElementById("event-log");
    document.getElementById("log-empty").hidden = store.log.length > 0;
    // Newest first; entries never change, so only the new ones are added.
    var top = list.firstElementChild ? Number(list.firstElementChild.getAttribute("data-seq")) : 0;
    for (var i = store.log.length - 1; i >= 0; i--) {
      if (store.log[i].seq > top) list.insertBefore(logItem(store.log[i]), list.firstChild);
    }
    while (list.children.length > LOG_CAP) list.removeChild(list.lastChild);
  }

  function logItem(e) {
    var li = document.createElement("li");
    li.className = "event";
    li.setAttribute("data-seq", String(e.seq));
    li.setAttribute("data-service", e.service);
    li.setAttribute("data-from", e.from);
    li.setAttribute("data-to", e.to);
    li.setAttribute("data-source", e.source);
    var time = document.createElement("time");
    time.dateTime = new Date(e.ts).toISOString();
    time.textContent = clock(e.ts);
    var name = document.createElement("strong");
    name.textContent = e.service;
    var change = document.createElement("span");
    change.className = "change";
    change.appendChild(statusWord(e.from));
    change.appendChild(document.createTextNode(" → "));
    change.appendChild(statusWord(e.to));
    var source = document.createElement("span");
    source.className = "source source-" + e.source;
    source.textContent = e.source;
    li.append(time, " ", name, " ", change, " ", source);
    if (e.reason) {
      var reason = document.createElement("span");
      reason.className = "event-reason";
      reason.textContent = e.reason;
      li.append(" ", reason);
    }
    return li;
  }

  function statusWord(status) {
    var span = document.createElement("span");
    span.className = "status-word";
    span.setAttribute("data-status", status);
    span.textContent = SHAPES[status] + " " + status;
    return span;
  }

  function renderOrder() {
    var first = document.getElementById("problems-first").checked;
    store.order.forEach(function (name, index) {
      var card = cardOf(name);
      if (!card) return;
      var svc = store.services[name];
      card.style.order = first ? String((3 - RANK[svc.status]) * 1000 + index) : "";
    });
  }

  function renderAll() {
    var now = Date.now();
    store.order.forEach(function (name) { renderCard(store.services[name], now); });
    renderSummary(now);
    renderConnection(now);
    renderLog();
    renderOrder();
    renderModals();
    renderConfigError();
  }

  function renderConfigError() {
    var banner = document.getElementById("config-banner");
    banner.hidden = !store.configError;
    setText($(banner, "[data-role=config-error-text]"), store.configError || "");
  }
  subscribe(renderAll);

  // Every second: relative times, stale marks, silence. While not live no
  // heartbeat brings a latency: the history still moves on, with a gap in
  // the line and the state this page knows (or "stale") in the band.
  window.setInterval(function () {
    var now = Date.now();
    if (store.connection !== "live") {
      store.order.forEach(function (name) {
        var svc = store.services[name];
        addSample(svc, null, isStale(svc, now) ? "stale" : svc.status, now);
      });
    }
    evaluate();
    changed();
  }, 1000);

  // About once a minute: mocks, config error and the server's uptime from
  // the API (the page's own uptime moves every second and every change).
  window.setInterval(refreshControls, META_REFRESH_MS);

  // ---- the modal --------------------------------------------------------
  var openers = {};
  var modalRequests = {};

  function renderModals() {
    store.order.forEach(function (name) {
      var dialog = modalOf(name);
      if (!dialog) return;
      var svc = store.services[name];
      setPill($(dialog, "[data-role=state]"), svc.status);
      var alert = $(dialog, "[data-role=modal-alert]");
      var text = "";
      var stale = isStale(svc, Date.now());
      if (stale) {
        // A role=alert: no ticking count here, the card has it.
        text = "◷ No fresh check of " + name + "; last known: " + svc.status +
          (svc.reason ? " (" + svc.reason + ")" : "") + ". What is shown may be out of date.";
      } else if (svc.status === "down") {
        text = "✕ " + name + " is down" + (svc.reason ? " (" + svc.reason + ")" : "") +
          ". What is shown below may be out of date; fetching again will fail until it is back.";
      } else if (svc.status === "degraded") {
        text = "▲ " + name + " is degraded; answers may be slow or partial.";
      }
      if (alert.textContent !== text) alert.textContent = text;
      alert.hidden = !text;
      alert.setAttribute("data-status", svc.status);
      alert.setAttribute("data-stale", stale ? "true" : "false");
      dialog.setAttribute("data-status", svc.status);
    });
  }

  function showData(body, json) {
    body.textContent = "";
    if (json && typeof json === "object" && !Array.isArray(json)) {
      var dl = document.createElement("dl");
      dl.className = "data-list";
      Object.keys(json).forEach(function (key) {
        var dt = document.createElement("dt");
        dt.textContent = key;
        var dd = document.createElement("dd");
        var v = json[key];
        dd.textContent = typeof v === "object" && v !== null ? JSON.stringify(v) : String(v);
        dl.append(dt, dd);
      });
      body.appendChild(dl);
    } else {
      var pre = document.createElement("pre");
      pre.textContent = JSON.stringify(json, null, 2);
      body.appendChild(pre);
    }
  }

  function requestData(url) {
    var started = performance.now();
    return fetchWithTimeout(url, DATA_TIMEOUT_MS).then(
      function (r) {
        var json = null;
        try { json = r.text ? JSON.parse(r.text) : null; } catch (e) { json = null; }
        var ms = Math.round(performance.now() - started);
        if (!r.res.ok) {
          var detail = json && typeof json.error === "string" ? json.error : r.text.slice(0, 200);
          throw new Error("HTTP " + r.res.status + (detail ? ": " + detail : ""));
        }
        if (json === null && r.text) throw new Error("the answer is not JSON");
        return { json: json, ms: ms };
      },
      function (err) { throw new Error(describeFailure(err, DATA_TIMEOUT_MS)); }
    );
  }

  function loadModal(name) {
    var dialog = modalOf(name);
    var svc = store.services[name];
    var body = $(dialog, "[data-role=modal-body]");
    var token = (modalRequests[name] || 0) + 1;
    modalRequests[name] = token;
    dialog.setAttribute("data-state", "loading");
    body.setAttribute("aria-busy", "true");
    body.textContent = "";
    var p = document.createElement("p");
    p.className = "muted";
    p.textContent = "Loading " + svc.dataUrl + " …";
    body.appendChild(p);
    requestData(svc.dataUrl).then(
      function (r) {
        if (modalRequests[name] !== token) return;
        dialog.setAttribute("data-state", "loaded");
        body.removeAttribute("aria-busy");
        showData(body, r.json);
        var note = document.createElement("p");
        note.className = "muted fetched";
        note.textContent = "Fetched at " + clock(Date.now()) + " in " + r.ms + " ms.";
        body.appendChild(note);
      },
      function (err) {
        if (modalRequests[name] !== token) return;
        dialog.setAttribute("data-state", "error");
        body.removeAttribute("aria-busy");
        body.textContent = "";
        var box = document.createElement("div");
        box.className = "error-box";
        box.setAttribute("data-role", "modal-error");
        var title = document.createElement("p");
        title.className = "error-title";
        title.textContent = "✕ Could not load " + name + " data";
        var detail = document.createElement("p");
        detail.textContent = err.message + ".";
        var retry = document.createElement("button");
        retry.type = "button";
        retry.className = "btn primary";
        retry.textContent = "Retry";
        retry.setAttribute("data-action", "retry");
        retry.addEventListener("click", function () { loadModal(name); });
        box.append(title, detail, retry);
        body.appendChild(box);
        retry.focus();
      }
    );
  }

  function openModal(name, opener) {
    var dialog = modalOf(name);
    if (!dialog || dialog.open) return;
    openers[name] = opener;
    renderModals();
    dialog.showModal();
    $(dialog, "[data-action=close]").focus();
    loadModal(name);
  }

  // Listeners of one service's card and modal (first render and clones alike).
  function wireService(name) {
    var card = cardOf(name);
    var dialog = modalOf(name);
    if (card) {
      $(card, "[data-action=open]").addEventListener("click", function (event) {
        openModal(name, event.currentTarget);
      });
      $(card, "[data-action=form]").addEventListener("submit", function (event) {
        event.preventDefault();
        submitForm(name, event.currentTarget);
      });
    }
    if (dialog) {
      $(dialog, "[data-action=refresh]").addEventListener("click", function () { loadModal(name); });
      $(dialog, "[data-action=close]").addEventListener("click", function () { dialog.close(); });
      // A click on the backdrop (outside the box) closes, like Escape.
      dialog.addEventListener("click", function (event) {
        if (event.target !== dialog) return;
        var r = dialog.getBoundingClientRect();
        var inside = event.clientX >= r.left && event.clientX <= r.right && event.clientY >= r.top && event.clientY <= r.bottom;
        if (!inside) dialog.close();
      });
      dialog.addEventListener("close", function () {
        modalRequests[name] = (modalRequests[name] || 0) + 1;
        var opener = openers[name];
        openers[name] = null;
        if (opener && document.contains(opener)) {
          if (opener.disabled) {
            // The button was disabled while the modal was open: keep focus in the card.
            var c = cardOf(name);
            c.setAttribute("tabindex", "-1");
            c.focus();
          } else {
            opener.focus();
          }
        }
      });
    }
  }
  store.order.forEach(wireService);

  // ---- services added or removed by a config reload ----------------------
  var nextSid = document.querySelectorAll("#services > .card").length + 1;
  var sids = {};
  document.querySelectorAll("#services > .card").forEach(function (card) {
    sids[card.getAttribute("data-service")] = card.id;
  });

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  // Clone a <template> rendered by the same macro as the first page's markup.
  function fromTemplate(id, svc, sid) {
    var values = {
      __SID__: sid, __NAME__: svc.name, __URL__: svc.url,
      __DATA_ENDPOINT__: svc.dataEndpoint, __DATA_URL__: svc.dataUrl,
    };
    var html = document.getElementById(id).innerHTML.replace(/__(SID|NAME|URL|DATA_ENDPOINT|DATA_URL)__/g, function (token) {
      return escapeHtml(values[token]);
    });
    var holder = document.createElement("template");
    holder.innerHTML = html.trim();
    return holder.content.firstElementChild;
  }

  // Insert ``el`` into ``parent`` before the element of the next service in
  // store order that is already there, moving no existing node (a moved node
  // would lose focus).
  function insertInOrder(parent, el, name, find) {
    var index = store.order.indexOf(name);
    for (var i = index + 1; i < store.order.length; i++) {
      var next = find(store.order[i]);
      if (next && next.parentNode === parent) { parent.insertBefore(el, next); return; }
    }
    parent.appendChild(el);
  }

  function rowOf(name) { return document.querySelector('[data-control-row="' + CSS.escape(name) + '"]'); }

  function mountService(svc) {
    if (cardOf(svc.name)) return;
    var sid = "svc-" + nextSid++;
    sids[svc.name] = sid;
    insertInOrder(document.getElementById("services"), fromTemplate("card-template", svc, sid), svc.name, cardOf);
    document.getElementById("modals").appendChild(fromTemplate("modal-template", svc, sid));
    syncControlRow(svc);
    wireService(svc.name);
  }

  // A mock gets a mode select; a real service a note; unknown yet (a
  // snapshot does not say), a placeholder until GET /api/services answers.
  function syncControlRow(svc) {
    var sid = sids[svc.name];
    if (!sid) return;
    var row = rowOf(svc.name);
    var kind = svc.mock === null ? "pending" : svc.mock ? "mock" : "real";
    if (row && row.getAttribute("data-kind") === kind) return;
    var fresh;
    if (kind === "pending") {
      fresh = fromTemplate("control-row-real-template", svc, sid);
      setText($(fresh, ".muted"), "checking…");
    } else {
      fresh = fromTemplate(kind === "mock" ? "control-row-mock-template" : "control-row-real-template", svc, sid);
      var select = $(fresh, "select");
      if (select && svc.mode) select.value = svc.mode;
    }
    fresh.setAttribute("data-kind", kind);
    if (row) row.replaceWith(fresh);
    else insertInOrder(document.getElementById("mock-rows"), fresh, svc.name, rowOf);
  }

  function unmountService(name) {
    var card = cardOf(name);
    var dialog = modalOf(name);
    var row = rowOf(name);
    var focusLost = [card, dialog, row].some(function (el) { return el && el.contains(document.activeElement); });
    if (dialog && dialog.open) { openers[name] = null; dialog.close(); }
    [card, dialog, row].forEach(function (el) { if (el) el.remove(); });
    delete sids[name];
    if (focusLost) {
      // Focus was in what just went: the services heading is the nearest stable place.
      var heading = document.getElementById("services-title");
      heading.setAttribute("tabindex", "-1");
      heading.focus();
    }
  }

  // ---- the per-service form ---------------------------------------------
  function submitForm(name, form) {
    var svc = store.services[name];
    var card = cardOf(name);
    var out = $(card, "[data-role=form-result]");
    if (svc.status === "down") return;
    var q = form.elements.q.value;
    var url = svc.dataUrl + "?q=" + encodeURIComponent(q);
    out.hidden = false;
    out.setAttribute("data-state", "loading");
    out.textContent = "Sending q=" + q + " …";
    requestData(url).then(
      function (r) {
        out.setAttribute("data-state", "ok");
        var echoed = r.json && r.json.query ? r.json.query : null;
        out.textContent = echoed
          ? "Answer in " + r.ms + " ms, echoed query: " + JSON.stringify(echoed)
          : "Answer in " + r.ms + " ms: " + JSON.stringify(r.json);
      },
      function (err) {
        out.setAttribute("data-state", "error");
        out.textContent = "✕ Failed: " + err.message;
      }
    );
  }

  // ---- the control panel ------------------------------------------------
  var details = document.getElementById("controls");
  var controlStatus = document.getElementById("control-status");
  var refreshTimer = null;

  function controlsOpen() { return details.open; }

  // The whole document after the monitor came back: statuses too.
  function applyDocument(doc, source) {
    applyMeta(doc);
    var byName = {};
    doc.services.forEach(function (s) { byName[s.name] = s; });
    applySnapshot(byName, source);
  }

  // Everything but statuses: which services exist (while live the socket's
  // snapshots decide that, in order), mocks and modes, uptime, config error.
  function applyMeta(doc) {
    if (!doc || !Array.isArray(doc.services)) return;
    if (store.connection !== "live") reconcile(doc.services, Date.now());
    noteSince(doc.services);
    doc.services.forEach(function (s) {
      var svc = store.services[s.name];
      if (!svc) return;
      if (typeof s.mock === "boolean" && svc.mock !== s.mock) {
        svc.mock = s.mock;
        svc.mode = s.mode;
        syncControlRow(svc);
      }
      if (s.history) takeUptime(svc, s.history, Date.now());
    });
    if ("config_error" in doc) setConfigError(doc.config_error);
    applyControls(doc);
    changed();
  }

  function applyControls(doc) {
    (doc.services || []).forEach(function (s) {
      var svc = store.services[s.name];
      if (svc) svc.mode = s.mode;
      var select = document.querySelector('[data-control="mock:' + CSS.escape(s.name) + '"]');
      if (select && s.mode && document.activeElement !== select && !select.hasAttribute("data-busy")) select.value = s.mode;
    });
    var monitor = document.querySelector('[data-control="monitor"]');
    var wsBox = document.querySelector('[data-control="ws"]');
    if (doc.monitor && typeof doc.monitor.running === "boolean" && !monitor.hasAttribute("data-busy")) monitor.checked = doc.monitor.running;
    if (doc.ws && typeof doc.ws.running === "boolean" && !wsBox.hasAttribute("data-busy")) wsBox.checked = doc.ws.running;
    monitor.disabled = doc.monitor ? doc.monitor.running === null : true;
    wsBox.disabled = doc.ws ? doc.ws.running === null : true;
  }

  function refreshControls() {
    return getServices().then(applyMeta, function () { /* shown on the next action */ });
  }
  function refreshControlsSoon() {
    if (refreshTimer) return;
    refreshTimer = window.setTimeout(function () { refreshTimer = null; refreshControls(); }, 300);
  }

  function runControl(el, path, body, label) {
    el.setAttribute("data-busy", "true");
    el.disabled = true;
    controlStatus.setAttribute("data-state", "busy");
    controlStatus.textContent = label + " …";
    return postJson(path, body).then(
      function () {
        controlStatus.setAttribute("data-state", "ok");
        controlStatus.textContent = "✓ " + label + " at " + clock(Date.now()) + ".";
      },
      function (err) {
        controlStatus.setAttribute("data-state", "error");
        controlStatus.textContent = "✕ " + label + " failed: " + err.message;
      }
    ).then(function () {
      el.removeAttribute("data-busy");
      el.disabled = false;
      return refreshControls();
    });
  }

  // Delegated: rows come and go with config reloads.
  document.getElementById("mock-rows").addEventListener("change", function (event) {
    var select = event.target;
    if (!select.matches || !select.matches("[data-control^='mock:']")) return;
    var name = select.getAttribute("data-name");
    runControl(select, "/api/mocks/" + encodeURIComponent(name), { mode: select.value },
      "Mock " + name + " switched to " + select.value);
  });
  [["monitor", "Monitor"], ["ws", "WebSocket channel"]].forEach(function (pair) {
    var box = document.querySelector('[data-control="' + pair[0] + '"]');
    box.addEventListener("change", function () {
      runControl(box, "/api/components/" + pair[0], { running: box.checked },
        pair[1] + (box.checked ? " switched on" : " switched off"));
    });
  });
  details.addEventListener("toggle", function () { if (details.open) refreshControls(); });

  // ---- theme toggle and order -------------------------------------------
  var themeButton = document.getElementById("theme-toggle");
  function showTheme() {
    var t = document.documentElement.getAttribute("data-theme") || "system";
    themeButton.textContent = "Theme: " + t;
    themeButton.setAttribute("aria-label", "Colour theme: " + (t === "system" ? "follows the system" : t) + ". Change");
  }
  themeButton.addEventListener("click", function () {
    var t = document.documentElement.getAttribute("data-theme") || "system";
    var next = t === "system" ? "light" : t === "light" ? "dark" : "system";
    if (next === "system") document.documentElement.removeAttribute("data-theme");
    else document.documentElement.setAttribute("data-theme", next);
    try {
      if (next === "system") window.localStorage.removeItem("healthmon.theme");
      else window.localStorage.setItem("healthmon.theme", next);
    } catch (e) { /* not remembered */ }
    showTheme();
  });
  showTheme();
  document.getElementById("problems-first").addEventListener("change", renderOrder);

  // ---- start ------------------------------------------------------------
  applyControls(boot);
  renderAll();
  connect();
  // For tests and the curious: read-only views of the store.
  window.healthmon = {
    store: store,
    isPolling: function () { return polling; },
    backoffDelay: backoffDelay,
  };
})();
