// Loading the lists: the Queue and Done's first page at once, then Done page by page, searched by title or
// link and filtered by status and kind (a filter changed meanwhile makes an older answer moot).

import { loadAdmin } from "./admin.js";
import { t } from "./i18n.js";
import { api } from "./api.js";
import { remember } from "./jobs.js";
import { renderDoneStatus, renderLists } from "./lists.js";
import { watch } from "./live.js";
import { announceJob, report } from "./messages.js";
import { $, state } from "./state.js";
import { loadSubscriptions } from "./subscriptions.js";

const DONE_PAGE = 50;
const QUEUE_LIMIT = 100;
const SEARCH_DELAY_MS = 300;
export const ENDED_FILTER = "done,failed,cancelled";

export async function loadAll() {
  // Both asked at once: Done's first page does not wait for the queue.
  const [active] = await Promise.all([
    api("GET", `/api/v1/jobs?status=queued,running&limit=${QUEUE_LIMIT}`),
    loadDone(false),
    loadSubscriptions(),
    loadAdmin(),
  ]);
  for (const job of active.items) announceJob(remember(job));
  renderLists();
  for (const job of active.items) watch(job.id);
}

export function listQuery({ status, kind, q }, limit, cursor) {
  const params = new URLSearchParams({ limit: String(limit), status: status || ENDED_FILTER });
  if (kind) params.set("kind", kind);
  if (q) params.set("q", q);
  if (cursor) params.set("cursor", cursor);
  return `/api/v1/jobs?${params}`;
}

// The first page of Done (more = false) or the next one; a filter changed meanwhile makes an answer moot.
async function loadDone(more) {
  const done = state.done;
  const request = ++done.request;
  const button = $("load-more");
  $("history-status").textContent = t("Loading…");
  $("done").setAttribute("aria-busy", "true");
  if (more) button.disabled = true;
  try {
    const page = await api("GET", listQuery(done.filters, DONE_PAGE, more ? done.cursor : null));
    if (request !== done.request) return;
    const ids = more ? [...done.ids] : [];
    for (const job of page.items) {
      const merged = remember(job);
      announceJob(merged);
      if (!ids.includes(merged.id)) ids.push(merged.id);
    }
    done.ids = ids;
    done.cursor = page.next_cursor;
    done.loaded = true;
    if (!more) state.selected.clear();
    renderLists();
  } finally {
    if (request === done.request) {
      $("done").removeAttribute("aria-busy");
      button.disabled = false;
      renderDoneStatus();
    }
  }
}

async function reloadDone() {
  try {
    await loadDone(false);
  } catch (err) {
    report(err);
  }
}

function readFilters() {
  state.done.filters = {
    q: $("search-input").value.trim(),
    status: $("status-filter").value,
    kind: $("kind-filter").value,
  };
}

export function wireHistory() {
  // Both lists: a download started elsewhere (another tab, the API) joins the Queue too.
  $("refresh").addEventListener("click", () => loadAll().catch(report));
  $("load-more").addEventListener("click", async () => {
    try {
      await loadDone(true);
    } catch (err) {
      report(err);
    }
  });
  let searchTimer = null;
  $("history-form").addEventListener("submit", (event) => {
    event.preventDefault();
    clearTimeout(searchTimer);
    readFilters();
    reloadDone();
  });
  $("search-input").addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      readFilters();
      reloadDone();
    }, SEARCH_DELAY_MS);
  });
  for (const id of ["status-filter", "kind-filter"]) {
    $(id).addEventListener("change", () => {
      readFilters();
      reloadDone();
    });
  }
  // The browser may restore the form after a reload: Done follows what it restored.
  readFilters();
}
