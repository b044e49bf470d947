// The cards, the header (summary, connection pill, banners) and the order:
// everything the store says, drawn; plus the markup of services a config
// reload adds or removes (cloned from the <template>s the server rendered).

import { $, RANK, SHAPES, WORDS, ago, announce, cardOf, clock, duration, escapeHtml, fmtMs, modalOf, noAnswer, rowOf, setText, span } from "./format.js";
import { SAMPLES, STORED_WINDOWS, UPTIME_WINDOW_MS, percentText, stateSeconds, storedFigures, uptimeFigures } from "./history.js";
import { store } from "./store.js";
import { renderConfig } from "./config.js";
import { showWorst } from "./favicon.js";

const CHECKS_SHOWN = 3;
const SVG = "http://www.w3.org/2000/svg";
const gates = {}; // name -> the client's gate on the card's fieldset

// ---- gating ---------------------------------------------------------------

/**
 * Gate a card's button and form with the client module. "last-known": a
 * stale card keeps the gate it had (the page shows, it does not act), and
 * says so in its legend.
 */
export function gateCard(hm, name) {
  const card = cardOf(name);
  if (!card || gates[name]) return;
  gates[name] = hm.gate($(card, "[data-role=gate]"), {
    requires: [name], allow: "up-or-degraded", whenUnknown: "last-known", reason: false,
  });
}

export function gateAllows(name) {
  const gate = gates[name];
  return !gate || !gate.verdict() || gate.verdict().allowed;
}

function releaseGate(name) {
  if (gates[name]) gates[name].release();
  delete gates[name];
}

// "4 s" since the latest check this page knows of (its own or the server's).
function staleFor(svc, now) {
  return typeof svc.freshAt === "number" ? ago(svc.freshAt, now) : "an unknown time";
}

// While the page polls, a service it may not read (no CORS) is not checked by it:
// it keeps its last known state, never shown down for it.
export function unchecked(svc) {
  return Boolean(svc.unreadable) && store.connection === "polling";
}

// The legend says why: stale keeps the last state but does not claim it.
function renderGate(card, svc, now) {
  const gate = $(card, "[data-role=gate]");
  const legend = $(card, "[data-role=gate-reason]");
  const verdict = gates[svc.name] ? gates[svc.name].verdict() : null;
  const closed = verdict ? !verdict.allowed : svc.status === "down";
  const form = $(card, "[data-action=form]");
  form.setAttribute("aria-disabled", closed ? "true" : "false");
  gate.setAttribute("data-gate", closed ? "disabled" : svc.status === "degraded" ? "warning" : "enabled");
  gate.setAttribute("data-stale", svc.stale ? "true" : "false");
  if (svc.stale) {
    setText(legend, SHAPES[svc.status] + " Last known: " + svc.status + (svc.status === "down" && svc.reason ? ", " + svc.reason : "") +
      " · not confirmed for " + staleFor(svc, now) + (unchecked(svc) ? " · can't check from this page" : ""));
  } else if (closed) {
    // In words, one level deep: "billing is down: connection refused".
    const why = verdict && verdict.cause !== "down" && verdict.reason ? verdict.reason
      : svc.name + " is down" + (svc.reason ? ": " + svc.reason : "");
    setText(legend, "✕ Unavailable — " + why);
  } else if (svc.status === "degraded") {
    setText(legend, "▲ Warning — " + svc.name + " is degraded; answers may be slow or partial");
  } else if (svc.status === "unknown") {
    setText(legend, unchecked(svc) ? "? Can't check from this page" : "Available — status not checked yet");
  } else {
    setText(legend, "Available");
  }
}

// ---- one card ---------------------------------------------------------------

function setPill(el, status) {
  el.setAttribute("data-status", status);
  $(el, ".shape").textContent = SHAPES[status];
  $(el, ".word").textContent = WORDS[status];
}
export { setPill };

