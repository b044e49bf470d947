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
  var STRIP_LEN = 30;
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

  (boot.services || []).forEach(function (s) {
    store.order.push(s.name);
    store.services[s.name] = {
      name: s.name,
      url: s.url,
      healthUrl: s.health_url || s.url + s.health_path,
      dataUrl: s.data_url || s.url + s.data_endpoint,
      mock: !!s.mock,
      mode: s.mode,
      status: s.status || "unknown",
      latencyMs: s.latency_ms,
      reason: s.reason,
      since: s.since,
      // The server's answer is as fresh as the monitor behind it.
      freshAt: boot.monitor && boot.monitor.alive ? loadedAt : null,
      source: "snapshot",
      history: [],
    };
  });

  var logSeq = 0;
  function addLog(svc, from, to, source, reason) {
    logSeq += 1;
    store.log.unshift({ seq: logSeq, ts: Date.now(), service: svc.name, from: from, to: to, source: source, reason: reason });
    if (store.log.length > LOG_CAP) store.log.length = LOG_CAP;
  }

  // Apply one observation of a service; logs and announces real changes.
  function observe(name, obs, source) {
    var svc = store.services[name];
    if (!svc) return;
    var status = WORDS[obs.status] ? obs.status : "unknown";
    var from = svc.status;
    svc.latencyMs = obs.latencyMs !== undefined ? obs.latencyMs : svc.latencyMs;
    svc.reason = status === "up" ? null : obs.reason || null;
    svc.freshAt = Date.now();
    svc.source = source;
    if (status !== from) {
      svc.status = status;
      svc.since = obs.since || Date.now();
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

  function applySnapshot(services, source) {
    Object.keys(services).forEach(function (name) {
      var s = services[name];
      if (!s || !s.status || s.status === "unknown") return;
      observe(name, { status: s.status, latencyMs: s.latency_ms, reason: s.reason, since: s.since }, source);
    });
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
    if (httpStatus < 200 || httpStatus > 299) {
      return { status: "down", reason: "HTTP " + httpStatus + (output ? ": " + output : "") };
    }
    var verdict = doc && typeof doc.status === "string" ? doc.status.trim().toLowerCase() : null;
    if (WARN.indexOf(verdict) >= 0) return { status: "degraded", reason: output || "health status: warn" };
    if (FAIL.indexOf(verdict) >= 0) return { status: "down", reason: output || "health status: " + verdict };
    return { status: "up", reason: null }; // pass / ok / up, or no body
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
    if (!polling || generation !== pollGeneration) return;
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
      // A snapshot from a board no monitor feeds is stale; polling knows better.
      if (store.monitor.alive !== false && msg.services) {
        applySnapshot(msg.services, "push");
        markFresh(now);
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
      var status = d.status || (d.up ? "up" : "down");
      observe(d.service, { status: status, latencyMs: d.latency_ms, reason: d.reason, since: d.ts }, "push");
      if (controlsOpen()) refreshControlsSoon();
    } else if (msg.type === "heartbeat") {
      store.lastBeatAt = now;
      var before = store.monitor.alive;
      if (msg.monitor) store.monitor = msg.monitor;
      if (store.monitor.alive) markFresh(now);
      if (before === false && store.monitor.alive) scheduleResync();
      if (before !== store.monitor.alive) refreshControls();
      evaluate();
      changed();
    }
  }

  // While the monitor is alive and heartbeats arrive, the board is current.
  function markFresh(now) {
    if (!wsReady || store.monitor.alive === false) return;
    store.order.forEach(function (name) { store.services[name].freshAt = now; });
  }

  // After the monitor comes back, its first round reaches the board within
  // one interval plus one timeout; then the server's document is current.
  function scheduleResync() {
    if (resyncTimer) window.clearTimeout(resyncTimer);
    resyncTimer = window.setTimeout(function () {
      resyncTimer = null;
      getServices().then(function (doc) {
        if (store.connection !== "live") return;
        var byName = {};
        doc.services.forEach(function (s) { byName[s.name] = s; });
        applySnapshot(byName, "push");
        applyControls(doc);
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
  function staleAfter() { return Math.max(2 * store.intervalMs, 2 * POLL_EVERY_MS) + POLL_TIMEOUT_MS; }
  function isStale(svc, now) {
    if (svc.status === "unknown") return false;
    return svc.freshAt === null || now - svc.freshAt > staleAfter();
  }

  function setPill(el, status) {
    el.setAttribute("data-status", status);
    $(el, ".shape").textContent = SHAPES[status];
    $(el, ".word").textContent = WORDS[status];
  }

  function setGate(card, svc) {
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
    if (down) {
      legend.textContent = "✕ Unavailable — " + svc.name + " is down" + (svc.reason ? " (" + svc.reason + ")" : "");
    } else if (svc.status === "degraded") {
      legend.textContent = "▲ Warning — " + svc.name + " is degraded; answers may be slow or partial";
    } else if (svc.status === "unknown") {
      legend.textContent = "Available — status not checked yet";
    } else {
      legend.textContent = "Available";
    }
  }

  function renderCard(svc, now) {
    var card = cardOf(svc.name);
    if (!card) return;
    var stale = isStale(svc, now);
    card.setAttribute("data-status", svc.status);
    card.setAttribute("data-stale", stale ? "true" : "false");
    setPill($(card, "[data-role=state]"), svc.status);
    var since = $(card, "[data-role=since]");
    if (svc.status === "unknown") since.textContent = "Waiting for the first check";
    else if (svc.since) since.textContent = WORDS[svc.status] + " for " + ago(svc.since, now) + " (since " + clock(svc.since) + ")";
    else since.textContent = WORDS[svc.status];
    var meta = "Latency " + (typeof svc.latencyMs === "number" ? Math.round(svc.latencyMs) + " ms" : "—");
    if (stale) meta += " · stale: last confirmed " + (svc.freshAt ? ago(svc.freshAt, now) + " ago" : "never");
    else if (svc.freshAt) meta += " · confirmed " + ago(svc.freshAt, now) + " ago (" + (svc.source === "poll" ? "poll" : "push") + ")";
    $(card, "[data-role=meta]").textContent = meta;
    var reason = $(card, "[data-role=reason]");
    reason.hidden = !svc.reason;
    reason.textContent = svc.reason ? "Reason: " + svc.reason : "";
    setGate(card, svc);
    renderStrip($(card, "[data-role=strip]"), svc);
  }

  function renderStrip(strip, svc) {
    var h = svc.history;
    while (strip.children.length < STRIP_LEN) strip.appendChild(document.createElement("span"));
    var counts = {};
    for (var i = 0; i < STRIP_LEN; i++) {
      var value = h[i - (STRIP_LEN - h.length)] || "empty"; // empty ones padded on the left
      strip.children[i].className = "bar bar-" + value;
      if (value !== "empty") counts[value] = (counts[value] || 0) + 1;
    }
    var parts = Object.keys(counts).map(function (k) { return counts[k] + " " + k; });
    strip.setAttribute("aria-label", h.length ? "Last " + h.length + " s: " + parts.join(", ") : "No history yet");
  }

  function renderSummary(now) {
    var counts = { down: 0, degraded: 0, unknown: 0, up: 0 };
    var worst = "up";
    store.order.forEach(function (name) {
      var s = store.services[name].status;
      counts[s] += 1;
      if (RANK[s] > RANK[worst]) worst = s;
    });
    var head = worst === "down" ? "Outage" : worst === "degraded" ? "Partially degraded"
      : worst === "unknown" ? "Checking…" : "All systems up";
    var summary = document.getElementById("summary");
    summary.setAttribute("data-worst", worst);
    $(summary, ".summary-head").textContent = SHAPES[worst] + " " + head;
    var parts = [];
    ["down", "degraded", "unknown", "up"].forEach(function (k) { if (counts[k]) parts.push(counts[k] + " " + k); });
    $(summary, ".summary-counts").textContent = parts.join(" · ");
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
  }
  subscribe(renderAll);

  // Every second: relative times, stale marks, the history strip, silence.
  window.setInterval(function () {
    var now = Date.now();
    store.order.forEach(function (name) {
      var svc = store.services[name];
      svc.history.push(isStale(svc, now) ? "stale" : svc.status);
      if (svc.history.length > STRIP_LEN) svc.history.shift();
    });
    evaluate();
    changed();
  }, 1000);

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
      if (svc.status === "down") {
        text = "✕ " + name + " is down" + (svc.reason ? " (" + svc.reason + ")" : "") +
          ". What is shown below may be out of date; fetching again will fail until it is back.";
      } else if (svc.status === "degraded") {
        text = "▲ " + name + " is degraded; answers may be slow or partial.";
      }
      if (alert.textContent !== text) alert.textContent = text;
      alert.hidden = !text;
      alert.setAttribute("data-status", svc.status);
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

  store.order.forEach(function (name) {
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
  });

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
    return getServices().then(applyControls, function () { /* shown on the next action */ });
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

  document.querySelectorAll("[data-control^='mock:']").forEach(function (select) {
    select.addEventListener("change", function () {
      var name = select.getAttribute("data-name");
      runControl(select, "/api/mocks/" + encodeURIComponent(name), { mode: select.value },
        "Mock " + name + " switched to " + select.value);
    });
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
