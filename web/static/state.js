// What the page knows, in one object every module reads and changes: the jobs of this key as last heard,
// their WebSockets and pending re-reads, the rows on screen, Done's pages and filters, ticked rows. Also the
// rules for merging a job's states (an ended item stays ended; a playlist sums its items up) and for which
// jobs Done shows.

import { ACTIVE, ENDED } from "./words.js";

export const $ = (id) => document.getElementById(id);

export const state = {
  jobs: new Map(), // id -> the newest JSON of a job you submitted (a playlist's items inside it)
  fetchedAt: new Map(), // id (also of items) -> when that JSON arrived (its links expire)
  seqs: new Map(), // id -> the seq to resume its WebSocket after
  sockets: new Map(), // id -> WebSocket
  attempts: new Map(), // id -> reconnects since its socket last brought a message
  timers: new Map(), // id -> pending re-read
  stale: new Set(), // ids whose state could not be read since their socket closed
  lost: false, // mediabot did not answer the last call
  probe: null, // pending check whether mediabot answers again, when no job is being read again
  rows: new Map(), // id -> <li>, in the Queue or in Done (a row moves between them)
  done: { ids: [], cursor: null, loaded: false, request: 0, filters: { q: "", status: "", kind: "" } },
  selected: new Set(), // ids ticked in Done
  busy: false, // a bulk action runs
  formats: null, // {url, data} from /api/v1/formats for the one link in the box
  announced: new Map(), // id -> the last status/milestone read out
};

// ---- kept in this browser -------------------------------------------------------------------------------

export function stored(name) {
  try {
    return localStorage.getItem(name);
  } catch {
    return null; // storage disabled: nothing kept from an earlier visit
  }
}

export function store(name, value) {
  try {
    localStorage.setItem(name, value);
  } catch {
    // storage disabled: kept for this visit only
  }
}

// ---- jobs and playlists --------------------------------------------------------------------------------

// Whether item state `a` is newer than `b`: an ended item stays ended, otherwise the larger seq wins.
export function newer(a, b) {
  if (ENDED.has(b.status)) return false;
  return ENDED.has(a.status) || a.seq > b.seq;
}

// The playlist's status and progress from its items, as the server sums them (between its own messages,
// only the items' messages arrive): running while any item is active; then done if any is done, else
// failed if any failed, else cancelled.
export function summed(job) {
  if (!job.items || !job.items.length) return job;
  const statuses = job.items.map((item) => item.status);
  let status = "cancelled";
  if (statuses.some((s) => ACTIVE.has(s))) status = "running";
  else if (statuses.includes("done")) status = "done";
  else if (statuses.includes("failed")) status = "failed";
  const total = job.items.reduce((sum, item) => sum + (ENDED.has(item.status) ? 100 : (item.progress && item.progress.percent) || 0), 0);
  return { ...job, status, progress: { ...job.progress, percent: total / job.items.length } };
}

// A playlist's new state, keeping any item state already newer than the one it brings.
export function withItems(job, known) {
  if (!job.items || !known || !known.items) return job;
  const old = new Map(known.items.map((item) => [item.id, item]));
  const items = job.items.map((item) => (old.has(item.id) && !newer(item, old.get(item.id)) ? old.get(item.id) : item));
  return summed({ ...job, items });
}

export function findJob(id) {
  if (state.jobs.has(id)) return state.jobs.get(id);
  for (const job of state.jobs.values()) {
    const item = (job.items || []).find((entry) => entry.id === id);
    if (item) return item;
  }
  return null;
}

// ---- Done's membership ---------------------------------------------------------------------------------

function matches(job) {
  const { q, status, kind } = state.done.filters;
  if (status && !status.split(",").includes(job.status)) return false;
  if (kind && job.kind !== kind) return false;
  if (q) {
    const needle = q.toLowerCase();
    return (job.title || "").toLowerCase().includes(needle) || job.url.toLowerCase().includes(needle);
  }
  return true;
}

// A job that ended in this visit joins Done, in its place by age (newest first, as the API lists them),
// when Done would show it; one older than every row shown while more pages remain is left to those pages.
export function addToDone(job) {
  const done = state.done;
  if (!done.loaded || done.ids.includes(job.id) || !matches(job)) return;
  const at = done.ids.findIndex((id) => {
    const shown = state.jobs.get(id);
    return shown && shown.created_at < job.created_at;
  });
  if (at === -1 && done.cursor) return;
  done.ids.splice(at === -1 ? done.ids.length : at, 0, job.id);
}
