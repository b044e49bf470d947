// static/client.d.ts declares what static/client.js exports, and the client's methods.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import * as client from "../../static/client.js";

const dts = readFileSync(new URL("../../static/client.js".replace(".js", ".d.ts"), import.meta.url), "utf8");

test("every export of client.js is declared in client.d.ts", () => {
  for (const name of Object.keys(client)) {
    assert.match(dts, new RegExp(`export (const|function) ${name}\\b`), name);
  }
});

test("every method of a client is declared on HealthClient", () => {
  const hm = client.createClient("http://hm.test/", { bind: false, transports: [] });
  const body = dts.slice(dts.indexOf("export interface HealthClient"), dts.indexOf("export const VERSION"));
  for (const name of Object.keys(hm).filter((k) => !k.startsWith("_"))) {
    assert.match(body, new RegExp(`\\b${name}[(?:<]`), name);
  }
});
