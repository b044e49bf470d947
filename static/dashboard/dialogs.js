// Each service's data dialog and its query form: the page's only requests to
// the services' data endpoints. The dialog is not modal (show()): a teacher
// switches the service in the Control panel while its dialog stays open, and
// watches the dialog say so. Escape closes it; focus goes back to the button
// that opened it, or to the card's heading when that button is disabled.

import { $, cardOf, clock, modalOf, setText } from "./format.js";
import { setPill, gateAllows } from "./cards.js";
import { store } from "./store.js";
import { closeStored, loadStored, openStored } from "./stored.js";
import { describeFailure } from "../client.js";

const DATA_TIMEOUT_MS = 8000;
const openers = {};
const modalRequests = {};

function fetchWithTimeout(url, timeoutMs) {
  const controller = new AbortController();
  const timer = window.setTimeout(() => controller.abort(), timeoutMs);
  return fetch(url, { cache: "no-store", credentials: "omit", signal: controller.signal })
    .then((res) => res.text().then((text) => ({ res, text })))
    .finally(() => window.clearTimeout(timer));
}

function requestData(url) {
  const started = performance.now();
  return fetchWithTimeout(url, DATA_TIMEOUT_MS).then(
    (r) => {
      let json = null;
      try { json = r.text ? JSON.parse(r.text) : null; } catch (e) { json = null; }
      const ms = Math.round(performance.now() - started);
      if (!r.res.ok) {
        const detail = json && typeof json.error === "string" ? json.error : r.text.slice(0, 200);
        throw new Error("HTTP " + r.res.status + (detail ? ": " + detail : ""));
      }
      if (json === null && r.text) throw new Error("the answer is not JSON");
      return { json, ms };
    },
    (err) => { throw new Error(describeFailure(err, DATA_TIMEOUT_MS)); }
  );
}

/** Every dialog's state pill and alert, from the store. */
export function renderModals() {
  store.order.forEach((name) => {
    const dialog = modalOf(name);
    if (!dialog) return;
    const svc = store.services[name];
    setPill($(dialog, "[data-role=state]"), svc.status);
    // Without a data endpoint the dialog is the stored history alone.
    const data = $(dialog, "[data-role=modal-data]");
    if (data.hidden === Boolean(svc.dataUrl)) data.hidden = !svc.dataUrl;
    setText($(dialog, "h2"), name + (svc.dataUrl ? " data" : " history"));
    setText($(dialog, "[data-role=data-url]"), svc.dataUrl || "");
    const alert = $(dialog, "[data-role=modal-alert]");
    let text = "";
    if (svc.stale) {
      // A role=alert: no ticking count here, the card has it.
      text = "◷ No fresh check of " + name + "; last known: " + svc.status +
        (svc.reason ? ", " + svc.reason : "") + ". What is shown may be out of date.";
    } else if (svc.status === "down") {
      text = "✕ " + name + " is down" + (svc.reason ? ": " + svc.reason : "") +
        ". What is shown below may be out of date; fetching again will fail until it is back.";
    } else if (svc.status === "degraded") {
      text = "▲ " + name + " is degraded; answers may be slow or partial.";
    }
    if (alert.textContent !== text) alert.textContent = text;
    alert.hidden = !text;
    alert.setAttribute("data-status", svc.status);
    alert.setAttribute("data-stale", svc.stale ? "true" : "false");
    dialog.setAttribute("data-status", svc.status);
  });
}

function showData(body, json) {
  body.textContent = "";
  if (json && typeof json === "object" && !Array.isArray(json)) {
    const dl = document.createElement("dl");
    dl.className = "data-list";
    Object.keys(json).forEach((key) => {
      const dt = document.createElement("dt");
      dt.textContent = key;
      const dd = document.createElement("dd");
      const v = json[key];
      dd.textContent = typeof v === "object" && v !== null ? JSON.stringify(v) : String(v);
      dl.append(dt, dd);
    });
    body.appendChild(dl);
  } else {
    const pre = document.createElement("pre");
    pre.textContent = JSON.stringify(json, null, 2);
    body.appendChild(pre);
  }
}