function renderCard(svc, now) {
  const card = cardOf(svc.name);
  if (!card) return;
  const stale = svc.stale;
  if (stale !== svc.wasStale) {
    // Once per change, never the ticking count.
    if (stale) announce(svc.name + ": no fresh check; showing the last known state, " + svc.status + ".");
    else if (svc.status !== "unknown") announce(svc.name + " checked again: " + svc.status + ".");
    svc.wasStale = stale;
  }
  card.setAttribute("data-status", svc.status);
  card.setAttribute("data-stale", stale ? "true" : "false");
  card.setAttribute("data-unchecked", unchecked(svc) ? "true" : "false");
  setPill($(card, "[data-role=state]"), svc.status);
  const staleNote = $(card, "[data-role=stale]");
  staleNote.hidden = !stale;
  const cannot = unchecked(svc) ? "can't check from this page (no CORS); " : "";
  setText($(staleNote, ".stale-text"), stale ? "Stale — " + cannot + "no fresh check for " + staleFor(svc, now) : "");
  const since = $(card, "[data-role=since]");
  if (svc.status === "unknown") setText(since, cannot ? "Can't check from this page: it does not allow this page's origin" : "Waiting for the first check");
  else if (stale) setText(since, "Last known: " + WORDS[svc.status] + (svc.since ? " since " + clock(svc.since) : ""));
  else if (svc.since) setText(since, WORDS[svc.status] + " for " + ago(svc.since, now) + " (since " + clock(svc.since) + ")");
  else setText(since, WORDS[svc.status]);
  // Live, every heartbeat refreshes the latency: no "confirmed" needed. A
  // service that did not answer has no latency worth a number.
  const silent = noAnswer(svc.status, svc.reason);
  const latency = silent ? "No answer" : "Latency " + (typeof svc.latencyMs === "number" ? Math.round(svc.latencyMs) + " ms" : "—");
  let fresh = "";
  if (stale) fresh = " · last known";
  else if (svc.source === "poll") fresh = " · measured by this page";
  setText($(card, "[data-role=latency]"), latency);
  setText($(card, "[data-role=freshness]"), fresh);
  const reason = $(card, "[data-role=reason]");
  reason.hidden = !svc.reason;
  setText(reason, svc.reason ? "Reason: " + svc.reason : "");
  renderChecks($(card, "[data-role=checks]"), svc);
  renderData(card, svc);
  renderGate(card, svc, now);
  renderHistory(card, svc, now);
}

// Data controls only for a service with a data endpoint; without one, the
// stored history keeps a button of its own while there is any.
function renderData(card, svc) {
  const has = Boolean(svc.dataUrl);
  if (card.getAttribute("data-has-data") !== String(has)) card.setAttribute("data-has-data", String(has));
  const gate = $(card, "[data-role=gate]");
  if (gate.hidden === has) gate.hidden = !has;
  const history = $(card, "[data-action=history]");
  const showHistory = !has && Boolean(store.history && store.history.available);
  if (history.hidden === showHistory) history.hidden = !showHistory;
  if (has) {
    const path = svc.dataEndpoint || new URL(svc.dataUrl).pathname;
    setText($(card, "[data-role=query-path]"), path + (path.indexOf("?") >= 0 ? "&" : "?") + "q=");
  }
}

// The failing checks, worst first: at most three, then "+N more".
function renderChecks(list, svc) {
  const checks = svc.status === "up" ? [] : svc.checks;
  const key = JSON.stringify(checks);
  if (list.getAttribute("data-key") === key) return;
  list.setAttribute("data-key", key);
  list.textContent = "";
  list.hidden = checks.length === 0;
  checks.slice(0, CHECKS_SHOWN).forEach((c) => {
    const li = document.createElement("li");
    li.className = "check";
    li.setAttribute("data-check", c.name);
    li.setAttribute("data-status", c.word === "fail" ? "down" : "degraded");
    const name = document.createElement("span");
    name.className = "check-name";
    name.textContent = c.name;
    const word = document.createElement("span");
    word.className = "check-status";
    word.textContent = c.word;
    li.append(name, " ", word);
    let detail = c.output || c.observed;
    if (c.output && c.observed) detail = c.output + " (" + c.observed + ")";
    if (detail) {
      const out = document.createElement("span");
      out.className = "check-output";
      out.textContent = detail;
      li.append(" ", out);
    }
    list.appendChild(li);
  });
  if (checks.length > CHECKS_SHOWN) {
    const more = document.createElement("li");
    more.className = "check-more";
    more.textContent = "+" + (checks.length - CHECKS_SHOWN) + " more";
    list.appendChild(more);
  }
}

