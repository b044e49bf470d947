// What the alert log, the silences and a card's "alerts held" mark read as:
// pure functions of the server's rows (GET /api/alerts, /api/silences,
// /api/services), so node --test tests/js/ checks them without a page.

import { clock } from "./format.js";

// Each state a word and a shape, never a colour alone.
export const ALERT_STATES = {
  sent: ["✓", "sent"],
  retrying: ["↻", "retrying"],
  failed: ["✕", "failed"],
  held: ["‖", "held"],
  pending: ["◌", "pending"],
};

// The alert log's channel for what a window or silence held (sent nowhere).
const HELD_CHANNEL = "-";

// How soon the page asks again when a mark may change: not sooner than 1 s,
// not later than a minute (a clock that jumped, a window added by a reload).
export const MARK_MIN_MS = 1000;
export const MARK_MAX_MS = 60000;

/** "billing, auth" from a row's alerts (the services it speaks of), else its title. */
function servicesOf(row) {
  const names = [];
  (Array.isArray(row.alerts) ? row.alerts : []).forEach((a) => {
    if (a && typeof a.service === "string" && !names.includes(a.service)) names.push(a.service);
  });
  return names;
}

/**
 * One alert log row as the page shows it: time (local HH:MM:SS), channel,
 * state word and shape, what follows from the state, and the title.
 */
export function alertRowView(row) {
  const state = typeof row.state === "string" ? row.state : "pending";
  const [shape, word] = ALERT_STATES[state] || ["?", state];
  let detail = "";
  if (state === "retrying") {
    detail = typeof row.next_ms === "number" ? "next try " + clock(row.next_ms) : "trying again";
    if (row.answer) detail += " · " + row.answer;
  } else if (state === "failed") {
    detail = row.answer ? "answer: " + row.answer : "no answer";
  } else if (state === "held") {
    detail = row.answer || "maintenance or silence";
  }
  const services = servicesOf(row);
  const title = typeof row.title === "string" && row.title ? row.title : services.join(", ");
  return {
    key: String(row.key),
    time: clock(row.created_ms),
    channel: row.channel === HELD_CHANNEL ? "not sent" : String(row.channel),
    state,
    shape,
    word,
    detail,
    title,
    services,
  };
}

/** The text when the log is empty: no channel configured says what to add. */
export function emptyLogText(channels) {
  if (!Array.isArray(channels) || channels.length === 0) {
    return "No alert channel is configured, so no alerts are sent. Add a [[channels]] table to config.toml (a webhook, email or apprise URL) to send them.";
  }
  return "No alerts yet: one is sent to " + channels.join(", ") + " when a service changes state.";
}

/** A silence in force as the page lists it. */
export function silenceView(silence) {
  const services = Array.isArray(silence.services) ? silence.services : [];
  return {
    id: String(silence.id),
    services: services.map((s) => (s === "*" ? "all services" : s)).join(", "),
    until: "until " + clock(silence.until_ms).slice(0, 5),
    comment: silence.comment || "",
  };
}

/** A card's mark: "Alerts held until 14:05 — silenced: deploy" (null: none). */
export function holdText(maintenance, untilMs) {
  if (!maintenance) return null;
  const until = typeof untilMs === "number" ? " until " + clock(untilMs).slice(0, 5) : "";
  return "Alerts held" + until + " — " + maintenance;
}

/** What the form asks for: the body of POST /api/silences. */
export function silenceBody(service, pattern, minutes, comment) {
  const glob = (pattern || "").trim();
  const body = { services: [glob || service || "*"], minutes: Number(minutes) };
  const note = (comment || "").trim();
  if (note) body.comment = note;
  return body;
}

/** How long to wait before asking whether a mark changed (the server's next boundary). */
export function markDelay(nextMs, now) {
  if (typeof nextMs !== "number") return MARK_MAX_MS;
  return Math.min(MARK_MAX_MS, Math.max(MARK_MIN_MS, nextMs - now + 250));
}
