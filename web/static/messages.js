// What the page says: one error line (a refusal in the API's own sentence), and what a screen reader reads
// out (status changes and each quarter of a download, not every progress tick).

import { t } from "./i18n.js";
import { ApiError } from "./api.js";
import { $, state } from "./state.js";
import { ENDED, statusSentence, titleOf } from "./words.js";

let unauthorized = () => {};

// `listener()` runs when a call is refused with 401 (the key is wrong or was revoked): app.js has key.js
// forget the key.
export function onUnauthorized(listener) {
  unauthorized = listener;
}

export function showError(message, network = false) {
  const box = $("error");
  box.textContent = message || "";
  box.hidden = !message;
  box.dataset.network = message && network ? "true" : "";
}

export function report(err) {
  if (err instanceof ApiError && err.status === 401) {
    // The key is wrong or was revoked: ask for it again, and keep the reason on screen.
    unauthorized();
  }
  if (err instanceof ApiError) showError(err.message, err.code === "network");
  else {
    showError(t("Something went wrong in this page. Reload it and try again."));
    console.error(err);
  }
}

let announceTimer = null;

export function announce(text) {
  const region = $("announcer");
  clearTimeout(announceTimer);
  region.textContent = "";
  // Emptied first, then set on the next tick, so the same words twice are read twice.
  announceTimer = setTimeout(() => {
    region.textContent = text;
  }, 50);
}

// Status changes and each quarter of the way are read out; not every progress tick.
export function announceJob(job) {
  const pct = job.progress && job.progress.percent;
  const quarter = job.status === "running" && pct != null && pct >= 25 && pct < 100 ? Math.floor(pct / 25) * 25 : null;
  const mark = quarter != null ? `${job.status}:${quarter}` : job.status;
  if (state.announced.get(job.id) === mark) return;
  const first = !state.announced.has(job.id);
  state.announced.set(job.id, mark);
  if (first && ENDED.has(job.status)) return; // known before this visit: nothing new to say
  announce(quarter != null ? `${titleOf(job)}: ${quarter}% downloaded.` : statusSentence(job));
}