// Uptime over the hour, and the last 60 s on one time axis: latency as a
// line (gaps where no sample), each sample's state as a band beneath.
// Each state's cell has its own height as well as colour (y, height in the
// 0…24 viewBox): up a thin strip, degraded half, down the full band, unknown
// or stale a hollow mark at the top; empty seconds a faint line.
const BAND = { up: [22.6, 1.4], degraded: [21, 3], down: [19, 5], unknown: [19, 0.8], stale: [19, 0.8], none: [23.4, 0.6], empty: [23.4, 0.6] };

function bandCell(x, status) {
  const cell = document.createElementNS(SVG, "rect");
  const [y, h] = BAND[status] || BAND.none;
  cell.setAttribute("x", String(x + 0.1));
  cell.setAttribute("y", String(y));
  cell.setAttribute("width", "0.8");
  cell.setAttribute("height", String(h));
  cell.setAttribute("class", "band band-" + status);
  return cell;
}

// ---- uptime -------------------------------------------------------------------

// The stored figures replace the hour's once they know more than it does:
// until then (a young server) they are the same figures, and the hour's
// moves every second.
const MEMORY_SLACK_MS = 60000;
// A window known to within this share is shown without "(… known)".
const WHOLE = 0.99;

function renderUptime(card, svc, now) {
  const line = $(card, "[data-role=uptime]");
  const hour = uptimeFigures(svc, now);
  const stored = store.history && store.history.available ? storedFigures(svc, now) : null;
  if (stored && stored["30d"].knownMs > hour.knownMs + MEMORY_SLACK_MS) renderStored(line, stored);
  else renderHour(line, hour);
}

// Labelled by the span it really covers: the hour, or since the server started.
function renderHour(line, { percent, knownMs }) {
  if (line.getAttribute("data-source") !== "memory") {
    const value = document.createElement("span");
    value.setAttribute("data-role", "uptime-value");
    const windowText = document.createElement("span");
    windowText.className = "muted";
    windowText.setAttribute("data-role", "uptime-window");
    line.replaceChildren(value, " ", windowText);
    line.setAttribute("data-source", "memory");
    line.removeAttribute("data-key");
    line.removeAttribute("title");
  }
  setText($(line, "[data-role=uptime-value]"), "Uptime " + (typeof percent === "number" ? percent.toFixed(2) + " %" : "—"));
  setText($(line, "[data-role=uptime-window]"), percent === null ? "" : knownMs >= UPTIME_WINDOW_MS - 1000 ? "(1 h)" : "since start (" + duration(knownMs) + ")");
}

// "(4 d known)" when a window is not (nearly) all known; nothing otherwise.
function knownNote(f) {
  return f.percent !== null && f.knownMs < WHOLE * f.windowMs ? " (" + span(f.knownMs, 1) + " known)" : "";
}

