// The event log: status changes only, newest first, capped, each with time,
// service, from → to, source (push or poll) and reason.

import { SHAPES, stamp } from "./format.js";
import { LOG_CAP, store } from "./store.js";

function statusWord(status) {
  const span = document.createElement("span");
  span.className = "status-word";
  span.setAttribute("data-status", status);
  span.textContent = SHAPES[status] + " " + status;
  return span;
}

function logItem(e) {
  const li = document.createElement("li");
  li.className = "event";
  li.setAttribute("data-seq", String(e.seq));
  li.setAttribute("data-key", e.seq + ":" + e.rev);
  li.setAttribute("data-service", e.service);
  li.setAttribute("data-from", e.from);
  li.setAttribute("data-to", e.to);
  li.setAttribute("data-source", e.source);
  const time = document.createElement("time");
  time.dateTime = new Date(e.ts).toISOString();
  time.textContent = stamp(e.ts, Date.now());
  const name = document.createElement("strong");
  name.textContent = e.service;
  const change = document.createElement("span");
  change.className = "change";
  change.append(statusWord(e.from), " → ", statusWord(e.to));
  const source = document.createElement("span");
  source.className = "source source-" + e.source;
  source.textContent = e.source;
  li.append(time, " ", name, " ", change, " ", source);
  if (e.reason) {
    const reason = document.createElement("span");
    reason.className = "event-reason";
    reason.textContent = e.reason;
    li.append(" ", reason);
  }
  return li;
}

export function renderLog() {
  const list = document.getElementById("event-log");
  document.getElementById("log-empty").hidden = store.log.length > 0;
  const want = store.log.map((e) => e.seq + ":" + e.rev);
  const have = Array.from(list.children, (li) => li.getAttribute("data-key"));
  if (want.join(",") === have.join(",")) return;
  // Usually only new entries on top: add those. Otherwise (entries the
  // server sent that belong further down) draw the list again.
  const fresh = want.length - have.length;
  if (fresh > 0 && want.slice(fresh).join(",") === have.join(",")) {
    for (let i = fresh - 1; i >= 0; i--) list.insertBefore(logItem(store.log[i]), list.firstChild);
  } else {
    list.replaceChildren(...store.log.map(logItem));
  }
  while (list.children.length > LOG_CAP) list.removeChild(list.lastChild);
}
