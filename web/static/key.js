// The API key: kept in this browser (localStorage) once a first read proved it, forgotten on request or when
// mediabot refuses it; without one, only the key form shows.

import { t } from "./i18n.js";
import { hasKey, isKeyShaped, setKey } from "./api.js";
import { loadAll } from "./history.js";
import { renderLists } from "./lists.js";
import { report, showError } from "./messages.js";
import { $, state, store, stored } from "./state.js";

const KEY_STORAGE = "mediabot.apiKey";

function showKeyState() {
  const saved = hasKey();
  $("key-section").hidden = saved;
  $("key-saved").hidden = !saved;
  $("workspace").hidden = !saved;
}

export function forgetKey() {
  setKey(null);
  try {
    localStorage.removeItem(KEY_STORAGE);
  } catch {
    // nothing stored
  }
  for (const timer of state.timers.values()) clearTimeout(timer);
  state.timers.clear();
  for (const ws of state.sockets.values()) ws.close(1000, "key forgotten");
  state.sockets.clear();
  state.jobs.clear();
  state.seqs.clear();
  state.stale.clear();
  state.selected.clear();
  state.done.ids = [];
  state.done.cursor = null;
  state.done.loaded = false;
  renderLists();
  showKeyState();
}

async function saveKey(event) {
  event.preventDefault();
  const input = $("key-input");
  const value = input.value.trim();
  if (!value) {
    showError(t("Paste your API key first."));
    input.focus();
    return;
  }
  if (!isKeyShaped(value)) {
    showError(t("That is not an API key: a key starts with mb_ followed by about 43 letters, digits, - or _. Paste it again."));
    input.focus();
    return;
  }
  setKey(value);
  $("key-save").disabled = true;
  try {
    await loadAll(); // proves the key before it is kept
  } catch (err) {
    setKey(null);
    report(err);
    input.focus();
    return;
  } finally {
    $("key-save").disabled = false;
  }
  store(KEY_STORAGE, value);
  input.value = "";
  showError("");
  showKeyState();
  $("url-input").focus();
}

// The key kept from an earlier visit, if it still looks like one.
export function restoreKey() {
  const key = stored(KEY_STORAGE);
  setKey(key && isKeyShaped(key) ? key : null);
  showKeyState();
}

export function wireKey() {
  $("key-form").addEventListener("submit", saveKey);
  $("key-forget").addEventListener("click", () => {
    forgetKey();
    showError("");
    $("key-input").focus();
  });
}