// "Uptime 24 h 99.99 % · 30 d 99.33 % (4 d known)"; both windows as one
// ("24 h · 30 d") when everything known is in the last day.
function renderStored(line, figures) {
  const day = figures["24h"];
  const month = figures["30d"];
  const same = month.coveredMs <= day.windowMs && Math.abs(month.knownMs - day.knownMs) < MEMORY_SLACK_MS;
  const parts = same ? [[STORED_WINDOWS.map((w) => w[2]).join(" · "), day]]
    : STORED_WINDOWS.map(([key, , label]) => [label, figures[key]]);
  const key = JSON.stringify(parts.map(([label, f]) => [label, percentText(f.percent), knownNote(f)]));
  if (line.getAttribute("data-key") === key) return;
  line.setAttribute("data-key", key);
  line.setAttribute("data-source", "stored");
  const word = document.createElement("span");
  word.className = "uptime-word";
  word.textContent = "Uptime ";
  const children = [word];
  parts.forEach(([label, f], i) => {
    if (i) children.push(" · ");
    const figure = document.createElement("span");
    figure.className = "uptime-figure";
    const name = document.createElement("span");
    name.className = "uptime-label";
    name.textContent = label;
    figure.append(name, " " + percentText(f.percent));
    const note = knownNote(f);
    if (note) {
      const known = document.createElement("span");
      known.className = "muted";
      known.textContent = note;
      figure.append(known);
    }
    children.push(figure);
  });
  line.replaceChildren(...children);
  line.title = "Stored history. " + STORED_WINDOWS.map(([key, , label]) => {
    const f = figures[key];
    return "Last " + label + ": " + (f.percent === null ? "nothing known" : percentText(f.percent) + " up over " + span(f.knownMs) + " known") +
      (f.coveredMs < f.windowMs ? ", watched for " + span(f.coveredMs) : "") + ".";
  }).join(" ");
}

function renderHistory(card, svc, now) {
  renderUptime(card, svc, now);
  renderSpark(card, svc);
  renderSparkText(card, svc, now);
}

function renderSpark(card, svc) {
  const samples = svc.samples;
  const key = samples.length ? samples.length + ":" + samples[samples.length - 1].at + ":" + samples[0].at + ":" + samples[samples.length - 1].status : "0";
  const spark = $(card, "[data-role=spark]");
  if (spark.getAttribute("data-key") === key) return;
  spark.setAttribute("data-key", key);
  const values = samples.map((s) => s.latency).filter((v) => v !== null);
  const max = values.length ? Math.max(...values) : 0;
  // The line's scale: 0 … the highest sample, but at least 10 ms, so a
  // fast service's sub-millisecond jitter stays a flat line near the floor.
  const top = Math.max(max, 10);
  const offset = SAMPLES - samples.length; // right-aligned: "now" is the right edge
  const lines = $(spark, "[data-role=lines]");
  const band = $(spark, "[data-role=band]");
  lines.textContent = "";
  band.textContent = "";
  for (let k = 0; k < offset; k++) band.appendChild(bandCell(k, "empty")); // padded on the left
  let run = [];
  const flush = () => {
    if (run.length === 1) run.push((parseFloat(run[0]) + 0.6).toFixed(2) + "," + run[0].split(",")[1]);
    if (run.length > 1) {
      const line = document.createElementNS(SVG, "polyline");
      line.setAttribute("points", run.join(" "));
      line.setAttribute("class", "spark-line");
      lines.appendChild(line);
    }
    run = [];
  };
  samples.forEach((s, i) => {
    const x = offset + i + 0.5;
    if (s.latency === null) flush();
    else run.push(x.toFixed(2) + "," + (18 - (s.latency / top) * 16).toFixed(2));
    band.appendChild(bandCell(offset + i, s.status));
  });
  flush();
  spark.setAttribute("data-points", String(values.length));
}

function renderSparkText(card, svc, now) {
  const values = svc.samples.map((s) => s.latency).filter((v) => v !== null);
  const counts = stateSeconds(svc, now);
  const states = Object.keys(counts).map((k) => counts[k] + " s " + k).join(", ");
  let text = values.length ? "Last 60 s: min " + fmtMs(Math.min(...values)) + ", max " + fmtMs(Math.max(...values)) : "Last 60 s: no latency samples yet";
  if (states) text += " · " + states;
  setText($(card, "[data-role=spark-text]"), text);
}

// ---- the header -------------------------------------------------------------

