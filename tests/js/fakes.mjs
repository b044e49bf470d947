// Test doubles for static/client.js: a clock whose timers run only when the
// test advances it, and WebSocket, EventSource and fetch the test drives.

export class Clock {
  constructor(start = 1_000_000) {
    this.t = start;
    this.timers = new Map();
    this.nextId = 1;
  }
  now = () => this.t;
  setTimeout = (fn, ms) => {
    const id = this.nextId++;
    this.timers.set(id, { at: this.t + Math.max(0, ms || 0), fn });
    return id;
  };
  clearTimeout = (id) => { this.timers.delete(id); };
  /** Run every timer due within `ms`, in order, letting promises settle between them. */
  async advance(ms) {
    const end = this.t + ms;
    for (;;) {
      let next = null;
      for (const [id, timer] of this.timers) {
        if (timer.at <= end && (next === null || timer.at < next[1].at)) next = [id, timer];
      }
      if (next === null) break;
      this.timers.delete(next[0]);
      this.t = Math.max(this.t, next[1].at);
      next[1].fn();
      await settle();
    }
    this.t = end;
    await settle();
  }
}

/** Let pending promise callbacks (fetch answers, ready) run. */
export async function settle() {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

export function fakeWebSocket() {
  const sockets = [];
  class FakeWebSocket {
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.closedWith = null;
      sockets.push(this);
    }
    /** The server sends `msg` (an object). */
    receive(msg) {
      this.readyState = 1;
      this.onmessage && this.onmessage({ data: JSON.stringify(msg) });
    }
    /** The server (or the network) closes the socket. */
    serverClose(code) {
      this.readyState = 3;
      this.onclose && this.onclose({ code });
    }
    close(code) {
      this.readyState = 3;
      this.closedWith = code || 1000;
    }
  }
  return { FakeWebSocket, sockets };
}

export function fakeEventSource() {
  const sources = [];
  class FakeEventSource {
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.listeners = {};
      this.closed = false;
      sources.push(this);
    }
    addEventListener(type, fn) { (this.listeners[type] ||= []).push(fn); }
    /** The server sends an `event: type` with `data: msg`. */
    receive(type, msg) {
      this.readyState = 1;
      (this.listeners[type] || []).forEach((fn) => fn({ data: JSON.stringify(msg) }));
    }
    /** The stream fails; `closed` as for an HTTP error (EventSource gives up). */
    fail(closed) {
      this.readyState = closed ? 2 : 0;
      this.onerror && this.onerror({});
    }
    close() { this.readyState = 2; this.closed = true; }
  }
  return { FakeEventSource, sources };
}

/**
 * fetch answering from `routes` (url -> {status, body} or a function of the url); records every
 * call. A route with `cors: false` answers as a service without CORS headers does: a read fails
 * as a refused connection would, and a "no-cors" request gets an opaque answer.
 */
export function fakeFetch(routes) {
  const calls = [];
  function fetch(url, init = {}) {
    const href = String(url);
    calls.push(href);
    let answer = routes[href];
    if (typeof answer === "function") answer = answer(href);
    if (!answer) return Promise.reject(new TypeError("Failed to fetch"));
    if (init.mode === "no-cors") {
      return Promise.resolve({ type: "opaque", ok: false, status: 0, text: () => Promise.resolve("") });
    }
    if (answer.cors === false) return Promise.reject(new TypeError("Failed to fetch"));
    const text = typeof answer.body === "string" ? answer.body : JSON.stringify(answer.body ?? "");
    return Promise.resolve({
      ok: answer.status >= 200 && answer.status < 300,
      status: answer.status,
      text: () => Promise.resolve(text),
      json: () => Promise.resolve(JSON.parse(text)),
    });
  }
  return { fetch, calls };
}

export const BASE = "http://hm.test:4000/";

/** Snapshot services: name -> entry, every one up and fresh unless overridden. */
export function snapshotServices(overrides = {}) {
  const names = ["auth", "billing", "db"];
  const out = {};
  names.forEach((name, i) => {
    out[name] = {
      status: "up", up: true, reason: null, since: 1000, latency_ms: 2, checks: [],
      stale: false, age_ms: 0, stale_after_ms: 3000, depends_on: name === "billing" ? ["db"] : [],
      blocked_by: [], url: `http://svc.test:${3001 + i}`, health_url: `http://svc.test:${3001 + i}/health`,
      data_url: `http://svc.test:${3001 + i}/data`, data_endpoint: "/data", health_path: "/health",
      ...(overrides[name] || {}),
    };
  });
  return out;
}

export function snapshot(stream, seq, overrides, monitorAlive = true) {
  return {
    type: "initialSnapshot", stream, seq, monitor: { alive: monitorAlive },
    data: {}, services: snapshotServices(overrides), config_error: null,
  };
}

export function update(stream, seq, service, status, extra = {}) {
  return {
    type: "statusUpdate", stream, seq,
    data: { service, up: status !== "down", status, reason: status === "up" ? null : `${service} is ${status}`,
      since: 2000 + seq, stale: false, age_ms: 0, checks: [], ...extra },
  };
}

export function heartbeat(alive = true, extra = {}) {
  return { type: "heartbeat", monitor: { alive }, latency: {}, ages: { auth: 0, billing: 0, db: 0 }, stale: [], ...extra };
}
