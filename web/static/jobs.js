// A job's new state as it arrives (a list read, a WebSocket message, an action's answer): remembered, its
// row updated (moved to Done when it ended), read out when its status changed; and a job forgotten.

import { renderJob, renderLists } from "./lists.js";
import { announceJob } from "./messages.js";
import { addToDone, newer, state, summed, withItems } from "./state.js";
import { ACTIVE, ENDED } from "./words.js";

// `fresh`: read from the server just now (a GET), so it is the truth even when it goes back to queued (a
// restarted server hands running downloads back to the queue).
export function remember(job, fresh = false) {
  if (job.parent_id) {
    updateItem(job.parent_id, job); // an item read on its own (for a fresh link): it lives in its playlist
    return job;
  }
  const known = state.jobs.get(job.id);
  // A late snapshot (a list read racing the WebSocket) never takes a finished job back to running.
  if (!fresh && known && ENDED.has(known.status) && ACTIVE.has(job.status)) return known;
  const merged = fresh ? job : withItems(job, known);
  state.jobs.set(job.id, merged);
  const now = Date.now();
  state.fetchedAt.set(job.id, now);
  for (const item of job.items || []) state.fetchedAt.set(item.id, now);
  return merged;
}

export function updateItem(parentId, item) {
  const parent = state.jobs.get(parentId);
  if (!parent || !parent.items || !parent.items.some((known) => known.id === item.id)) return;
  const items = parent.items.map((known) => (known.id === item.id && newer(item, known) ? item : known));
  state.jobs.set(parentId, summed({ ...parent, items }));
  state.fetchedAt.set(item.id, Date.now());
  renderJob(parentId);
}

// A job's new state: remembered, its row updated (moved to Done when it ended), read out when its status
// changed.
export function update(job, fresh = false) {
  const merged = remember(job, fresh);
  if (job.parent_id) return;
  if (ENDED.has(merged.status)) addToDone(merged);
  renderJob(merged.id);
  announceJob(merged);
}

// Gone from the page (deleted, or replaced by its retry): its socket closed, its re-read dropped, its row
// removed with the next render.
export function forgetJob(id, render = true) {
  const ws = state.sockets.get(id);
  state.sockets.delete(id);
  if (ws) ws.close(1000, "deleted");
  clearTimeout(state.timers.get(id));
  state.timers.delete(id);
  state.jobs.delete(id);
  state.stale.delete(id);
  state.attempts.delete(id);
  state.selected.delete(id);
  state.done.ids = state.done.ids.filter((known) => known !== id);
  if (render) renderLists();
}
