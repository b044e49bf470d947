// TypeScript declarations for healthmon's client module (client.js), for
// editors. Served at /client.d.ts beside /client.js; see docs/client.md.

/** A service's status as healthmon shows it. */
export type Status = "up" | "degraded" | "down" | "unknown";

/** Where the client's state comes from now. */
export type Transport = "websocket" | "sse" | "polling" | "connecting";

/** Who said what a service's status is. */
export type Source = "websocket" | "sse" | "polling" | "bootstrap" | null;

/** A transitive dependency that is down, or whose state is stale or not known. */
export interface Blocker {
  service: string;
  status: "down" | "stale" | "unknown";
}

/** `hm.status(name)`. */
export interface ServiceStatus {
  status: Status;
  /** up or degraded (the original wire format's boolean). */
  up: boolean;
  /** The status is the last known one: no check recent enough backs it. */
  stale: boolean;
  reason: string | null;
  /**
   * Why this page cannot check the service itself (it answers, but its health
   * answer does not allow this page's origin: no CORS), or null. Such a
   * service is not polled: it keeps its last known status (stale) or stays
   * unknown, never shown down for it.
   */
  unreadable: string | null;
  /** Epoch ms: when the current status began. */
  since: number | null;
  source: Source;
  dependsOn: string[];
  blockedBy: Blocker[];
}

export interface FailingCheck {
  name: string;
  status: string;
  output?: string | null;
  observed?: string | null;
}

/** `hm.service(name)`: everything the client knows about one service. */
export interface ServiceInfo {
  name: string;
  url: string | null;
  healthUrl: string | null;
  dataUrl: string | null;
  dataEndpoint: string;
  mock: boolean | null;
  mode: string | null | undefined;
  dependsOn: string[];
  status: Status;
  reason: string | null;
  since: number | null;
  checks: FailingCheck[];
  latencyMs: number | null;
  source: Source;
  stale: boolean;
  /** The server said this service is stale (it may be fresh by this page's own check). */
  serverStale: boolean;
  staleAfterMs: number;
  /** This page's clock: when the latest check it knows of was made. */
  checkedAt: number | null;
  blockedBy: Blocker[];
  /** See ServiceStatus.unreadable. */
  unreadable: string | null;
}

export interface Connection {
  transport: Transport;
  /** The push channel open now, even while polling because the monitor is silent. */
  channel: "websocket" | "sse" | null;
  /** Why the client is not live, in words ("" when live). */
  reason: string;
  monitorAlive: boolean | null;
  /** Epoch ms of the next attempt at a better transport, or null. */
  retryAt: number | null;
  /** Epoch ms of the latest poll answer, or null. */
  lastPollAt: number | null;
}

export interface GateOptions {
  /** Services the feature needs: an array, or names separated by spaces or commas. */
  requires: string[] | string;
  /** "up-or-degraded" (the default) or "up" (degraded blocks too). */
  allow?: "up" | "up-or-degraded";
  /**
   * When a required service's state is not known (healthmon unreachable, no
   * check yet, stale): "disable" (fail closed, the default), "enable" (fail
   * open), or "last-known" (a stale service gates by its last known status).
   */
  whenUnknown?: "disable" | "enable" | "last-known";
  /** false: no reason element nor title (the app shows the verdict itself). */
  reason?: boolean;
  /** Called after every new verdict. */
  onVerdict?: (verdict: Verdict, element: Element) => void;
}

export interface Verdict {
  allowed: boolean;
  cause: null | "down" | "degraded" | "dependency" | "unknown";
  /** Why it is not allowed, in words ("billing depends on db, which is down"). */
  reason: string | null;
  /** Allowed, but worth saying (degraded, or unknown and failing open). */
  warning: string | null;
}

export interface Gate {
  readonly element: Element;
  verdict(): Verdict | null;
  update(options: GateOptions): void;
  /** Stop gating: the element is as it was before. */
  release(): void;
}

export interface ChangeEvent {
  name: string;
  previous: ServiceStatus;
  current: ServiceStatus;
}

