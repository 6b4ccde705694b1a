// mediabot's page: the API key kept in localStorage, jobs through /api/v1, live progress over each active
// job's WebSocket. Two lists, each job in one of them: the Queue (queued and running) and Done (finished,
// failed or cancelled; searchable, paged). Plain DOM modules, no build step, nothing loaded from elsewhere.
// A playlist is one job with `items` (each a job of its own): its WebSocket sends the playlist, then each
// item's changes (`parent_id` = the playlist), then its end.
//
// When a job's WebSocket closes before the job ended (a restarted server, a dropped network), the page
// reads the job again (GET) and follows it from that state (?after=<its seq>); while mediabot cannot be
// reached it says so, on the page and on the job, and says nothing about speed or time left.

import { ApiError, api, hasKey, isKeyShaped, onReachability, openSocket, setKey } from "./api.js";
import { fillRow, safeLink, syncRows } from "./rows.js";
import { ACTIVE, ENDED, clock, hasFile, language, statusSentence, titleOf } from "./words.js";

const KEY_STORAGE = "mediabot.apiKey";
const AUDIO_FORMAT_STORAGE = "mediabot.audioFormat"; // the file type last chosen for sound only
const DONE_PAGE = 50;
const QUEUE_LIMIT = 100;
const BULK_PAGE = 100;
const BULK_PAGES = 10; // bulk actions reach the newest 1,000 matching jobs
const MAX_LINKS = 10;
const FRESH_LINK_MS = 60_000; // older than this, a file link is asked for again before it is used
const SEARCH_DELAY_MS = 300;
const RETRY_MAX_MS = 5_000;
const ENDED_FILTER = "done,failed,cancelled";

const $ = (id) => document.getElementById(id);

const state = {
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

// ---- messages ------------------------------------------------------------------------------------------

function showError(message, network = false) {
  const box = $("error");
  box.textContent = message || "";
  box.hidden = !message;
  box.dataset.network = message && network ? "true" : "";
}

function report(err) {
  if (err instanceof ApiError && err.status === 401) {
    // The key is wrong or was revoked: ask for it again, and keep the reason on screen.
    forgetKey();
  }
  if (err instanceof ApiError) showError(err.message, err.code === "network");
  else {
    showError("Something went wrong in this page. Reload it and try again.");
    console.error(err);
  }
}

let announceTimer = null;
function announce(text) {
  const region = $("announcer");
  clearTimeout(announceTimer);
  region.textContent = "";
  // Emptied first, then set on the next tick, so the same words twice are read twice.
  announceTimer = setTimeout(() => {
    region.textContent = text;
  }, 50);
}

// Status changes and each quarter of the way are read out; not every progress tick.
function announceJob(job) {
  const pct = job.progress && job.progress.percent;
  const quarter = job.status === "running" && pct != null && pct >= 25 && pct < 100 ? Math.floor(pct / 25) * 25 : null;
  const mark = quarter != null ? `${job.status}:${quarter}` : job.status;
  if (state.announced.get(job.id) === mark) return;
  const first = !state.announced.has(job.id);
  state.announced.set(job.id, mark);
  if (first && ENDED.has(job.status)) return; // known before this visit: nothing new to say
  announce(quarter != null ? `${titleOf(job)}: ${quarter}% downloaded.` : statusSentence(job));
}

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
  for (const [id, timer] of state.timers) {
    clearTimeout(timer);
    state.timers.delete(id);
    resync(id);
  }
}

// ---- the key -------------------------------------------------------------------------------------------

function stored(name) {
  try {
    return localStorage.getItem(name);
  } catch {
    return null; // storage disabled: nothing kept from an earlier visit
  }
}

function store(name, value) {
  try {
    localStorage.setItem(name, value);
  } catch {
    // storage disabled: kept for this visit only
  }
}

function showKeyState() {
  const saved = hasKey();
  $("key-section").hidden = saved;
  $("key-saved").hidden = !saved;
  $("workspace").hidden = !saved;
}

