// The control panel (mock modes, the monitor, the push channels), the theme
// toggle and the card order switch; and what GET /api/services says besides
// statuses (mocks, modes, uptime, stored history, the config error).

import { $, cardOf, clock } from "./format.js";
import { syncControlRow, renderOrder } from "./cards.js";
import { takeStored, takeUptime } from "./history.js";
import { changed, noteSince, seedLog, store } from "./store.js";
import { reloadOpenStored, setHistory } from "./stored.js";
import { pushMark, setConfigError, setConfigFile, setRestartNeeded } from "./config.js";
import { applyHolds, setupAlerts } from "./alerts.js";

const COMPONENTS = [["monitor", "Monitor"], ["ws", "WebSocket channel"], ["sse", "Server-Sent Events channel"]];
let hm = null;
let refreshTimer = null;

/** The server's document, all but statuses (the client module holds those).
 * `configCurrent` false: a push said the config state while it was on its way,
 * so its own (older or the same) is left out. */
export function applyMeta(doc, configCurrent = true) {
  if (!doc || !Array.isArray(doc.services)) return;
  noteSince(doc.services);
  doc.services.forEach((s) => {
    const svc = store.services[s.name];
    if (!svc) return;
    if (typeof s.mock === "boolean" && svc.mock !== s.mock) {
      svc.mock = s.mock;
      svc.mode = s.mode;
      syncControlRow(svc);
    }
    if (s.history) takeUptime(svc, s.history, Date.now(), store.boardSince);
    takeStored(svc, s.uptime, Date.now());
  });
  if (configCurrent) {
    if ("config_file" in doc) setConfigFile(doc.config_file);
    if ("config_error" in doc) setConfigError(doc.config_error);
    if ("restart_needed" in doc) setRestartNeeded(doc.restart_needed);
  }
  if ("history" in doc && setHistory(doc.history)) reloadOpenStored();
  seedLog(doc.log); // changes the server saw while this page was not listening
  applyControls(doc);
  applyHolds(doc);
  changed();
}

/** Switches and selects as the server says, unless one is being changed. */
export function applyControls(doc) {
  (doc.services || []).forEach((s) => {
    const svc = store.services[s.name];
    if (svc) svc.mode = s.mode;
    const select = document.querySelector('[data-control="mock:' + CSS.escape(s.name) + '"]');
    if (select && s.mode && document.activeElement !== select && !select.hasAttribute("data-busy")) select.value = s.mode;
  });
  // Whether the server says it switched its push channels off (the banner says so).
  store.channels = {
    ws: doc.ws && typeof doc.ws.running === "boolean" ? doc.ws.running : null,
    sse: doc.sse && typeof doc.sse.running === "boolean" ? doc.sse.running : null,
  };
  COMPONENTS.forEach(([key]) => {
    const box = document.querySelector('[data-control="' + key + '"]');
    if (!box) return;
    const state = doc[key];
    if (state && typeof state.running === "boolean" && !box.hasAttribute("data-busy")) box.checked = state.running;
    box.disabled = state ? state.running === null : true;
  });
}

let asked = 0; // documents asked for
let shown = 0; // the latest asked of those applied

export function refreshControls() {
  const mark = pushMark();
  const n = ++asked;
  return hm.refresh().then((doc) => {
    // Answers may arrive out of order (each on its own connection): one asked
    // for before the document shown would put back what that one replaced.
    if (n < shown) return;
    shown = n;
    applyMeta(doc, pushMark() === mark);
  }, () => { /* shown on the next action */ });
}

export function refreshControlsSoon() {
  if (refreshTimer) return;
  refreshTimer = window.setTimeout(() => { refreshTimer = null; refreshControls(); }, 300);
}

export function controlsOpen() { return document.getElementById("controls").open; }

function sendJson(path, body, method) {
  const init = { method };
  if (body !== null) {
    init.headers = { "Content-Type": "application/json" };
    init.body = JSON.stringify(body);
  }
  return fetch(path, init).then((res) => res.json().catch(() => ({})).then((json) => {
    if (!res.ok) throw new Error(json.error || "HTTP " + res.status);
    return json;
  }));
}

