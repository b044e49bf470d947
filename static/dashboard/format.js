// Words, shapes and times as the page shows them, and small DOM helpers.

export const WORDS = { up: "Up", degraded: "Degraded", down: "Down", unknown: "Unknown" };
export const SHAPES = { up: "✓", degraded: "▲", down: "✕", unknown: "?" };
export const RANK = { down: 3, degraded: 2, unknown: 1, up: 0 };

export function $(root, sel) { return root.querySelector(sel); }
export function cardOf(name) { return document.querySelector('.card[data-service="' + CSS.escape(name) + '"]'); }
export function modalOf(name) { return document.querySelector('dialog[data-modal="' + CSS.escape(name) + '"]'); }
export function rowOf(name) { return document.querySelector('[data-control-row="' + CSS.escape(name) + '"]'); }

export function setText(el, text) { if (el.textContent !== text) el.textContent = text; }

function pad2(n) { return n < 10 ? "0" + n : "" + n; }

/** Local wall-clock time, HH:MM:SS. */
export function clock(ms) {
  const d = new Date(ms);
  return pad2(d.getHours()) + ":" + pad2(d.getMinutes()) + ":" + pad2(d.getSeconds());
}

/** Whole seconds in `ms`, as every "for N s" on the page rounds them. */
export function seconds(ms) {
  return Math.max(0, Math.round(ms / 1000));
}

/** "4 s", "3 min", "1 h 5 min" since `ms`. */
export function ago(ms, now) {
  const s = seconds(now - ms);
  if (s < 60) return s + " s";
  const m = Math.floor(s / 60);
  if (m < 60) return m + " min";
  return Math.floor(m / 60) + " h " + (m % 60) + " min";
}

export function fmtMs(v) { return v < 10 ? (Math.round(v * 10) / 10) + " ms" : Math.round(v) + " ms"; }

export function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

// The one polite live region: transitions only, never ticking times.
let pending = [];
let announceTimer = null;
export function announce(text) {
  pending.push(text);
  if (announceTimer) return;
  announceTimer = window.setTimeout(() => {
    announceTimer = null;
    document.getElementById("announcer").textContent = pending.join(" ");
    pending = [];
  }, 250);
}

// Reasons that mean the service gave no answer at all (the server's and this
// page's own wording): there is no latency worth showing for those.
const NO_ANSWER = /^(no answer|connection refused|cannot connect|network error|connection closed before answering)/i;

/** Whether a down service's reason says it did not answer. */
export function noAnswer(status, reason) {
  return status === "down" && typeof reason === "string" && NO_ANSWER.test(reason);
}

/** "45 s", "12 min", "1 h 5 min": a duration in words. */
export function duration(ms) {
  return ago(0, Math.max(0, ms));
}

const UNITS = [["d", 86400000], ["h", 3600000], ["min", 60000], ["s", 1000]];

/** "4 d 17 h", "23 h 58 min", "45 s": a duration in its largest `parts` units, floored. */
export function span(ms, parts = 2) {
  let rest = Math.max(0, Math.floor(ms));
  const out = [];
  for (const [unit, size] of UNITS) {
    if (out.length === parts) break;
    if (rest >= size || (unit === "s" && !out.length)) {
      out.push(Math.floor(rest / size) + " " + unit);
      rest %= size;
    } else if (out.length) {
      break; // "4 d", not "4 d 0 h"
    }
  }
  return out.join(" ");
}

const DAY = new Intl.DateTimeFormat("en-GB", { weekday: "short", day: "numeric", month: "short", timeZone: "UTC" });
const LOCAL_DAY = new Intl.DateTimeFormat("en-GB", { weekday: "short", day: "numeric", month: "short" });

/** "Tue 1 Dec": the UTC day starting at `ms` (the server's day buckets are UTC days). */
export function utcDay(ms) { return DAY.format(new Date(ms)); }

/** "Tue 1 Dec 10:00": a local date and time. */
export function when(ms) { return LOCAL_DAY.format(new Date(ms)) + " " + clock(ms).slice(0, 5); }

/** "14:02:10" today, "Tue 1 Dec 14:02:10" on another day (stored history reaches back days). */
export function stamp(ms, now) {
  const same = new Date(ms).toDateString() === new Date(now).toDateString();
  return same ? clock(ms) : LOCAL_DAY.format(new Date(ms)) + " " + clock(ms);
}
