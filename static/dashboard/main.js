// healthmon's dashboard: the client module (../client.js) keeps every
// service's live state and picks the transport; this module feeds the page's
// store from it and wires the parts, each in its own module:
//   store.js    what the page shows          history.js  uptime and samples
//   cards.js    cards, header, gating        log.js      the event log
//   dialogs.js  data dialogs and forms       controls.js the control panel
//   stored.js   stored history: its state, the dialogs' 90 days
//   config.js   the config file, its error, keys waiting for a restart
//   alerts.js   the alert log and silences in the panel, the cards' held marks
//   favicon.js  the tab's icon: the worst state
// No framework, no build step.

import { createClient } from "../client.js";
import { WORDS, announce, noAnswer } from "./format.js";
import { addChange, addSample, takeHistory, takeStored } from "./history.js";
import { addLog, addService, changed, noteSince, seedLog, store, subscribe, sync } from "./store.js";
import { gateCard, mountService, renderCards, unmountService } from "./cards.js";
import { renderLog } from "./log.js";
import { forgetService, renderModals, wireService } from "./dialogs.js";
import { controlsOpen, refreshControls, refreshControlsSoon, setupControls } from "./controls.js";
import { refreshAlertsSoon } from "./alerts.js";
import { reloadOpenStored, setHistory } from "./stored.js";
import { notePush, setConfigError, setConfigFile, setRestartNeeded } from "./config.js";

const boot = JSON.parse(document.getElementById("bootstrap").textContent);
const bootServices = boot.services || [];
const hm = createClient(location.origin, {
  services: bootServices, // the first state, with no request
  intervalMs: boot.interval_ms || 500,
  timeoutMs: boot.timeout_ms || 1000,
  bind: false, // the cards are gated below, with the page's own legends
});
setConfigFile(boot.config_file);
setConfigError(boot.config_error, true);
setRestartNeeded(boot.restart_needed, true);
setHistory(boot.history);
noteSince(bootServices);
seedLog(boot.log); // the server's latest changes: the same log on every screen, after a reload too

let started = false;
const wired = new Set();
let monitorAlive = boot.monitor ? boot.monitor.alive : null;

// The server reads its stored figures every 5 s: ask for them a little after
// history starts working (a historyState message carries none).
const STORED_READ_MS = 6000;

function historyChanged(value) {
  if (!setHistory(value)) return;
  reloadOpenStored();
  if (store.history && store.history.available) window.setTimeout(refreshControls, STORED_READ_MS);
}

// ---- the client's events, into the store -----------------------------------

// Services a snapshot or the document adds or removes (a config reload).
hm.on("services", ({ added, removed }) => {
  const now = Date.now();
  removed.forEach((name) => {
    forgetService(name);
    unmountService(name);
    delete store.services[name];
    wired.delete(name);
  });
  store.order = hm.names();
  added.forEach((name) => {
    const svc = addService(hm.service(name), null, now);
    mountService(svc); // markup for a service the first page did not have
    if (!wired.has(name)) { wireService(name); wired.add(name); }
    gateCard(hm, name);
  });
  if (started && (added.length || removed.length)) {
    const parts = [];
    if (added.length) parts.push("Added " + added.join(", ") + ".");
    if (removed.length) parts.push("Removed " + removed.join(", ") + ".");
    announce(parts.join(" "));
  }
  changed();
});

// A service's status (or its freshness, reason, source) changed.
hm.on("change", ({ name, previous, current }) => {
  const svc = store.services[name];
  if (!svc) return;
  sync(svc, hm.service(name));
  if (current.unreadable && !previous.unreadable) {
    // Said once: the page stops polling it, and shows what it last knew.
    announce(name + ": this page cannot check it itself (it does not allow this page's origin); showing its last known state.");
  }
  if (current.status !== previous.status) {
    refreshAlertsSoon(); // an alert may follow (only while the panel is open)
    addChange(svc, current.since || Date.now(), current.status);
    // First knowledge (unknown → x) is not a change worth a log line.
    if (previous.status !== "unknown") {
      // A pushed change carries the server's time of it (as its log does).
      const ts = current.source === "polling" ? Date.now() : current.since || Date.now();
      addLog(name, previous.status, current.status, current.source, current.reason, ts);
      announce(name + " is " + WORDS[current.status].toLowerCase() + (current.reason ? ": " + current.reason : ""));
    }
  }
  changed();
});

// Anything else the client learnt (latency, ages): copy, render next frame.
hm.on("update", () => {
  store.order.forEach((name) => sync(store.services[name], hm.service(name)));
  changed();
});