/** Send one control call, say how it went in the status line, then read the document
    again; resolves to whether it worked. */
function runControl(el, path, body, label, method = "POST") {
  const status = document.getElementById("control-status");
  el.setAttribute("data-busy", "true");
  el.disabled = true;
  status.setAttribute("data-state", "busy");
  status.textContent = label + " …";
  return sendJson(path, body, method).then(
    () => {
      status.setAttribute("data-state", "ok");
      status.textContent = "✓ " + label + " at " + clock(Date.now()) + ".";
      return true;
    },
    (err) => {
      status.setAttribute("data-state", "error");
      status.textContent = "✕ " + label + " failed: " + err.message;
      return false;
    }
  ).then((ok) => {
    el.removeAttribute("data-busy");
    el.disabled = false;
    return refreshControls().then(() => ok);
  });
}

// Where the panel is a bottom sheet (narrow screens), the card a switch
// changes is brought into the part of the page the sheet leaves in sight,
// so the change is seen happen (the live region says it too).
function bringCardIntoSight(name) {
  const panel = document.getElementById("controls");
  const card = cardOf(name);
  if (!card || getComputedStyle(panel).position !== "fixed") return;
  const top = document.querySelector(".topbar").getBoundingClientRect().bottom;
  const bottom = panel.getBoundingClientRect().top;
  const head = $(card, ".card-head").getBoundingClientRect();
  const since = $(card, "[data-role=since]").getBoundingClientRect();
  if (head.top >= top && since.bottom <= bottom) return;
  const smooth = !window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  window.scrollTo({ top: window.scrollY + card.getBoundingClientRect().top - top - 8, behavior: smooth ? "smooth" : "auto" });
}

function showTheme(button) {
  const t = document.documentElement.getAttribute("data-theme") || "system";
  button.textContent = "Theme: " + t;
  button.setAttribute("aria-label", "Colour theme: " + (t === "system" ? "follows the system" : t) + ". Change");
}

/** Wire the panel, the theme toggle and the order switch. */
export function setupControls(client, boot) {
  hm = client;
  // Delegated: rows come and go with config reloads.
  document.getElementById("mock-rows").addEventListener("change", (event) => {
    const select = event.target;
    if (!select.matches || !select.matches("[data-control^='mock:']")) return;
    const name = select.getAttribute("data-name");
    bringCardIntoSight(name);
    runControl(select, "/api/mocks/" + encodeURIComponent(name), { mode: select.value }, "Mock " + name + " switched to " + select.value);
  });
  COMPONENTS.forEach(([key, label]) => {
    const box = document.querySelector('[data-control="' + key + '"]');
    if (!box) return;
    box.addEventListener("change", () => {
      runControl(box, "/api/components/" + key, { running: box.checked }, label + (box.checked ? " switched on" : " switched off"));
    });
  });
  const details = document.getElementById("controls");
  details.addEventListener("toggle", () => { if (details.open) refreshControls(); });

  const themeButton = document.getElementById("theme-toggle");
  themeButton.addEventListener("click", () => {
    const t = document.documentElement.getAttribute("data-theme") || "system";
    const next = t === "system" ? "light" : t === "light" ? "dark" : "system";
    if (next === "system") document.documentElement.removeAttribute("data-theme");
    else document.documentElement.setAttribute("data-theme", next);
    try {
      if (next === "system") window.localStorage.removeItem("healthmon.theme");
      else window.localStorage.setItem("healthmon.theme", next);
    } catch (e) { /* not remembered */ }
    showTheme(themeButton);
  });
  showTheme(themeButton);
  document.getElementById("problems-first").addEventListener("change", renderOrder);
  setupAlerts(runControl, refreshControls);
  applyControls(boot);
  applyHolds(boot);
  // About once a minute: mocks, config error and the server's uptime.
  window.setInterval(refreshControls, 60000);
}