function renderSummary() {
  const counts = { down: 0, degraded: 0, unknown: 0, up: 0 };
  let worst = "up";
  let stale = 0;
  let cannot = 0; // services this page cannot check itself, while it polls
  let waiting = 0; // unknown, and this page is still to check them
  store.order.forEach((name) => {
    const svc = store.services[name];
    counts[svc.status] += 1;
    if (RANK[svc.status] > RANK[worst]) worst = svc.status;
    if (svc.stale) stale += 1;
    if (unchecked(svc)) cannot += 1;
    else if (svc.status === "unknown") waiting += 1;
  });
  const head = worst === "down" ? "Outage" : worst === "degraded" ? "Partially degraded"
    : worst === "unknown" ? (waiting ? "Checking…" : "Not all known") : stale ? "Last known: all up" : "All systems up";
  const summary = document.getElementById("summary");
  summary.setAttribute("data-worst", worst);
  summary.setAttribute("data-stale", String(stale));
  setText($(summary, ".summary-head"), SHAPES[worst] + " " + head);
  const parts = [];
  ["down", "degraded", "unknown", "up"].forEach((k) => { if (counts[k]) parts.push(counts[k] + " " + k); });
  if (stale) parts.push("◷ " + stale + " stale");
  if (cannot) parts.push(cannot + " not checkable from this page");
  setText($(summary, ".summary-counts"), parts.join(" · "));
  showWorst(worst);
  const title = counts.down ? "(" + counts.down + " down) healthmon"
    : counts.degraded ? "(" + counts.degraded + " degraded) healthmon" : "healthmon";
  if (document.title !== title) document.title = title;
}

function renderConnection(now, lastPollAt) {
  const pill = document.getElementById("connection");
  const kind = store.connection;
  pill.setAttribute("data-connection", kind);
  pill.setAttribute("data-transport", store.transport);
  const text = kind === "live" ? (store.transport === "sse" ? "Live (SSE)" : "Live")
    : kind === "polling" ? "Polling" + (lastPollAt ? " · updated " + ago(lastPollAt, now) + " ago" : "")
    : "Connecting…";
  setText($(pill, ".shape"), kind === "live" ? "●" : kind === "polling" ? "◐" : "◌");
  setText($(pill, ".connection-text"), text);
  pill.title = store.transport === "sse" ? "Live over Server-Sent Events: the WebSocket is unavailable" : "";
  const banner = document.getElementById("banner");
  banner.hidden = kind !== "polling";
  if (kind === "polling") {
    // What happened, then what the page does about it, in plain words.
    const off = store.channels;
    let why = store.connectionWhy || "the server cannot be reached";
    // With a channel open the monitor is what is silent, and the client says so.
    if (!store.channel && off.ws === false && off.sse === false) {
      why = "the server switched its live channels off (WebSocket and Server-Sent Events)";
    }
    const retry = store.reconnectAt ? " It tries the live channel again in " + Math.max(0, Math.ceil((store.reconnectAt - now) / 1000)) + " s." : "";
    setText($(banner, ".banner-title"), why.charAt(0).toUpperCase() + why.slice(1) + ".");
    const cannot = store.order.filter((name) => unchecked(store.services[name]));
    const one = cannot.length === 1;
    const unread = cannot.length ? " It cannot check " + cannot.join(", ") + (one ? " (it does not" : " (they do not") +
      " allow this page's origin): " + (one ? "its" : "their") + " last known state is shown." : "";
    setText($(banner, ".banner-text"), "This page is checking the services itself every second." + unread + retry);
  }
}

// A quiet line, not a banner: the page works, only the long view is missing.
function renderHistoryNotice() {
  const notice = document.getElementById("history-notice");
  const down = !!store.history && store.history.available === false;
  notice.hidden = !down;
  setText($(notice, "[data-role=history-problem]"), down ? store.history.problem || "no reason given" : "");
}

/** Cards in config order, or problems first when asked (CSS order: no node moves, focus stays). */
export function renderOrder() {
  const first = document.getElementById("problems-first").checked;
  store.order.forEach((name, index) => {
    const card = cardOf(name);
    if (!card) return;
    card.style.order = first ? String((3 - RANK[store.services[name].status]) * 1000 + index) : "";
  });
}

/**
 * Projector mode: the grid's columns and how dense the cards are, so up to
 * eight fit one screen (as the template renders them first: index.html).
 */