function loadModal(name) {
  const dialog = modalOf(name);
  const svc = store.services[name];
  const body = $(dialog, "[data-role=modal-body]");
  const token = (modalRequests[name] || 0) + 1;
  modalRequests[name] = token;
  dialog.setAttribute("data-state", "loading");
  body.setAttribute("aria-busy", "true");
  body.textContent = "";
  const p = document.createElement("p");
  p.className = "muted";
  p.textContent = "Loading " + svc.dataUrl + " …";
  body.appendChild(p);
  requestData(svc.dataUrl).then(
    (r) => {
      if (modalRequests[name] !== token) return;
      dialog.setAttribute("data-state", "loaded");
      body.removeAttribute("aria-busy");
      showData(body, r.json);
      const note = document.createElement("p");
      note.className = "muted fetched";
      note.textContent = "Fetched at " + clock(Date.now()) + " in " + r.ms + " ms.";
      body.appendChild(note);
    },
    (err) => {
      if (modalRequests[name] !== token) return;
      dialog.setAttribute("data-state", "error");
      body.removeAttribute("aria-busy");
      body.textContent = "";
      const box = document.createElement("div");
      box.className = "error-box";
      box.setAttribute("data-role", "modal-error");
      const title = document.createElement("p");
      title.className = "error-title";
      title.textContent = "✕ Could not load " + name + " data";
      const detail = document.createElement("p");
      detail.textContent = err.message + ".";
      const retry = document.createElement("button");
      retry.type = "button";
      retry.className = "btn primary";
      retry.textContent = "Retry";
      retry.setAttribute("data-action", "retry");
      retry.addEventListener("click", () => loadModal(name));
      box.append(title, detail, retry);
      body.appendChild(box);
      retry.focus();
    }
  );
}

function openModal(name, opener) {
  const dialog = modalOf(name);
  if (!dialog || dialog.open) return;
  // One data dialog at a time: they sit in the same place.
  document.querySelectorAll("dialog[data-modal][open]").forEach((other) => {
    const otherName = other.getAttribute("data-modal");
    openers[otherName] = null;
    other.close();
  });
  openers[name] = opener;
  renderModals();
  dialog.show();
  $(dialog, "[data-action=close]").focus();
  if (store.services[name].dataUrl) loadModal(name);
  openStored(name);
}

// The per-service form: ?q= to the data endpoint, the echo shown.
function submitForm(name, form) {
  const svc = store.services[name];
  const out = $(cardOf(name), "[data-role=form-result]");
  if (!gateAllows(name) || !svc.dataUrl) return;
  const q = form.elements.q.value;
  out.hidden = false;
  out.setAttribute("data-state", "loading");
  out.textContent = "Sending q=" + q + " …";
  // The endpoint's own query (data_endpoint = "/data?limit=5") stays; q joins it.
  const url = new URL(svc.dataUrl);
  url.search = (url.search ? url.search + "&" : "?") + "q=" + encodeURIComponent(q);
  requestData(url.href).then(
    (r) => {
      out.setAttribute("data-state", "ok");
      const echoed = r.json && r.json.query ? r.json.query : null;
      out.textContent = echoed
        ? "Answer in " + r.ms + " ms, echoed query: " + JSON.stringify(echoed)
        : "Answer in " + r.ms + " ms: " + JSON.stringify(r.json);
    },
    (err) => {
      out.setAttribute("data-state", "error");
      out.textContent = "✕ Failed: " + err.message;
    }
  );
}

/** Listeners of one service's card and dialog (first render and clones alike). */
export function wireService(name) {
  const card = cardOf(name);
  const dialog = modalOf(name);
  if (card) {
    $(card, "[data-action=open]").addEventListener("click", (event) => openModal(name, event.currentTarget));
    $(card, "[data-action=history]").addEventListener("click", (event) => openModal(name, event.currentTarget));
    $(card, "[data-action=form]").addEventListener("submit", (event) => {
      event.preventDefault();
      submitForm(name, event.currentTarget);
    });
  }
  if (!dialog) return;
  $(dialog, "[data-action=refresh]").addEventListener("click", () => {
    if (store.services[name].dataUrl) loadModal(name);
    loadStored(name);
  });
  $(dialog, "[data-action=close]").addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => {
    modalRequests[name] = (modalRequests[name] || 0) + 1;
    closeStored(name);
    const opener = openers[name];
    openers[name] = null;
    // Focus moves only if it was in the dialog (or nowhere): a teacher who
    // was using the Control panel keeps their place there.
    const active = document.activeElement;
    const lost = !active || active === document.body || dialog.contains(active);
    if (!lost || !opener || !document.contains(opener)) return;
    if (opener.matches(":disabled")) {
      // The button was disabled while the dialog was open: the card's heading.
      const heading = $(cardOf(name), ".card-name");
      heading.setAttribute("tabindex", "-1");
      heading.focus();
    } else {
      opener.focus();
    }
  });
}

/** A service going away: its dialog must not hand focus back to its card. */
export function forgetService(name) {
  openers[name] = null;
  closeStored(name);
}

// Escape closes the open data dialog (a non-modal dialog gets no close
// request of its own), wherever focus is, unless something else used the key.
document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape" || event.defaultPrevented) return;
  const open = document.querySelector("dialog[data-modal][open]");
  if (!open) return;
  event.preventDefault();
  open.close();
});
