// What a row's buttons do: Save (with a fresh link when the page sat open), Copy link, Cancel, Retry (the new
// job takes the old one's row) and Delete (focus moves to a neighbour); ticking a row in Done. One click
// listener per list (rows.js gives each button its data-action).

import { t, tn } from "./i18n.js";
import { api } from "./api.js";
import { forgetJob, remember, update } from "./jobs.js";
import { renderBulk, renderLists } from "./lists.js";
import { watch } from "./live.js";
import { announce, announceJob, report, showError } from "./messages.js";
import { safeLink } from "./rows.js";
import { $, findJob, state } from "./state.js";
import { ENDED, hasFile, titleOf } from "./words.js";

const FRESH_LINK_MS = 60_000; // older than this, a file link is asked for again before it is used

async function cancel(id, control) {
  control.disabled = true;
  showError("");
  try {
    update(await api("DELETE", `/api/v1/jobs/${encodeURIComponent(id)}`));
  } catch (err) {
    report(err);
  } finally {
    control.disabled = false;
  }
}

// The retry takes the old job's place: the same row (so focus stays on it), now for the new job; the old
// one is gone from the history on the server too.
export function replaceJob(oldId, job) {
  const li = state.rows.get(oldId);
  if (li) {
    state.rows.delete(oldId);
    li.dataset.jobId = job.id;
    state.rows.set(job.id, li);
  }
  const at = state.done.ids.indexOf(oldId);
  forgetJob(oldId, false);
  const merged = remember(job);
  state.seqs.set(job.id, job.seq);
  // Done at once (the file was still stored): the row stays where it was.
  if (ENDED.has(merged.status) && at !== -1 && !state.done.ids.includes(job.id)) state.done.ids.splice(at, 0, job.id);
  announceJob(merged);
  return merged;
}

async function retry(id, control) {
  control.disabled = true;
  showError("");
  try {
    const job = replaceJob(id, await api("POST", `/api/v1/jobs/${encodeURIComponent(id)}/retry`));
    renderLists();
    watch(job.id);
    announce(t("Retrying {title}.", { title: titleOf(job) }));
    const row = state.rows.get(job.id);
    const next = row && firstControl(row);
    if (next) next.focus();
  } catch (err) {
    report(err);
  } finally {
    control.disabled = false;
  }
}

// A row's first visible action (Save, Cancel, Retry or its "…" menu), where focus can go.
function firstControl(row) {
  return row.querySelector(
    ":scope > .actions > a:not([hidden]), :scope > .actions > button:not([hidden]), :scope > .actions > details:not([hidden]) > summary",
  );
}

export function deleteQuestion(jobs) {
  if (jobs.length === 1) {
    const name = titleOf(jobs[0]);
    if (!hasFile(jobs[0])) return t("Delete “{name}” from your history?", { name });
    if (jobs[0].items) return t("Delete “{name}” from your history, and its files?", { name });
    return t("Delete “{name}” from your history, and its file?", { name });
  }
  const n = jobs.length;
  const files = jobs.filter(hasFile).length;
  if (!files) return tn("Delete {n} download from your history?", "Delete {n} downloads from your history?", n);
  if (files === n) return tn("Delete {n} download from your history, and its file?", "Delete {n} downloads from your history, and their files?", n);
  return tn("Delete {n} downloads from your history, and {files} file?", "Delete {n} downloads from your history, and {files} files?", files, { n, files });
}

async function remove(id, control) {
  const job = state.jobs.get(id);
  if (!job || !window.confirm(deleteQuestion([job]))) return;
  const name = titleOf(job);
  control.disabled = true;
  showError("");
  // Where focus goes once the row is gone: the next row, else the previous one, else Done's heading.
  const row = control.closest("li.job");
  const neighbour = row && (row.nextElementSibling || row.previousElementSibling);
  try {
    await api("DELETE", `/api/v1/history/${encodeURIComponent(id)}`);
    forgetJob(id);
    const target = neighbour && neighbour.isConnected ? firstControl(neighbour) : null;
    if (target) target.focus();
    else $("done-heading").focus();
    announce(`${name} deleted.`);
  } catch (err) {
    control.disabled = false;
    report(err);
  }
}

// A job's links expire: when its JSON is older than a minute, read it again first.
async function freshJob(id) {
  if (Date.now() - (state.fetchedAt.get(id) || 0) < FRESH_LINK_MS) return findJob(id);
  const job = await api("GET", `/api/v1/jobs/${encodeURIComponent(id)}`);
  update(job);
  return job;
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // No clipboard API (plain http on another host): the old way.
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "visually-hidden";
    document.body.append(area);
    area.select();
    let done = false;
    try {
      done = document.execCommand("copy");
    } catch {
      done = false;
    }
    area.remove();
    return done;
  }
}

async function copyLink(id, control) {
  showError("");
  try {
    const job = await freshJob(id);
    const href = job && job.file_url && safeLink(job.file_url);
    if (!href) {
      showError(t("This file is no longer available."));
      return;
    }
    if (await copyText(href)) {
      control.textContent = t("Copied");
      announce(t("Link copied. It works for a limited time; copy it again later for a fresh one."));
      setTimeout(() => {
        control.textContent = t("Copy link");
      }, 2000);
    } else {
      showError(t("This browser did not let the page copy: use Save, or copy the link from its menu."));
    }
  } catch (err) {
    report(err);
  }
}

async function followSave(event, link) {
  const id = link.closest("li.job").dataset.jobId;
  if (Date.now() - (state.fetchedAt.get(id) || 0) < FRESH_LINK_MS) return; // the link is fresh: follow it
  // The link may have expired while the page sat open: ask for a fresh one first.
  event.preventDefault();
  try {
    const job = await freshJob(id);
    const href = job && job.file_url && safeLink(job.file_url);
    if (href) location.assign(href);
    else showError(t("This file is no longer available."));
  } catch (err) {
    report(err);
  }
}

function onListClick(event) {
  const control = event.target.closest("[data-action]");
  if (!control) return;
  const row = control.closest("li.job");
  if (!row) return;
  const id = row.dataset.jobId;
  const action = control.dataset.action;
  if (action === "delete") control.closest("details.more").open = false;
  if (action === "save") followSave(event, control);
  else if (action === "copy") copyLink(id, control);
  else if (action === "cancel") cancel(id, control);
  else if (action === "retry") retry(id, control);
  else if (action === "delete") remove(id, control);
  else if (action === "pick") {
    if (control.checked) state.selected.add(id);
    else state.selected.delete(id);
    renderBulk();
  }
}

export function wireRows() {
  $("queue").addEventListener("click", onListClick);
  $("done").addEventListener("click", onListClick);
}
