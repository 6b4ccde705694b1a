// The two lists on screen, the Queue (queued and running) and Done (finished, failed or cancelled; a job is
// in one of them): which jobs each shows, their rows kept in place (rows.js fills them), the bulk bar's
// state and Done's status line. Rendering only: nothing here calls the API.

import { fillRow, syncRows } from "./rows.js";
import { $, state } from "./state.js";
import { ACTIVE, ENDED } from "./words.js";
import { t } from "./i18n.js";

function newestFirst(a, b) {
  return a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : 0;
}

function queueJobs() {
  return [...state.jobs.values()].filter((job) => ACTIVE.has(job.status)).sort(newestFirst);
}

export function doneJobs() {
  return state.done.ids.map((id) => state.jobs.get(id)).filter((job) => job && ENDED.has(job.status));
}

function rowOptions(job) {
  return { selected: state.selected.has(job.id), stale: state.stale.has(job.id) };
}

export function renderLists() {
  const queue = queueJobs();
  const done = doneJobs();
  const shown = new Set([...queue, ...done].map((job) => job.id));
  for (const [id, li] of state.rows) {
    if (!shown.has(id)) {
      li.remove();
      state.rows.delete(id);
    }
  }
  for (const id of state.selected) if (!shown.has(id)) state.selected.delete(id);
  syncRows($("queue"), queue, state.rows, "top", rowOptions, false);
  syncRows($("done"), done, state.rows, "top", rowOptions, false);
  $("queue-empty").hidden = queue.length > 0;
  $("queue-count").textContent = queue.length ? `(${queue.length})` : "";
  renderBulk();
  if (state.done.loaded) renderDoneStatus();
}

// Fills the job's row, or places it anew when it belongs in the other list now.
export function renderJob(id) {
  const job = state.jobs.get(id);
  const li = state.rows.get(id);
  if (!job) return;
  const home = ACTIVE.has(job.status) ? "queue" : state.done.ids.includes(id) ? "done" : null;
  if (!li || !li.parentNode || li.parentNode.id !== home) {
    renderLists();
    return;
  }
  fillRow(li, job, rowOptions(job));
}

export function renderBulk() {
  const done = doneJobs();
  $("bulk").hidden = !done.length;
  const picked = done.filter((job) => state.selected.has(job.id)).length;
  const all = $("select-all");
  all.checked = picked > 0 && picked === done.length;
  all.indeterminate = picked > 0 && picked < done.length;
  all.disabled = state.busy;
  const button = $("delete-selected");
  button.disabled = state.busy || !picked;
  if (!state.busy) button.textContent = picked ? t("Delete selected ({n})", { n: picked }) : t("Delete selected");
  $("retry-failed").disabled = state.busy;
  $("clear-finished").disabled = state.busy;
}

export function renderDoneStatus() {
  const { ids, cursor, loaded, filters } = state.done;
  const filtered = Boolean(filters.q || filters.status || filters.kind);
  const shown = doneJobs().length;
  let words = "";
  if (loaded && !shown) words = cursor ? t("None of these so far: load more to look further back.") : filtered ? t("Nothing matches.") : t("Nothing yet.");
  else if (loaded && (cursor || ids.length > 5)) words = `${shown} shown${cursor ? "" : ", that is all"}.`;
  $("history-status").textContent = words;
  $("history-status").hidden = !words;
  $("load-more").hidden = !cursor;
}
