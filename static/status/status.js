// The public status page, kept live. The server renders it complete; this
// module only follows changes through the client module (WebSocket, then
// Server-Sent Events) on the public channel, and polls the public JSON when
// neither works. It reads only what that channel carries: no URLs, no
// controls, reasons only when the server sends them.
import { createClient } from "/client.js";
import { showWorst } from "/status/favicon.js";

const SHAPES = { up: "✓", degraded: "▲", down: "✕", unknown: "?" };
const WORDS = { up: "Operational", degraded: "Degraded", down: "Down", unknown: "Unknown" };
const BANNER_SHAPES = { operational: "✓", degraded: "▲", partial: "▲", major: "✕", unknown: "?" };
const POLL_MS = 2000;
const POLL_AFTER_MS = 3000;

const tag = document.querySelector("script[data-live]");
const live = tag.dataset.live;
const title = tag.dataset.title;
const boot = JSON.parse(document.getElementById("bootstrap").textContent);
const states = new Map(boot.services.map((s) => [s.name, s]));

/** A stale state is unknown: never its last colour. */
function statusOf(s) {
  if (!s || s.stale) return "unknown";
  return SHAPES[s.status] ? s.status : "unknown";
}

function wordOf(s) {
  return s && s.stale && s.status !== "unknown" ? "Stale" : WORDS[statusOf(s)];
}

/** The same roll-up as the server's (public/view.py banner). */
export function banner(statuses) {
  if (!statuses.length) return { key: "unknown", text: "No services shown" };
  const down = statuses.filter((s) => s === "down").length;
  if (down && 2 * down >= statuses.length) return { key: "major", text: "Major outage" };
  if (down) return { key: "partial", text: "Partial outage" };
  if (statuses.includes("degraded")) return { key: "degraded", text: "Degraded performance" };
  if (statuses.includes("unknown")) return { key: "unknown", text: "Status unknown" };
  return { key: "operational", text: "All systems operational" };
}

function worst(statuses) {
  return ["down", "degraded", "unknown"].find((s) => statuses.includes(s)) || "up";
}

function render() {
  const statuses = [];
  document.querySelectorAll("li.service[data-service]").forEach((li) => {
    const s = states.get(li.dataset.service);
    const status = statusOf(s);
    statuses.push(status);
    li.dataset.status = status;
    li.querySelector(".pill .shape").textContent = SHAPES[status];
    li.querySelector("[data-role=word]").textContent = wordOf(s);
    const latency = li.querySelector("[data-role=latency]");
    if (latency && s) latency.textContent = typeof s.latency_ms === "number" ? Math.round(s.latency_ms) + " ms" : "—";
    const reason = li.querySelector("[data-role=reason]");
    const text = s && boot.show_reasons && s.reason ? s.reason : "";
    if (reason.textContent !== text) reason.textContent = text;
    reason.hidden = !text;
    const maintenance = li.querySelector("[data-role=maintenance]");
    if (maintenance && s && typeof s.maintenance === "boolean") maintenance.hidden = !s.maintenance;
  });
  const rolled = banner(statuses);
  const section = document.querySelector("[data-banner]");
  if (section.dataset.banner !== rolled.key) {
    section.dataset.banner = rolled.key;
    section.querySelector(".banner-shape").textContent = BANNER_SHAPES[rolled.key];
    section.querySelector("[data-role=banner-text]").textContent = rolled.text;
  }
  renderOngoing();
  document.title = (rolled.key === "operational" ? "" : "(" + rolled.text + ") ") + title;
  showWorst(worst(statuses));
}

function utc(ms) {
  return new Date(ms).toISOString().slice(0, 16).replace("T", " ") + " UTC";
}

/** "Now": every shown service that is down or degraded, as the server renders it. */
function renderOngoing() {
  const list = document.querySelector("[data-list=ongoing]");
  const items = [];
  states.forEach((s) => {
    const status = statusOf(s);
    if (status !== "down" && status !== "degraded") return;
    const li = document.createElement("li");
    li.dataset.status = status;
    const shape = document.createElement("span");
    shape.className = "shape";
    shape.setAttribute("aria-hidden", "true");
    shape.textContent = SHAPES[status];
    const name = document.createElement("strong");
    name.textContent = s.display_name || s.name;
    const since = typeof s.since === "number" ? " since " + utc(s.since) : "";
    const reason = boot.show_reasons && s.reason ? " — " + s.reason : "";
    li.append(shape, " ", name, " " + WORDS[status].toLowerCase() + since + reason);
    items.push(li);
  });
  list.replaceChildren(...items);
  list.hidden = !items.length;
  document.querySelector("[data-role=no-ongoing]").hidden = items.length > 0;
}

const connection = document.querySelector("[data-connection]");
function showConnection(kind, words) {
  connection.dataset.connection = kind;
  connection.textContent = words;
}

// -- polling the public JSON while no push channel works ---------------------------
let pollTimer = null;
let waitTimer = null;

// A maintenance window's start or end is no status change: nothing is pushed,
// so the page reads the public JSON again then (between 1 s and a minute away).
let maintenanceTimer = null;
function watchMaintenance(nextMs) {
  clearTimeout(maintenanceTimer);
  const wait = typeof nextMs === "number" ? Math.min(60000, Math.max(1000, nextMs - Date.now() + 250)) : 60000;
  maintenanceTimer = setTimeout(async () => {
    let next = null;
    try {
      const res = await fetch(live + "api/services", { cache: "no-store", credentials: "omit" });
      if (!res.ok) throw new Error("HTTP " + res.status);
      const doc = await res.json();
      doc.services.forEach((s) => { if (states.has(s.name)) states.get(s.name).maintenance = s.maintenance; });
      next = doc.maintenance_next_ms;
      render();
    } catch (e) { /* asked again within a minute */ }
    watchMaintenance(next);
  }, wait);
}

async function pollOnce() {
  try {
    const res = await fetch(live + "api/services", { cache: "no-store", credentials: "omit" });
    if (!res.ok) throw new Error("HTTP " + res.status);
    const doc = await res.json();
    doc.services.forEach((s) => states.set(s.name, s));
    render();
    showConnection("polling", "Polling · updated " + new Date().toLocaleTimeString());
  } catch (e) {
    showConnection("offline", "Offline · retrying");
  }
  pollTimer = setTimeout(pollOnce, POLL_MS);
}

function pushed(c) {
  return c.transport === "websocket" || c.transport === "sse";
}

const hm = createClient(live, { transports: ["websocket", "sse"] });
hm.on("update", () => {
  hm.names().forEach((name) => {
    const st = hm.status(name);
    const svc = hm.service(name);
    if (!st || st.source === null) return;
    states.set(name, {
      ...states.get(name), status: st.status, stale: st.stale, reason: st.reason, since: st.since,
      latency_ms: svc ? svc.latencyMs : null,
    });
  });
  render();
});
hm.on("connection", (c) => {
  if (pushed(c)) {
    clearTimeout(waitTimer);
    clearTimeout(pollTimer);
    waitTimer = pollTimer = null;
    showConnection("live", "Live");
  } else if (!pollTimer && !waitTimer) {
    showConnection("connecting", "Connecting…");
    waitTimer = setTimeout(() => { waitTimer = null; if (!pushed(hm.connection())) pollOnce(); }, POLL_AFTER_MS);
  }
});
// A reload of healthmon's config showed or hid a service: the server renders the rows.
hm.on("services", ({ added, removed }) => {
  if (added.some((n) => !states.has(n)) || removed.some((n) => states.has(n))) location.reload();
});
render();
watchMaintenance(boot.maintenance_next_ms);
hm.start();
