// Live progress: each active job followed over its own WebSocket. When one closes before its job ended (a
// restarted server, a dropped network), the job is read again (GET) and followed from that state
// (?after=<its seq>); while mediabot cannot be reached the page says so, and keeps asking.

import { api, hasKey, onReachability, openSocket } from "./api.js";
import { forgetJob, update, updateItem } from "./jobs.js";
import { renderJob } from "./lists.js";
import { announceJob, report, showError } from "./messages.js";
import { $, state } from "./state.js";
import { ACTIVE } from "./words.js";

const RETRY_MAX_MS = 5_000;

// ---- reaching mediabot ---------------------------------------------------------------------------------

function connectionLost() {
  if (state.lost) return;
  state.lost = true;
  $("connection").hidden = false;
  probe(0);
}

// While mediabot does not answer, something must keep asking (the notice promises it): the jobs being read
// again do, else a small read of the list.
function probe(attempt) {
  clearTimeout(state.probe);
  state.probe = setTimeout(async () => {
    state.probe = null;
    if (!state.lost || !hasKey()) return;
    if (state.timers.size) {
      probe(attempt); // the jobs' own reads will tell
      return;
    }
    try {
      await api("GET", "/api/v1/jobs?limit=1");
    } catch {
      // still away (or refusing): asked again below
    }
    if (state.lost) probe(attempt + 1);
  }, Math.min(1000 * 2 ** attempt, RETRY_MAX_MS));
}

// mediabot answered: the notice goes, so does a "could not reach" error, and every job waiting to be read
// again is read now rather than at its next try.
function connectionBack() {
  if (!state.lost) return;
  state.lost = false;
  clearTimeout(state.probe);
  state.probe = null;
  $("connection").hidden = true;
  if ($("error").dataset.network) showError("");
  resyncWaiting();
}

// Every job waiting to be read again is read now rather than at its next try.
function resyncWaiting() {
  for (const [id, timer] of state.timers) {
    clearTimeout(timer);
    state.timers.delete(id);
    resync(id);
  }
}

// ---- following jobs -------------------------------------------------------------------------------------

export function watch(id) {
  const job = state.jobs.get(id);
  if (!job || !ACTIVE.has(job.status) || state.sockets.has(id) || !hasKey()) return;
  clearTimeout(state.timers.get(id));
  state.timers.delete(id);
  const after = state.seqs.get(id) ?? job.seq ?? 0;
  const ws = openSocket(`/api/v1/jobs/${encodeURIComponent(id)}/events?after=${after}`, {
    onOpen() {
      connectionBack();
    },
    onMessage(message) {
      if (!message || message.type !== "job" || !message.job) return;
      state.attempts.delete(id);
      if (message.job.id === id) {
        state.seqs.set(id, Math.max(state.seqs.get(id) || 0, message.job.seq));
        update(message.job);
      } else if (message.job.parent_id === id) {
        updateItem(id, message.job);
        const parent = state.jobs.get(id);
        if (parent) announceJob(parent);
      }
    },
    onClose() {
      if (state.sockets.get(id) === ws) state.sockets.delete(id);
      const latest = state.jobs.get(id);
      if (!hasKey() || !latest || !ACTIVE.has(latest.status)) return;
      // Closed before the job ended: read where it is now, then follow it from there. At once the first
      // time; then slower, so a socket that keeps closing does not become a loop.
      const attempt = (state.attempts.get(id) || 0) + 1;
      state.attempts.set(id, attempt);
      later(id, attempt === 1 ? 0 : Math.min(500 * 2 ** (attempt - 2), RETRY_MAX_MS));
    },
  });
  state.sockets.set(id, ws);
}

function later(id, delay) {
  clearTimeout(state.timers.get(id));
  state.timers.set(id, setTimeout(() => resync(id), delay));
}

// Reads a followed job again, then follows it over a new WebSocket from that state.
async function resync(id) {
  state.timers.delete(id);
  if (!hasKey() || state.sockets.has(id) || !state.jobs.has(id)) return;
  let job;
  try {
    job = await api("GET", `/api/v1/jobs/${encodeURIComponent(id)}`);
  } catch (err) {
    if (err.status === 401) {
      report(err);
    } else if (err.status === 404) {
      forgetJob(id); // deleted meanwhile (in another tab, say)
    } else {
      // mediabot is not answering (restarting, or the network is down): the card says so.
      if (!state.stale.has(id)) {
        state.stale.add(id);
        renderJob(id);
      }
      const attempt = (state.attempts.get(id) || 0) + 1;
      state.attempts.set(id, attempt);
      later(id, Math.min(500 * 2 ** (attempt - 1), RETRY_MAX_MS));
    }
    return;
  }
  const known = state.jobs.get(id);
  if (!known || state.sockets.has(id)) return; // deleted, or followed again meanwhile
  state.stale.delete(id);
  // Followed from the state read: the server's record, which may be a little behind what the closed socket
  // sent (not every progress step is written) or far from it (a restarted server re-queued the job).
  state.seqs.set(id, job.seq);
  if (job.status !== known.status || job.seq >= known.seq) update(job, true);
  else renderJob(id); // the same step, a little older: keep what is shown until the next message
  watch(id);
}

// Calls that reach mediabot (or not) say whether it is there; the network coming back is worth a try at once.
export function wireLive() {
  onReachability((reached) => (reached ? connectionBack() : connectionLost()));
  window.addEventListener("online", resyncWaiting);
}
