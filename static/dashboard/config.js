// The server's configuration as the page shows it: the file it runs from,
// the error of a save it refused (the banner) and the saved keys that wait
// for a restart (a quiet notice under it). From the first document, every
// snapshot, GET /api/services, and the configError / restartNeeded messages.

import { $, announce, setText } from "./format.js";
import { store } from "./store.js";

let pushes = 0; // config states pushed so far (snapshots, configError, restartNeeded)

/** A push said the config state: any document asked for before it is older. */
export function notePush() { pushes += 1; }

/** Taken when asking for a document; the same on arrival when no push overtook it. */
export function pushMark() { return pushes; }

/** The file's name as messages say it: the server's own, else a plain phrase. */
export function configName(capital = false) {
  if (store.configFile) return store.configFile;
  return capital ? "The configuration" : "the configuration";
}

/** The server's config_file (a string, or null when it runs from none). */
export function setConfigFile(value) {
  store.configFile = typeof value === "string" && value ? value : null;
}

/** A refused save's error (announced), or null once a save is applied. */
export function setConfigError(error, quiet = false) {
  const value = typeof error === "string" && error ? error : null;
  if (value === store.configError) return;
  store.configError = value;
  if (!quiet) announce(value ? configName(true) + " not applied: " + value : configName(true) + " applied.");
}

/** Saved keys ("section.key", sorted) the running server takes only at its next start. */
export function setRestartNeeded(keys, quiet = false) {
  const list = Array.isArray(keys) ? keys.filter((k) => typeof k === "string" && k).slice().sort() : [];
  if (list.join(",") === store.restartNeeded.join(",")) return;
  store.restartNeeded = list;
  if (!quiet && list.length) announce(restartText());
}

function restartText() {
  return "Saved in " + configName() + ", waiting for a restart: " + store.restartNeeded.join(", ");
}

/** The banner and the notice, from the store. */
export function renderConfig() {
  const banner = document.getElementById("config-banner");
  banner.hidden = !store.configError;
  setText($(banner, "[data-role=config-file]"), configName(true));
  setText($(banner, "[data-role=config-error-text]"), store.configError || "");
  const notice = document.getElementById("restart-notice");
  notice.hidden = store.restartNeeded.length === 0;
  setText($(notice, "[data-role=restart-text]"), store.restartNeeded.length ? restartText() : "");
}
