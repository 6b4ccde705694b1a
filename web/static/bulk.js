// Several at once, in Done: delete the ticked rows, retry every failed download, or clear every finished one
// matching the search (beyond the pages shown: the newest 1,000). Each stops at the first refusal and says
// how far it got.

import { t } from "./i18n.js";
import { ApiError, api } from "./api.js";
import { deleteQuestion, replaceJob } from "./actions.js";
import { ENDED_FILTER, listQuery } from "./history.js";
import { forgetJob } from "./jobs.js";
import { doneJobs, renderLists } from "./lists.js";
import { watch } from "./live.js";
import { announce, report, showError } from "./messages.js";
import { $, state } from "./state.js";

const BULK_PAGE = 100;
const BULK_PAGES = 10; // bulk actions reach the newest 1,000 matching jobs

// Every job of this key matching Done's search and kind (and `status`), newest first, beyond the pages shown.
async function allMatching(status) {
  const { q, kind } = state.done.filters;
  const found = [];
  let cursor = null;
  for (let page = 0; page < BULK_PAGES; page += 1) {
    const answer = await api("GET", listQuery({ status, kind, q }, BULK_PAGE, cursor));
    found.push(...answer.items);
    cursor = answer.next_cursor;
    if (!cursor) break;
  }
  return found;
}

// Runs `act` on each job in turn; stops at the first refusal, which is shown with how far it got.
async function eachOf(jobs, act, doneWords) {
  let count = 0;
  try {
    for (const job of jobs) {
      await act(job);
      count += 1;
    }
  } catch (err) {
    report(err);
    const error = err instanceof ApiError ? err.message : t("something went wrong.");
    if (count) showError(t("{done}, then: {error}", { done: doneWords(count), error }), err.code === "network");
  }
  return count;
}

async function bulk(button, work) {
  if (state.busy) return;
  state.busy = true;
  const label = button.textContent;
  for (const control of document.querySelectorAll("#bulk button")) control.disabled = true;
  showError("");
  try {
    await work();
  } catch (err) {
    report(err);
  } finally {
    state.busy = false;
    button.textContent = label;
    renderLists();
  }
}

function deleteJobs(jobs) {
  return eachOf(
    jobs,
    async (job) => {
      await api("DELETE", `/api/v1/history/${encodeURIComponent(job.id)}`);
      forgetJob(job.id);
    },
    (n) => t("{n} deleted", { n }),
  );
}

function deleteSelected(event) {
  const button = event.currentTarget;
  bulk(button, async () => {
    const jobs = doneJobs().filter((job) => state.selected.has(job.id));
    if (!jobs.length || !window.confirm(deleteQuestion(jobs))) return;
    button.textContent = t("Deleting…");
    const count = await deleteJobs(jobs);
    if (count) announce(`${count} deleted.`);
    $("done-heading").focus();
  });
}

function clearFinished(event) {
  const button = event.currentTarget;
  bulk(button, async () => {
    const jobs = await allMatching(state.done.filters.status || ENDED_FILTER);
    if (!jobs.length) {
      announce(t("Nothing finished to clear."));
      return;
    }
    if (!window.confirm(deleteQuestion(jobs).replace(/^Delete (\d+) downloads/, "Clear all $1 finished downloads"))) return;
    button.textContent = t("Clearing…");
    const count = await deleteJobs(jobs);
    if (count) announce(`${count} cleared.`);
    $("done-heading").focus();
  });
}

function retryFailed(event) {
  const button = event.currentTarget;
  bulk(button, async () => {
    const jobs = await allMatching("failed");
    if (!jobs.length) {
      announce(t("Nothing failed: nothing to retry."));
      $("history-status").hidden = false;
      $("history-status").textContent = t("Nothing failed: nothing to retry.");
      return;
    }
    button.textContent = t("Retrying…");
    const started = [];
    const count = await eachOf(
      jobs,
      async (job) => {
        started.push(replaceJob(job.id, await api("POST", `/api/v1/jobs/${encodeURIComponent(job.id)}/retry`)));
      },
      (n) => t("{n} of {total} started again", { n, total: jobs.length }),
    );
    renderLists();
    for (const job of started) watch(job.id);
    if (count) announce(`${count} started again.`);
  });
}

function selectAll(event) {
  for (const job of doneJobs()) {
    if (event.target.checked) state.selected.add(job.id);
    else state.selected.delete(job.id);
  }
  renderLists();
}

export function wireBulk() {
  $("select-all").addEventListener("change", selectAll);
  $("delete-selected").addEventListener("click", deleteSelected);
  $("retry-failed").addEventListener("click", retryFailed);
  $("clear-finished").addEventListener("click", clearFinished);
}
