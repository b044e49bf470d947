// Stored history (the server's [history]): whether it works, and the data
// dialog's long view of one service from GET /api/services/{name}/history —
// 90 days as one bar per UTC day, the latest incidents and a CSV export.

import { $, SHAPES, announce, clock, modalOf, span, utcDay, when } from "./format.js";
import { percentText } from "./history.js";
import { store } from "./store.js";
import { describeFailure } from "../client.js";

const WINDOW = "90d";
const DAYS = 90;
const DAY_MS = 86400000;
const INCIDENTS_SHOWN = 5;
const REFRESH_MS = 30000; // while a dialog stays open
const TIMEOUT_MS = 8000;
const WORD = { up: "up", degraded: "degraded", down: "down", unknown: "no data", empty: "not watched yet" };

const panels = {}; // name -> {token, timer}

/**
 * The server's `history` ({available, problem}, or null when history is
 * off). Announces a change of availability; returns true when it changed.
 */
export function setHistory(value) {
  const next = value && typeof value === "object"
    ? { available: value.available === true, problem: typeof value.problem === "string" ? value.problem : null }
    : null;
  const before = store.history;
  store.history = next;
  const was = before ? before.available : null;
  const is = next ? next.available : null;
  if (was === is) return false;
  if (before !== undefined) { // not at the first render
    if (is === false) announce("Stored history unavailable: " + (next.problem || "no reason given") + ".");
    else if (is === true && was === false) announce("Stored history is back.");
  }
  return true;
}

// ---- the dialog's panel ------------------------------------------------------

function historyUrl(name) {
  return "/api/services/" + encodeURIComponent(name) + "/history?window=" + WINDOW;
}

function exportUrl(name) {
  return "/api/history/export?window=" + WINDOW + "&format=csv&service=" + encodeURIComponent(name);
}