function forgetKey() {
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
    showError("Paste your API key first.");
    input.focus();
    return;
  }
  if (!isKeyShaped(value)) {
    showError("That is not an API key: a key starts with mb_ followed by about 43 letters, digits, - or _. Paste it again.");
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

// ---- jobs and playlists --------------------------------------------------------------------------------

// Whether item state `a` is newer than `b`: an ended item stays ended, otherwise the larger seq wins.
function newer(a, b) {
  if (ENDED.has(b.status)) return false;
  return ENDED.has(a.status) || a.seq > b.seq;
}

// The playlist's status and progress from its items, as the server sums them (between its own messages,
// only the items' messages arrive): running while any item is active; then done if any is done, else
// failed if any failed, else cancelled.
function summed(job) {
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
function withItems(job, known) {
  if (!job.items || !known || !known.items) return job;
  const old = new Map(known.items.map((item) => [item.id, item]));
  const items = job.items.map((item) => (old.has(item.id) && !newer(item, old.get(item.id)) ? old.get(item.id) : item));
  return summed({ ...job, items });
}

function findJob(id) {
  if (state.jobs.has(id)) return state.jobs.get(id);
  for (const job of state.jobs.values()) {
    const item = (job.items || []).find((entry) => entry.id === id);
    if (item) return item;
  }
  return null;
}

// `fresh`: read from the server just now (a GET), so it is the truth even when it goes back to queued (a
// restarted server hands running downloads back to the queue).
function remember(job, fresh = false) {
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

function updateItem(parentId, item) {
  const parent = state.jobs.get(parentId);
  if (!parent || !parent.items || !parent.items.some((known) => known.id === item.id)) return;
  const items = parent.items.map((known) => (known.id === item.id && newer(item, known) ? item : known));
  state.jobs.set(parentId, summed({ ...parent, items }));
  state.fetchedAt.set(item.id, Date.now());
  renderJob(parentId);
}

// A job's new state: remembered, its row updated (moved to Done when it ended), read out when its status
// changed.
function update(job, fresh = false) {
  const merged = remember(job, fresh);
  if (job.parent_id) return;
  if (ENDED.has(merged.status)) addToDone(merged);
  renderJob(merged.id);
  announceJob(merged);
}

// ---- live progress -------------------------------------------------------------------------------------

function watch(id) {
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

// ---- loading -------------------------------------------------------------------------------------------

async function loadAll() {
  // Both asked at once: Done's first page does not wait for the queue.
  const [active] = await Promise.all([api("GET", `/api/v1/jobs?status=queued,running&limit=${QUEUE_LIMIT}`), loadDone(false)]);
  for (const job of active.items) announceJob(remember(job));
  renderLists();
  for (const job of active.items) watch(job.id);
}

function listQuery({ status, kind, q }, limit, cursor) {
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
  $("history-status").textContent = "Loading…";
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

function renderDoneStatus() {
  const { ids, cursor, loaded, filters } = state.done;
  const filtered = Boolean(filters.q || filters.status || filters.kind);
  const shown = doneJobs().length;
  let words = "";
  if (loaded && !shown) words = cursor ? "None of these so far: load more to look further back." : filtered ? "Nothing matches." : "Nothing yet.";
  else if (loaded && (cursor || ids.length > 5)) words = `${shown} shown${cursor ? "" : ", that is all"}.`;
  $("history-status").textContent = words;
  $("history-status").hidden = !words;
  $("load-more").hidden = !cursor;
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
function addToDone(job) {
  const done = state.done;
  if (!done.loaded || done.ids.includes(job.id) || !matches(job)) return;
  const at = done.ids.findIndex((id) => {
    const shown = state.jobs.get(id);
    return shown && shown.created_at < job.created_at;
  });
  if (at === -1 && done.cursor) return;
  done.ids.splice(at === -1 ? done.ids.length : at, 0, job.id);
}

// ---- formats -------------------------------------------------------------------------------------------

function links() {
  const words = $("url-input").value.split(/\s+/).map((w) => w.trim()).filter(Boolean);
  return [...new Set(words)];
}

function chosenKind() {
  return $("job-form").elements.kind.value;
}

function chosenFormat() {
  const checked = document.querySelector("#format-choices input:checked");
  return checked ? checked.value : "";
}

async function checkFormats() {
  showError("");
  const found = links();
  if (found.length !== 1) {
    showError(found.length ? "Formats are chosen for one link at a time: leave a single link in the box." : "Paste a link first, then choose its format.");
    $("url-input").focus();
    return;
  }
  const button = $("formats-button");
  button.disabled = true;
  button.textContent = "Checking the link…";
  $("formats-panel").setAttribute("aria-busy", "true");
  try {
    const data = await api("GET", `/api/v1/formats?url=${encodeURIComponent(found[0])}`);
    state.formats = { url: found[0], data };
    renderFormats();
    $("formats-panel").hidden = false;
    const checked = document.querySelector("#format-choices input:checked");
    if (checked && !$("format-field").hidden) checked.focus();
  } catch (err) {
    report(err);
  } finally {
    button.disabled = false;
    button.textContent = "Choose a format…";
    $("formats-panel").removeAttribute("aria-busy");
  }
}

// One format as a radio button whose label may wrap: the API's labels (height, codec, size) can be long,
// and a phone cuts a closed <select> to its own width.
function formatChoice(value, text, checked) {
  const label = document.createElement("label");
  label.className = "choice";
  const radio = document.createElement("input");
  radio.type = "radio";
  radio.name = "format";
  radio.value = value;
  radio.checked = checked;
  const words = document.createElement("span");
  words.textContent = text;
  label.append(radio, words);
  return label;
}

function renderFormats() {
  const found = state.formats;
  if (!found) return;
  const { data } = found;
  const kind = chosenKind();
  const summary = [data.title, clock(data.duration), data.uploader ? `by ${data.uploader}` : ""].filter(Boolean).join(" · ");
  $("formats-summary").textContent = summary || found.url;
  const before = chosenFormat();
  const note = $("formats-note");
  note.hidden = true;
  if (data.playlist) {
    $("format-field").hidden = true;
    $("subs-field").hidden = true;
    note.hidden = false;
    note.textContent = `This link is a playlist of ${data.playlist.count} items: each gets the best format up to the quality chosen.`;
    updateQuality();
    return;
  }
  const offered = data.formats.filter((f) => f.kind === kind);
  const keep = offered.some((f) => f.format_id === before) ? before : "";
  $("format-choices").replaceChildren(
    formatChoice("", kind === "audio" ? "Best sound (automatic)" : "Best up to the quality chosen (automatic)", keep === ""),
    ...offered.map((f) => formatChoice(f.format_id, f.label + (f.filesize_estimated && !f.label.includes("~") ? " (estimated)" : ""), f.format_id === keep)),
  );
  $("format-field").hidden = false;
  if (!offered.length) {
    note.hidden = false;
    note.textContent = kind === "audio"
      ? "This site offers no sound-only format: the sound is taken from the best video."
      : "This site lists no video formats: the best one is picked when downloading.";
  }
  const subs = data.subtitles || [];
  $("subs-field").hidden = !subs.length;
  const checked = new Set([...document.querySelectorAll("#subs-choices input:checked")].map((i) => i.value));
  $("subs-choices").replaceChildren(
    ...subs.map((lang) => {
      const label = document.createElement("label");
      label.className = "inline";
      const box = document.createElement("input");
      box.type = "checkbox";
      box.name = "subtitles";
      box.value = lang;
      box.checked = checked.has(lang);
      label.append(box, ` ${language(lang)}`);
      return label;
    }),
  );
  updateQuality();
}

function clearFormats() {
  state.formats = null;
  $("formats-panel").hidden = true;
  $("format-choices").replaceChildren();
  $("subs-choices").replaceChildren();
  updateQuality();
}

// Video: a quality cap (moot once a format is chosen). Sound only: the file type instead.
function updateQuality() {
  const audio = chosenKind() === "audio";
  const select = $("quality-select");
  const help = $("quality-help");
  const formatChosen = !$("formats-panel").hidden && chosenFormat() !== "";
  $("quality-field").hidden = audio;
  $("audio-format-field").hidden = !audio;
  select.disabled = audio || formatChosen;
  help.hidden = !formatChosen;
  help.textContent = formatChosen ? "The chosen format decides." : "";
}

// ---- actions -------------------------------------------------------------------------------------------

async function submit(event) {
  event.preventDefault();
  showError("");
  const found = links();
  if (!found.length) {
    showError("Paste a link to download.");
    $("url-input").focus();
    return;
  }
  if (found.length > MAX_LINKS) {
    showError(`That is ${found.length} links: start at most ${MAX_LINKS} at once.`);
    $("url-input").focus();
    return;
  }
  const kind = chosenKind();
  const base = { kind, quality: kind === "audio" ? "best" : $("quality-select").value };
  const audioFormat = $("audio-format-select").value;
  if (kind === "audio" && audioFormat) base.audio_format = audioFormat;
  const picked = state.formats && found.length === 1 && found[0] === state.formats.url && !$("formats-panel").hidden;
  if (picked) {
    const formatId = chosenFormat();
    if (formatId && !$("format-field").hidden) base.format_id = formatId;
    const subs = [...document.querySelectorAll("#subs-choices input:checked")].map((box) => box.value);
    if (subs.length && !$("subs-field").hidden) base.subtitles = subs;
  }
  const button = $("submit");
  button.disabled = true;
  button.textContent = found.length > 1 ? `Starting ${found.length} downloads…` : "Starting…";
  try {
    const results = await Promise.allSettled(found.map((url) => api("POST", "/api/v1/jobs", { ...base, url })));
    const failed = [];
    results.forEach((result, index) => {
      if (result.status === "fulfilled") {
        const job = remember(result.value);
        state.seqs.set(job.id, result.value.seq);
        if (ENDED.has(job.status)) addToDone(job); // from a stored file: done at once
        announceJob(job);
      } else {
        failed.push({ url: found[index], err: result.reason });
      }
    });
    renderLists();
    for (const result of results) if (result.status === "fulfilled") watch(result.value.id);
    // The links that started leave the box; the ones that did not stay, to be corrected.
    $("url-input").value = failed.map((f) => f.url).join("\n");
    if (!failed.length) clearFormats();
    if (failed.length) {
      if (failed.some((f) => f.err instanceof ApiError && f.err.status === 401)) {
        report(failed[0].err);
      } else if (found.length === 1) {
        report(failed[0].err);
      } else {
        const lines = failed.map((f) => `${f.url}: ${f.err instanceof ApiError ? f.err.message : "could not start."}`);
        showError(`${failed.length} of ${found.length} links did not start. ${lines.join(" ")}`);
      }
      $("url-input").focus();
    } else {
      announce(found.length > 1 ? `${found.length} downloads started.` : "Download started.");
    }
  } finally {
    button.disabled = false;
    button.textContent = "Download";
  }
}

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
function replaceJob(oldId, job) {
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
    announce(`Retrying ${titleOf(job)}.`);
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

function deleteQuestion(jobs) {
  if (jobs.length === 1) {
    const name = titleOf(jobs[0]);
    if (!hasFile(jobs[0])) return `Delete “${name}” from your history?`;
    return `Delete “${name}” from your history, and ${jobs[0].items ? "its files" : "its file"}?`;
  }
  const files = jobs.filter(hasFile).length;
  const what = `Delete ${jobs.length} downloads from your history`;
  if (!files) return `${what}?`;
  return files === jobs.length ? `${what}, and their files?` : `${what}, and ${files} file${files === 1 ? "" : "s"}?`;
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

function forgetJob(id, render = true) {
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
      showError("This file is no longer available.");
      return;
    }
    if (await copyText(href)) {
      control.textContent = "Copied";
      announce("Link copied. It works for a limited time; copy it again later for a fresh one.");
      setTimeout(() => {
        control.textContent = "Copy link";
      }, 2000);
    } else {
      showError("This browser did not let the page copy: use Save, or copy the link from its menu.");
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
    else showError("This file is no longer available.");
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

// ---- several at once -----------------------------------------------------------------------------------

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
    if (count) showError(`${doneWords(count)}, then: ${err instanceof ApiError ? err.message : "something went wrong."}`, err.code === "network");
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
    (n) => `${n} deleted`,
  );
}

function deleteSelected(event) {
  const button = event.currentTarget;
  bulk(button, async () => {
    const jobs = doneJobs().filter((job) => state.selected.has(job.id));
    if (!jobs.length || !window.confirm(deleteQuestion(jobs))) return;
    button.textContent = "Deleting…";
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
      announce("Nothing finished to clear.");
      return;
    }
    if (!window.confirm(deleteQuestion(jobs).replace(/^Delete (\d+) downloads/, "Clear all $1 finished downloads"))) return;
    button.textContent = "Clearing…";
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
      announce("Nothing failed: nothing to retry.");
      $("history-status").hidden = false;
      $("history-status").textContent = "Nothing failed: nothing to retry.";
      return;
    }
    button.textContent = "Retrying…";
    const started = [];
    const count = await eachOf(
      jobs,
      async (job) => {
        started.push(replaceJob(job.id, await api("POST", `/api/v1/jobs/${encodeURIComponent(job.id)}/retry`)));
      },
      (n) => `${n} of ${jobs.length} started again`,
    );
    renderLists();
    for (const job of started) watch(job.id);
    if (count) announce(`${count} started again.`);
  });
}

// ---- rendering -----------------------------------------------------------------------------------------

function newestFirst(a, b) {
  return a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : 0;
}

function queueJobs() {
  return [...state.jobs.values()].filter((job) => ACTIVE.has(job.status)).sort(newestFirst);
}

function doneJobs() {
  return state.done.ids.map((id) => state.jobs.get(id)).filter((job) => job && ENDED.has(job.status));
}

function rowOptions(job) {
  return { selected: state.selected.has(job.id), stale: state.stale.has(job.id) };
}

function renderLists() {
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
function renderJob(id) {
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

function renderBulk() {
  const done = doneJobs();
  $("bulk").hidden = !done.length;
  const picked = done.filter((job) => state.selected.has(job.id)).length;
  const all = $("select-all");
  all.checked = picked > 0 && picked === done.length;
  all.indeterminate = picked > 0 && picked < done.length;
  all.disabled = state.busy;
  const button = $("delete-selected");
  button.disabled = state.busy || !picked;
  if (!state.busy) button.textContent = picked ? `Delete selected (${picked})` : "Delete selected";
  $("retry-failed").disabled = state.busy;
  $("clear-finished").disabled = state.busy;
}

function selectAll(event) {
  for (const job of doneJobs()) {
    if (event.target.checked) state.selected.add(job.id);
    else state.selected.delete(job.id);
  }
  renderLists();
}

// ---- wiring --------------------------------------------------------------------------------------------

// Small menus ("…" on a row) close on Escape (focus back on their button) and on a click elsewhere.
function wireMenus() {
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    const open = event.target.closest && event.target.closest("details.more[open]");
    if (open) {
      open.open = false;
      open.querySelector("summary").focus();
    }
  });
  document.addEventListener("click", (event) => {
    for (const open of document.querySelectorAll("details.more[open]")) {
      if (!open.contains(event.target)) open.open = false;
    }
  });
}

function start() {
  onReachability((reached) => (reached ? connectionBack() : connectionLost()));
  $("key-form").addEventListener("submit", saveKey);
  $("key-forget").addEventListener("click", () => {
    forgetKey();
    showError("");
    $("key-input").focus();
  });
  $("job-form").addEventListener("submit", submit);
  $("url-input").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      $("job-form").requestSubmit();
    }
  });
  $("url-input").addEventListener("input", () => {
    const found = links();
    if (state.formats && (found.length !== 1 || found[0] !== state.formats.url)) clearFormats();
  });
  $("job-form").addEventListener("change", (event) => {
    if (event.target.name === "kind") renderFormats();
    updateQuality();
  });
  $("audio-format-select").addEventListener("change", (event) => store(AUDIO_FORMAT_STORAGE, event.target.value));
  $("formats-button").addEventListener("click", checkFormats);
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
  $("select-all").addEventListener("change", selectAll);
  $("delete-selected").addEventListener("click", deleteSelected);
  $("retry-failed").addEventListener("click", retryFailed);
  $("clear-finished").addEventListener("click", clearFinished);
  $("queue").addEventListener("click", onListClick);
  $("done").addEventListener("click", onListClick);
  wireMenus();
  window.addEventListener("online", () => {
    for (const [id, timer] of state.timers) {
      clearTimeout(timer);
      state.timers.delete(id);
      resync(id);
    }
  });

  const audioFormat = stored(AUDIO_FORMAT_STORAGE);
  if (audioFormat && [...$("audio-format-select").options].some((o) => o.value === audioFormat)) {
    $("audio-format-select").value = audioFormat;
  }
  // The browser may restore the form after a reload: the options follow what it restored.
  updateQuality();
  readFilters();
  const key = stored(KEY_STORAGE);
  setKey(key && isKeyShaped(key) ? key : null);
  showKeyState();
  renderLists();
  const ready = () => {
    document.documentElement.dataset.ready = "true";
    performance.mark("mediabot:ready");
  };
  if (hasKey()) {
    loadAll().catch(report).finally(ready);
  } else {
    ready();
  }
}

start();