function renderDensity(count) {
  const cols = String(count <= 1 ? 1 : count <= 4 ? 2 : count <= 6 ? 3 : 4);
  const density = count > 8 ? "many" : count > 4 ? "dense" : "few";
  const root = document.documentElement;
  if (root.getAttribute("data-cols") !== cols) root.setAttribute("data-cols", cols);
  if (root.getAttribute("data-cards") !== density) root.setAttribute("data-cards", density);
}

export function renderCards(now, lastPollAt) {
  store.order.forEach((name) => renderCard(store.services[name], now));
  renderDensity(store.order.length);
  renderSummary();
  renderConnection(now, lastPollAt);
  renderOrder();
  renderConfig();
  renderHistoryNotice();
}

// ---- services added or removed by a config reload ------------------------------

let nextSid = document.querySelectorAll("#services > .card").length + 1;
const sids = {};
document.querySelectorAll("#services > .card").forEach((card) => { sids[card.getAttribute("data-service")] = card.id; });

// Clone a <template> rendered by the same macro as the first page's markup.
function fromTemplate(id, svc, sid) {
  const values = { __SID__: sid, __NAME__: svc.name, __URL__: svc.url, __DATA_ENDPOINT__: svc.dataEndpoint, __DATA_URL__: svc.dataUrl };
  const html = document.getElementById(id).innerHTML.replace(/__(SID|NAME|URL|DATA_ENDPOINT|DATA_URL)__/g, (token) => escapeHtml(values[token]));
  const holder = document.createElement("template");
  holder.innerHTML = html.trim();
  return holder.content.firstElementChild;
}

// Insert `el` before the element of the next service in store order that is
// already there, moving no existing node (a moved node would lose focus).
function insertInOrder(parent, el, name, find) {
  const index = store.order.indexOf(name);
  for (let i = index + 1; i < store.order.length; i++) {
    const next = find(store.order[i]);
    if (next && next.parentNode === parent) { parent.insertBefore(el, next); return; }
  }
  parent.appendChild(el);
}

/** A card, modal and control row for a service the page has no markup for. */
export function mountService(svc) {
  if (cardOf(svc.name)) return false;
  const sid = "svc-" + nextSid++;
  sids[svc.name] = sid;
  insertInOrder(document.getElementById("services"), fromTemplate("card-template", svc, sid), svc.name, cardOf);
  document.getElementById("modals").appendChild(fromTemplate("modal-template", svc, sid));
  syncControlRow(svc);
  return true;
}

// A mock gets a mode select; a real service a note; unknown yet, a
// placeholder until GET /api/services answers.
export function syncControlRow(svc) {
  const sid = sids[svc.name];
  if (!sid) return;
  const row = rowOf(svc.name);
  const kind = svc.mock === null ? "pending" : svc.mock ? "mock" : "real";
  if (row && row.getAttribute("data-kind") === kind) return;
  let fresh;
  if (kind === "pending") {
    fresh = fromTemplate("control-row-real-template", svc, sid);
    setText($(fresh, ".muted"), "checking…");
  } else {
    fresh = fromTemplate(kind === "mock" ? "control-row-mock-template" : "control-row-real-template", svc, sid);
    const select = $(fresh, "select");
    if (select && svc.mode) select.value = svc.mode;
  }
  fresh.setAttribute("data-kind", kind);
  if (row) row.replaceWith(fresh);
  else insertInOrder(document.getElementById("mock-rows"), fresh, svc.name, rowOf);
}

/** Remove a service's card, modal and row; focus in them goes to the services heading. */
export function unmountService(name) {
  releaseGate(name);
  const card = cardOf(name);
  const dialog = modalOf(name);
  const row = rowOf(name);
  const focusLost = [card, dialog, row].some((el) => el && el.contains(document.activeElement));
  if (dialog && dialog.open) dialog.close();
  [card, dialog, row].forEach((el) => { if (el) el.remove(); });
  delete sids[name];
  if (focusLost) {
    const heading = document.getElementById("services-title");
    heading.setAttribute("tabindex", "-1");
    heading.focus();
  }
}