// {status, json} for any answer; a network failure or timeout rejects.
function fetchJson(url) {
  const controller = new AbortController();
  const timer = window.setTimeout(() => controller.abort(), TIMEOUT_MS);
  return fetch(url, { cache: "no-store", signal: controller.signal })
    .then((res) => res.text().then((text) => {
      let json = null;
      try { json = text ? JSON.parse(text) : null; } catch (e) { json = null; }
      return { status: res.status, json, text };
    }))
    .catch((err) => { throw new Error(describeFailure(err, TIMEOUT_MS)); })
    .finally(() => window.clearTimeout(timer));
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function statusWord(status) {
  const word = el("span", "status-word", SHAPES[status] + " " + status);
  word.setAttribute("data-status", status);
  return word;
}

/** The dialog of `name` opened: load its panel now and every 30 s while it stays open. */
export function openStored(name) {
  closeStored(name);
  const section = $(modalOf(name), "[data-role=stored]");
  if (!section) return;
  panels[name] = { token: 0, timer: window.setInterval(() => loadStored(name), REFRESH_MS) };
  if (section.hidden) {
    section.hidden = false;
    $(section, "[data-role=stored-body]").replaceChildren(el("p", "muted", "Loading the last 90 days …"));
  }
  loadStored(name);
}

/** The dialog closed (or its service went away): no more requests. */
export function closeStored(name) {
  const panel = panels[name];
  if (!panel) return;
  window.clearInterval(panel.timer);
  delete panels[name];
}

/** Load again every open panel (history came back, or went away). */
export function reloadOpenStored() {
  Object.keys(panels).forEach(loadStored);
}

export function loadStored(name) {
  const panel = panels[name];
  const dialog = modalOf(name);
  if (!panel || !dialog) return;
  const section = $(dialog, "[data-role=stored]");
  const token = ++panel.token;
  section.setAttribute("aria-busy", "true");
  fetchJson(historyUrl(name)).then(
    (r) => {
      if (panels[name] !== panel || panel.token !== token) return;
      section.removeAttribute("aria-busy");
      if (r.status === 404) {
        // History is off (or the service is gone): no panel at all.
        section.hidden = true;
        section.setAttribute("data-state", "off");
        return;
      }
      section.hidden = false;
      if (r.status === 200 && r.json && Array.isArray(r.json.buckets)) {
        section.setAttribute("data-state", "loaded");
        showHistory(section, name, r.json);
        return;
      }
      const detail = r.json && typeof r.json.error === "string" ? r.json.error : r.text.slice(0, 200) || "HTTP " + r.status;
      section.setAttribute("data-state", r.status === 503 ? "unavailable" : "error");
      showProblem(section, r.status === 503 ? detail : "could not load history: HTTP " + r.status + ", " + detail);
    },
    (err) => {
      if (panels[name] !== panel || panel.token !== token) return;
      section.removeAttribute("aria-busy");
      section.setAttribute("data-state", "error");
      showProblem(section, "could not load history: " + err.message);
    }
  );
}

// "History unavailable: <problem>" (the server's own words start that way).
function showProblem(section, message) {
  const text = /^history unavailable/i.test(message) ? message : "History unavailable: " + message;
  const p = el("p", "stored-problem", text.charAt(0).toUpperCase() + text.slice(1));
  p.setAttribute("data-role", "stored-problem");
  $(section, "[data-role=stored-body]").replaceChildren(p);
}

// ---- drawing -------------------------------------------------------------------

// The last 90 UTC days, oldest first: each with the day's bucket (if any)
// and its state — the bucket's worst, "unknown" for a watched day with no
// data, "empty" before the service was first seen.
function daysOf(doc) {
  const today = Math.floor(doc.to / DAY_MS) * DAY_MS;
  const byStart = new Map(doc.buckets.map((b) => [b.start, b]));
  const firstSeen = typeof doc.first_seen === "number" ? doc.first_seen : null;
  const days = [];
  for (let i = DAYS - 1; i >= 0; i--) {
    const start = today - i * DAY_MS;
    const bucket = byStart.get(start) || null;
    let state = bucket ? bucket.status : "unknown";
    if (!bucket && (firstSeen === null || firstSeen >= start + DAY_MS)) state = "empty";
    days.push({ start, bucket, state });
  }
  return days;
}

function dayTitle(day) {
  const head = utcDay(day.start) + " (UTC): ";
  const b = day.bucket;
  if (!b) return head + "? no data — healthmon recorded nothing";
  if (day.state === "unknown") return head + "? unknown — no fresh check all day";
  if (day.state === "empty") return head + "not watched yet";
  return head + SHAPES[day.state] + " " + day.state + " · uptime " + percentText(b.uptime) + " · " + span(b.known_ms) + " known" +
    (b.down_ms ? " · down " + span(b.down_ms) : "") + (b.degraded_ms ? " · degraded " + span(b.degraded_ms) : "");
}

// "6 days watched: 3 up, 1 degraded, 1 down, 1 no data" (the bar's text alternative).
function daysSummary(name, days) {
  const watched = days.filter((d) => d.state !== "empty");
  const counts = {};
  watched.forEach((d) => { counts[d.state] = (counts[d.state] || 0) + 1; });
  const parts = ["down", "degraded", "up", "unknown"].filter((s) => counts[s])
    .map((s) => counts[s] + " " + WORD[s]);
  if (!watched.length) return "Last 90 days of " + name + ": not watched yet.";
  return "Last 90 days of " + name + ", one bar per UTC day: " + watched.length + (watched.length === 1 ? " day" : " days") +
    " watched (" + parts.join(", ") + ")" + (watched.length < DAYS ? "; none before " + utcDay(watched[0].start) : "") + ".";
}

function dayTable(name, days) {
  const table = el("table", "visually-hidden");
  table.setAttribute("data-role", "days-table");
  table.append(el("caption", "", "Daily status of " + name + ", last 90 UTC days, oldest first"));
  const head = el("tr");
  ["Day", "State", "Uptime", "Known"].forEach((h) => { const th = el("th", "", h); th.scope = "col"; head.append(th); });
  table.append(el("thead"));
  table.tHead.append(head);
  const body = el("tbody");
  days.filter((d) => d.state !== "empty").forEach((d) => {
    const row = el("tr");
    const b = d.bucket;
    row.append(
      el("th", "", utcDay(d.start)),
      el("td", "", WORD[d.state]),
      el("td", "", b && b.uptime !== null ? percentText(b.uptime) : "—"),
      el("td", "", b ? span(b.known_ms) : "0 s"),
    );
    row.firstChild.scope = "row";
    body.append(row);
  });
  table.append(body);
  return table;
}

function dayBar(name, days) {
  const bar = el("div", "days");
  bar.setAttribute("data-role", "days");
  bar.setAttribute("role", "img");
  bar.setAttribute("aria-label", daysSummary(name, days));
  days.forEach((d) => {
    const cell = el("span", "day day-" + d.state);
    cell.setAttribute("data-day", new Date(d.start).toISOString().slice(0, 10));
    if (d.state !== "empty") cell.setAttribute("data-status", d.state);
    cell.title = dayTitle(d);
    bar.append(cell);
  });
  return bar;
}

// An incident's line: "✕ down Tue 1 Dec 10:00 for 45 min — connection refused".
function incidentItem(item, unknownStarts, now) {
  const li = el("li", "incident");
  li.setAttribute("data-status", item.status);
  const time = el("time", "", when(item.start));
  time.dateTime = new Date(item.start).toISOString();
  const lasted = (ms) => ms < 1000 ? "under 1 s" : span(ms);
  const length = item.ongoing ? "ongoing, " + lasted(Math.max(item.duration_ms, now - item.start)) + " so far"
    : "for " + lasted(item.duration_ms);
  li.append(statusWord(item.status), " ", time, " ", el("span", "incident-length", length));
  let after = "";
  if (item.unwatched_after) after = "then healthmon stopped";
  else if (item.end !== null && unknownStarts.has(item.end)) after = "then no data: " + unknownStarts.get(item.end);
  if (after) li.append(" ", el("span", "incident-after", after));
  if (item.reason) li.append(" ", el("span", "incident-reason", item.reason));
  return li;
}

function showHistory(section, name, doc) {
  const days = daysOf(doc);
  const summary = el("p", "stored-summary");
  summary.setAttribute("data-role", "stored-summary");
  const known = typeof doc.known_ms === "number" ? doc.known_ms : 0;
  const figure = el("strong", "", "Uptime " + percentText(doc.uptime));
  const parts = [];
  if (doc.uptime === null) parts.push("nothing known in 90 d");
  else if (known < 0.99 * doc.window_ms) parts.push(span(known) + " known of 90 d");
  else parts.push("over 90 d");
  if (typeof doc.first_seen === "number" && doc.first_seen > doc.from) parts.push("watched since " + utcDay(doc.first_seen));
  if (doc.down_ms) parts.push("down " + span(doc.down_ms));
  if (doc.degraded_ms) parts.push("degraded " + span(doc.degraded_ms));
  summary.append(figure, " ", el("span", "muted", parts.join(" · ")));

  const legend = el("p", "days-legend");
  legend.setAttribute("aria-hidden", "true");
  legend.append(el("span", "", "90 days ago"), el("span", "", "today"));
  const key = el("p", "days-key");
  key.setAttribute("aria-hidden", "true");
  ["up", "degraded", "down", "unknown"].forEach((s) => {
    const item = el("span", "days-key-item");
    const sample = el("span", "day day-" + s);
    sample.setAttribute("data-status", s);
    item.append(sample, " " + WORD[s]);
    key.append(item);
  });

  const unknownStarts = new Map((doc.unknown_periods || []).map((p) => [p.start, p.reason || "unknown"]));
  const incidents = Array.isArray(doc.incidents) ? doc.incidents : [];
  const title = el("h4", "incidents-title", "Latest incidents");
  let list;
  if (incidents.length) {
    list = el("ol", "incidents");
    incidents.slice(0, INCIDENTS_SHOWN).forEach((item) => list.append(incidentItem(item, unknownStarts, doc.to)));
    if (incidents.length > INCIDENTS_SHOWN) {
      list.append(el("li", "incident-more muted", "+" + (incidents.length - INCIDENTS_SHOWN) + " earlier in the last 90 days"));
    }
  } else {
    list = el("p", "muted", "No incidents in the last 90 days.");
  }
  list.setAttribute("data-role", "incidents");

  const foot = el("p", "stored-foot");
  const link = el("a", "", "Export 90 days as CSV");
  link.href = exportUrl(name);
  link.setAttribute("download", "");
  link.setAttribute("data-role", "export");
  foot.append(link, el("span", "muted", " · days in UTC · updated " + clock(Date.now())));

  const body = $(section, "[data-role=stored-body]");
  // Drawn again every 30 s: whoever was on the export link stays on it.
  const focused = body.contains(document.activeElement) ? document.activeElement.getAttribute("data-role") : null;
  body.replaceChildren(summary, dayBar(name, days), legend, key, dayTable(name, days), title, list, foot);
  const again = focused ? $(body, '[data-role="' + focused + '"]') : null;
  if (again) again.focus();
}