// The server's messages carry what only the page keeps: history, latency samples.
hm.on("message", ({ message: msg, at }) => {
  if (msg.type === "initialSnapshot") {
    if (msg.services && typeof msg.services === "object") {
      const list = Object.keys(msg.services).map((name) => Object.assign({ name }, msg.services[name]));
      noteSince(list);
      if (hm.monitor().alive !== false) {
        list.forEach((s) => { if (store.services[s.name]) takeHistory(store.services[s.name], s.history, at, store.boardSince); });
      }
      list.forEach((s) => { if (store.services[s.name]) takeStored(store.services[s.name], s.uptime, at); });
    }
    if ("config_file" in msg) setConfigFile(msg.config_file);
    if ("config_error" in msg) setConfigError(msg.config_error);
    if ("restart_needed" in msg) setRestartNeeded(msg.restart_needed);
    if ("config_error" in msg || "restart_needed" in msg) notePush();
    if ("history" in msg) historyChanged(msg.history);
    seedLog(msg.log);
    monitorAlive = hm.monitor().alive;
    refreshControls(); // a snapshot does not say which services are mocks, nor their modes
  } else if (msg.type === "statusUpdate" && msg.data && store.services[msg.data.service]) {
    const svc = store.services[msg.data.service];
    takeHistory(svc, msg.data.history, at, store.boardSince);
    // Only a first stored figure: one read before this change would undo
    // what the page has counted of it since (the next document corrects).
    if (!svc.stored) takeStored(svc, msg.data.uptime, at);
    if (controlsOpen()) { refreshControlsSoon(); refreshAlertsSoon(); }
  } else if (msg.type === "configError") {
    setConfigError(msg.error);
    notePush();
  } else if (msg.type === "restartNeeded") {
    if ("file" in msg) setConfigFile(msg.file);
    setRestartNeeded(msg.keys);
    notePush();
  } else if (msg.type === "historyState") {
    historyChanged(msg.history);
  } else if (msg.type === "heartbeat") {
    const alive = hm.monitor().alive;
    // Each heartbeat is one more point on every sparkline (a gap, marked
    // stale, when the latency is not from a fresh check).
    if (alive && msg.latency && typeof msg.latency === "object") {
      store.order.forEach((name) => {
        if (!(name in msg.latency)) return;
        const svc = store.services[name];
        sync(svc, hm.service(name));
        if (svc.stale) addSample(svc, null, "stale", at);
        else if (noAnswer(svc.status, svc.reason)) addSample(svc, null, svc.status, at); // no answer, no latency
        else addSample(svc, msg.latency[name], svc.status, at);
      });
    }
    if (alive !== monitorAlive) refreshControls();
    monitorAlive = alive;
  }
  changed();
});

hm.on("connection", (c) => {
  const kind = c.transport === "websocket" || c.transport === "sse" ? "live" : c.transport === "polling" ? "polling" : "connecting";
  const before = store.connection;
  const transportBefore = store.transport;
  store.connection = kind;
  store.transport = c.transport;
  store.channel = c.channel;
  store.connectionWhy = c.reason;
  store.reconnectAt = c.retryAt;
  if (before !== kind) {
    if (kind === "live") announce("Live updates restored.");
    else if (kind === "polling") announce("Live updates lost; checking services directly.");
  }
  // The switches may have changed (a channel switched off), and a resumed
  // channel sends no snapshot: uptime and modes from the API.
  if (started && c.transport !== transportBefore) refreshControls();
  changed();
});

// ---- rendering ---------------------------------------------------------------

subscribe(() => {
  renderCards(Date.now(), hm.connection().lastPollAt);
  renderLog();
  renderModals();
});

// Every second while not live no heartbeat brings a latency: the history
// still moves on, with a gap in the line and the state this page knows.
window.setInterval(() => {
  const now = Date.now();
  if (store.connection !== "live") {
    store.order.forEach((name) => {
      const svc = store.services[name];
      addSample(svc, null, svc.stale ? "stale" : svc.status, now);
    });
  }
  changed();
}, 1000);

// ---- projector mode ----------------------------------------------------------------

// ?projector in the URL (theme.js reads it before the first paint); the
// button toggles it and keeps the URL in step, so a reload keeps the mode.
function setupProjector() {
  const button = document.getElementById("projector-toggle");
  const controls = document.getElementById("controls");
  const show = () => {
    const on = document.documentElement.classList.contains("projector");
    button.setAttribute("aria-pressed", String(on));
    if (on) controls.open = true; // the Control panel is always there on a projector
  };
  button.addEventListener("click", () => {
    const on = !document.documentElement.classList.contains("projector");
    document.documentElement.classList.toggle("projector", on);
    const url = new URL(location.href);
    if (on) url.searchParams.set("projector", "");
    else url.searchParams.delete("projector");
    history.replaceState(history.state, "", url.pathname + url.search.replace("projector=", "projector") + url.hash);
    show();
    changed();
  });
  show();
}

// ---- start ---------------------------------------------------------------------

setupControls(hm, boot);
setupProjector();
hm.start();
const loadedAt = Date.now();
bootServices.forEach((s) => {
  const svc = store.services[s.name];
  if (svc) {
    takeHistory(svc, s.history, loadedAt, store.boardSince);
    takeStored(svc, s.uptime, loadedAt);
  }
});
started = true;
changed();
// For tests and the curious: read-only views of the store and the client.
window.healthmon = {
  store,
  client: hm,
  isPolling: () => hm.connection().transport === "polling",
  backoffDelay: hm.backoffDelay,
};