export interface ServicesEvent {
  names: string[];
  added: string[];
  removed: string[];
}

export interface MessageEvent {
  /** The server's message as sent (initialSnapshot, statusUpdate, heartbeat, welcome, configError, restartNeeded, historyState). */
  message: { type: string; [key: string]: unknown };
  via: "websocket" | "sse";
  at: number;
}

export interface Events {
  change: ChangeEvent;
  connection: Connection;
  services: ServicesEvent;
  message: MessageEvent;
  update: { at: number };
}

/** A service entry as GET /api/services (or a snapshot) has it: the first state, with no request. */
export interface ServiceEntry {
  name: string;
  [key: string]: unknown;
}

export interface Options {
  /** Best first; leave one out to never use it. Default: all three. */
  transports?: Array<"websocket" | "sse" | "polling">;
  silenceMs?: number;
  openTimeoutMs?: number;
  pollEveryMs?: number;
  pollTimeoutMs?: number;
  backoffBaseMs?: number;
  backoffCapMs?: number;
  tickMs?: number;
  connectTimeoutMs?: number;
  intervalMs?: number;
  timeoutMs?: number;
  /** Gate [data-hm-requires] elements (and fill [data-hm-status], [data-hm-connection]) automatically. */
  bind?: boolean;
  /** Where to look for data-hm-* elements (default: document). */
  root?: Document | Element;
  services?: ServiceEntry[];
  // Seams, for tests and unusual environments.
  WebSocket?: typeof WebSocket;
  EventSource?: typeof EventSource;
  fetch?: typeof fetch;
  now?: () => number;
  setTimeout?: (fn: () => void, ms: number) => unknown;
  clearTimeout?: (id: unknown) => void;
  random?: () => number;
}

export interface HealthClient {
  /** Resolves once the first state is known (or after connectTimeoutMs). */
  readonly ready: Promise<HealthClient>;
  readonly baseUrl: string;
  start(): HealthClient;
  status(name: string): ServiceStatus;
  service(name: string): ServiceInfo | null;
  names(): string[];
  connection(): Connection;
  configError(): string | null;
  monitor(): { alive: boolean | null; [key: string]: unknown };
  /** "stream:seq" of the last numbered message applied, or null. */
  position(): string | null;
  /** Subscribe; returns the function that unsubscribes. */
  on<K extends keyof Events>(type: K, fn: (event: Events[K]) => void): () => void;
  verdict(options: GateOptions): Verdict;
  gate(element: Element, options: GateOptions): Gate;
  bind(root?: Document | Element): void;
  /** GET /api/services; with statuses, applies them while live. */
  refresh(options?: { statuses?: boolean }): Promise<{ services: ServiceEntry[]; [key: string]: unknown }>;
  backoffDelay(attempt: number): number;
  close(): void;
}

export const VERSION: string;
export const DEFAULTS: Readonly<Required<Pick<Options,
  "transports" | "silenceMs" | "openTimeoutMs" | "pollEveryMs" | "pollTimeoutMs" | "backoffBaseMs" |
  "backoffCapMs" | "tickMs" | "connectTimeoutMs" | "intervalMs" | "timeoutMs" | "bind">>>;

export function connect(baseUrl?: string | URL, options?: Options): Promise<HealthClient>;
export function createClient(baseUrl?: string | URL, options?: Options): HealthClient;
export function backoffDelay(attempt: number, baseMs?: number, capMs?: number, random?: () => number): number;
export function classifyHealth(httpStatus: number, text: string): { status: Status; reason: string | null; checks: FailingCheck[] };
export function describeFailure(err: unknown, timeoutMs: number): string;

declare global {
  interface Window {
    /** Set by <script type="module" src=".../client.js" data-hm-connect>. */
    hm?: HealthClient;
  }
  interface DocumentEventMap {
    "hm-ready": CustomEvent<HealthClient>;
  }
  interface HTMLElementEventMap {
    "hm-gate": CustomEvent<Verdict>;
    "hm-blocked": CustomEvent<Verdict>;
  }
}
