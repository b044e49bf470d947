// Alerts on the page: the alert log and the silences in the Control panel,
// and each card's "alerts held" mark (a maintenance window or a silence).
// The log is read while the panel is open; the marks follow GET
// /api/services, asked again when the server says one may next change.

import { $, cardOf, setText } from "./format.js";
import { alertRowView, emptyLogText, holdText, markDelay, silenceBody, silenceView } from "./alertview.js";

// While the panel is open and the page in sight: a loopback GET this often.
const LOG_EVERY_MS = 2000;

let run = null; // controls.js's runControl: status line, busy state, refresh
let refresh = null; // controls.js's refreshControls: GET /api/services again
let markTimer = null;
let soonTimer = null;
let reading = false;

function getJson(path) {
  return fetch(path, { headers: { Accept: "application/json" } }).then((res) => res.json().catch(() => ({})).then((json) => {
    if (!res.ok) throw new Error(json.error || "HTTP " + res.status);
    return json;
  }));
}

function alertItem(row) {
  const v = alertRowView(row);
  const li = document.createElement("li");
  li.className = "alert-row";
  li.setAttribute("data-key", v.key);
  li.setAttribute("data-state", v.state);
  li.setAttribute("data-services", v.services.join(" "));
  const time = document.createElement("time");
  time.dateTime = new Date(row.created_ms).toISOString();
  time.textContent = v.time;
  const state = document.createElement("span");
  state.className = "alert-state";
  state.setAttribute("data-state", v.state);
  state.textContent = v.shape + " " + v.word;
  const channel = document.createElement("span");
  channel.className = "alert-channel";
  channel.textContent = v.channel;
  const title = document.createElement("span");
  title.className = "alert-title";
  title.textContent = v.title;
  li.append(time, " ", state, " ", channel, " ", title);
  if (v.detail) {
    const detail = document.createElement("span");
    detail.className = "alert-detail";
    detail.textContent = v.detail;
    li.append(" ", detail);
  }
  return li;
}

function renderLog(doc) {
  const rows = Array.isArray(doc.alerts) ? doc.alerts : [];
  const empty = document.getElementById("alert-empty");
  empty.hidden = rows.length > 0;
  if (!rows.length) setText(empty, emptyLogText(doc.channels));
  const list = document.getElementById("alert-log");
  // Drawn again only when a row is new or moved on (state, attempts, answer).
  const sig = rows.map((r) => r.key + ":" + r.state + ":" + r.attempts + ":" + r.next_ms).join(",");
  if (list.getAttribute("data-sig") === sig) return;
  list.setAttribute("data-sig", sig);
  list.replaceChildren(...rows.map(alertItem));
}

function silenceItem(silence) {
  const v = silenceView(silence);
  const li = document.createElement("li");
  li.className = "silence";
  li.setAttribute("data-silence", v.id);
  const what = document.createElement("span");
  what.className = "silence-what";
  const services = document.createElement("strong");
  services.textContent = v.services;
  what.append(services, " " + v.until);
  if (v.comment) {
    const comment = document.createElement("span");
    comment.className = "silence-comment";
    comment.textContent = "— " + v.comment;
    what.append(" ", comment);
  }
  const lift = document.createElement("button");
  lift.type = "button";
  lift.className = "btn";
  lift.setAttribute("data-action", "lift");
  lift.setAttribute("data-silence", v.id);
  lift.setAttribute("aria-label", "Lift the silence on " + v.services);
  lift.textContent = "Lift";
  li.append(what, lift);
  return li;
}

function renderSilences(doc) {
  const silences = Array.isArray(doc.silences) ? doc.silences : [];
  document.getElementById("silence-empty").hidden = silences.length > 0;
  const list = document.getElementById("silence-list");
  const sig = silences.map((s) => s.id + ":" + s.until_ms).join(",");
  if (list.getAttribute("data-sig") === sig) return;
  list.setAttribute("data-sig", sig);
  list.replaceChildren(...silences.map(silenceItem));
}

/** Read the alert log and the silences (both loopback GETs) and draw them. */
export function refreshAlerts() {
  if (reading) return Promise.resolve();
  reading = true;
  const log = getJson("/api/alerts").then(renderLog, (err) => {
    const empty = document.getElementById("alert-empty");
    empty.hidden = false;
    setText(empty, "The alert log could not be read: " + err.message);
  });
  const silences = getJson("/api/silences").then(renderSilences, () => { /* kept as last read */ });
  return Promise.all([log, silences]).then(() => { reading = false; });
}

/** Soon after a status change (an alert may follow it), while the panel is open. */
export function refreshAlertsSoon() {
  if (soonTimer || !document.getElementById("controls").open) return;
  soonTimer = window.setTimeout(() => { soonTimer = null; refreshAlerts(); }, 500);
}

function syncServiceOptions(names) {
  const select = document.getElementById("silence-service");
  const have = Array.from(select.options, (o) => o.value).slice(1);
  if (have.join("\n") === names.join("\n") || document.activeElement === select) return;
  const chosen = select.value;
  select.replaceChildren(select.options[0], ...names.map((name) => new Option(name, name)));
  select.value = names.includes(chosen) ? chosen : "*";
}

/** The marks on the cards, from GET /api/services; asks again when one may next change. */
export function applyHolds(doc) {
  const services = Array.isArray(doc.services) ? doc.services : [];
  services.forEach((s) => {
    const card = cardOf(s.name);
    if (!card || !("maintenance" in s)) return;
    const text = holdText(s.maintenance, s.maintenance_until_ms);
    const note = $(card, "[data-role=hold]");
    note.hidden = text === null;
    setText($(card, "[data-role=hold-text]"), text || "");
  });
  syncServiceOptions(services.map((s) => s.name));
  if (!("maintenance_next_ms" in doc) || !refresh) return;
  window.clearTimeout(markTimer);
  markTimer = window.setTimeout(refresh, markDelay(doc.maintenance_next_ms, Date.now()));
}

/** Wire the panel's alert parts; `runControl` and `refreshControls` come from controls.js. */
export function setupAlerts(runControl, refreshControls) {
  run = runControl;
  refresh = refreshControls;
  const details = document.getElementById("controls");
  details.addEventListener("toggle", () => { if (details.open) refreshAlerts(); });
  window.setInterval(() => {
    if (details.open && document.visibilityState === "visible") refreshAlerts();
  }, LOG_EVERY_MS);
  document.addEventListener("visibilitychange", () => {
    if (details.open && document.visibilityState === "visible") refreshAlerts();
  });

  const form = document.getElementById("silence-form");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const body = silenceBody(form.elements.service.value, form.elements.pattern.value, form.elements.minutes.value, form.elements.comment.value);
    const button = $(form, "button[type=submit]");
    const label = "Silence on " + body.services[0] + " for " + form.elements.minutes.selectedOptions[0].textContent;
    run(button, "/api/silences", body, label, "POST").then((ok) => {
      if (ok) { form.elements.pattern.value = ""; form.elements.comment.value = ""; }
      refreshAlerts();
    });
  });
  document.getElementById("silence-list").addEventListener("click", (event) => {
    const button = event.target.closest && event.target.closest("[data-action=lift]");
    if (!button) return;
    const id = button.getAttribute("data-silence");
    const what = $(button.parentElement, "strong").textContent;
    run(button, "/api/silences/" + encodeURIComponent(id), null, "Silence on " + what + " lifted", "DELETE").then(refreshAlerts);
  });
  if (details.open) refreshAlerts();
}
