// mediabot's page: the API key kept in localStorage, jobs through /api/v1, live progress over each active
// job's WebSocket (resumed with ?after=<seq> after a drop). Plain DOM modules, no build step, nothing loaded
// from elsewhere. A playlist is one job with `items` (each a job of its own): its WebSocket sends the
// playlist, then each item's changes (`parent_id` = the playlist), then its end.

import { ApiError, api, hasKey, openSocket, setKey } from "./api.js";
import { fillRow, safeLink, syncRows } from "./rows.js";
import { ACTIVE, ENDED, language, clock, statusSentence, titleOf } from "./words.js";

const KEY_STORAGE = "mediabot.apiKey";
const AUDIO_FORMAT_STORAGE = "mediabot.audioFormat"; // the file type last chosen for sound only
const HISTORY_PAGE = 10;
const MAX_LINKS = 10;
const FRESH_LINK_MS = 60_000; // older than this, a file link is asked for again before it is used
const SEARCH_DELAY_MS = 300;

const $ = (id) => document.getElementById(id);

const state = {
  jobs: new Map(), // id -> the newest JSON of a job you submitted (a playlist's items inside it)
  fetchedAt: new Map(), // id (also of items) -> when that JSON arrived (its links expire)
  seqs: new Map(), // id -> seq of the newest state of it its WebSocket sent
  sockets: new Map(), // id -> WebSocket
  retries: new Map(), // id -> reconnects since the last message
  timers: new Map(), // id -> pending reconnect
  downloads: [], // ids in "Downloads": this visit's and those still running, newest first
  downloadRows: new Map(),
  history: { ids: [], cursor: null, loaded: false, request: 0, filters: { q: "", status: "", kind: "" } },
  historyRows: new Map(),
  formats: null, // {url, data} from /api/v1/formats for the one link in the box
  announced: new Map(), // id -> the last status/milestone read out
};

// ---- messages ------------------------------------------------------------------------------------------

function showError(message) {
  const box = $("error");
  box.textContent = message || "";
  box.hidden = !message;
}

function report(err) {
  if (err instanceof ApiError && err.status === 401) {
    // The key is wrong or was revoked: ask for it again, and keep the reason on screen.
    forgetKey();
  }
  showError(err instanceof ApiError ? err.message : "Something went wrong in this page. Reload it and try again.");
  if (!(err instanceof ApiError)) console.error(err);
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
  state.downloads = [];
  state.history.ids = [];
  state.history.cursor = null;
  state.history.loaded = false;
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

function remember(job) {
  if (job.parent_id) {
    updateItem(job.parent_id, job); // an item read on its own (for a fresh link): it lives in its playlist
    return job;
  }
  const known = state.jobs.get(job.id);
  // A late snapshot (a list read racing the WebSocket) never takes a finished job back to running.
  if (known && ENDED.has(known.status) && ACTIVE.has(job.status)) return known;
  const merged = withItems(job, known);
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

// A job's new state: remembered, its rows updated, read out when its status changed.
function update(job) {
  const merged = remember(job);
  if (job.parent_id) return;
  renderJob(merged.id);
  announceJob(merged);
  addToHistory(merged);
  if (ENDED.has(merged.status)) showClearFinished();
}

function addDownload(job) {
  if (!state.downloads.includes(job.id)) state.downloads.unshift(job.id);
}

// ---- live progress -------------------------------------------------------------------------------------

function watch(id) {
  const job = state.jobs.get(id);
  if (!job || !ACTIVE.has(job.status) || state.sockets.has(id) || !hasKey()) return;
  clearTimeout(state.timers.get(id));
  state.timers.delete(id);
  const after = state.seqs.get(id) ?? job.seq ?? 0;
  let heard = false;
  const ws = openSocket(`/api/v1/jobs/${encodeURIComponent(id)}/events?after=${after}`, {
    onMessage(message) {
      if (!message || message.type !== "job" || !message.job) return;
      heard = true;
      state.retries.delete(id);
      showConnection();
      if (message.job.id === id) {
        state.seqs.set(id, Math.max(state.seqs.get(id) || 0, message.job.seq));
        update(message.job);
      } else if (message.job.parent_id === id) {
        updateItem(id, message.job);
        const parent = state.jobs.get(id);
        if (parent) announceJob(parent);
      }
    },
    onClose(event, opened, fallback) {
      if (state.sockets.get(id) === ws) state.sockets.delete(id);
      const latest = state.jobs.get(id);
      if (!hasKey() || !latest || !ACTIVE.has(latest.status)) return;
      if (fallback) {
        watch(id); // the server wants the older handshake: again at once
        return;
      }
      // Closed before the job ended (network, server restart): follow it again from the last state seen.
      const attempt = (state.retries.get(id) || 0) + 1;
      state.retries.set(id, attempt);
      showConnection();
      const delay = Math.min(500 * 2 ** (attempt - 1), 15_000);
      // A socket that closed without a word while the job looks active: read the job first.
      const next = heard || !opened ? () => watch(id) : () => resync(id);
      state.timers.set(id, setTimeout(next, delay));
    },
  });
  state.sockets.set(id, ws);
}

async function resync(id) {
  state.timers.delete(id);
  if (!hasKey() || state.sockets.has(id)) return;
  try {
    const job = await api("GET", `/api/v1/jobs/${encodeURIComponent(id)}`);
    state.seqs.set(id, job.seq);
    update(job);
    watch(id);
  } catch (err) {
    if (err.status === 401 || err.status === 404) {
      if (err.status === 401) report(err);
      state.retries.delete(id);
      showConnection();
      return;
    }
    const attempt = (state.retries.get(id) || 0) + 1;
    state.retries.set(id, attempt);
    state.timers.set(id, setTimeout(() => resync(id), Math.min(500 * 2 ** (attempt - 1), 15_000)));
  }
}

function showConnection() {
  const lost = [...state.retries.values()].some((n) => n >= 1);
  $("connection").hidden = !lost;
}

// ---- loading -------------------------------------------------------------------------------------------

async function loadAll() {
  // Both asked at once: the history's first page does not wait for the downloads in progress.
  const [active] = await Promise.all([api("GET", `/api/v1/jobs?status=queued,running&limit=50`), loadHistory(false)]);
  for (const job of active.items) {
    const merged = remember(job);
    addDownload(merged);
    announceJob(merged);
  }
  renderLists();
  for (const job of active.items) watch(job.id);
}

function historyQuery(cursor) {
  const { q, status, kind } = state.history.filters;
  const params = new URLSearchParams({ limit: String(HISTORY_PAGE) });
  if (status) params.set("status", status);
  if (kind) params.set("kind", kind);
  if (q) params.set("q", q);
  if (cursor) params.set("cursor", cursor);
  return `/api/v1/jobs?${params}`;
}

// The first page (more = false) or the next one; a filter changed meanwhile makes an answer moot.
async function loadHistory(more) {
  const history = state.history;
  const request = ++history.request;
  const button = $("load-more");
  $("history-status").textContent = "Loading…";
  $("history").setAttribute("aria-busy", "true");
  if (more) button.disabled = true;
  try {
    const page = await api("GET", historyQuery(more ? history.cursor : null));
    if (request !== history.request) return;
    const ids = more ? [...history.ids] : [];
    for (const job of page.items) {
      const merged = remember(job);
      announceJob(merged);
      if (!ids.includes(merged.id)) ids.push(merged.id);
    }
    history.ids = ids;
    history.cursor = page.next_cursor;
    history.loaded = true;
    renderLists();
    for (const job of page.items) watch(job.id);
  } finally {
    if (request === history.request) {
      $("history").removeAttribute("aria-busy");
      button.disabled = false;
      renderHistoryStatus();
    }
  }
}

function renderHistoryStatus() {
  const { ids, cursor, loaded, filters } = state.history;
  const filtered = Boolean(filters.q || filters.status || filters.kind);
  let words = "";
  if (loaded && !ids.length) words = cursor ? "None of these so far: load more to look further back." : filtered ? "No downloads match." : "Nothing yet.";
  else if (loaded) words = `${ids.length} shown${cursor ? "" : ", that is all"}.`;
  $("history-status").textContent = words;
  $("load-more").hidden = !cursor;
}

async function reloadHistory() {
  try {
    await loadHistory(false);
  } catch (err) {
    report(err);
  }
}

function readFilters() {
  state.history.filters = {
    q: $("search-input").value.trim(),
    status: $("status-filter").value,
    kind: $("kind-filter").value,
  };
}

function matches(job) {
  const { q, status, kind } = state.history.filters;
  if (status && !status.split(",").includes(job.status)) return false;
  if (kind && job.kind !== kind) return false;
  if (q) {
    const needle = q.toLowerCase();
    return (job.title || "").toLowerCase().includes(needle) || job.url.toLowerCase().includes(needle);
  }
  return true;
}

// A job started (or finished) in this visit joins the history, in its place by age (several started at once
// are created in any order), when the history would show it; one older than every row shown while more
// pages remain is left to those pages.
function addToHistory(job) {
  const history = state.history;
  if (!history.loaded || history.ids.includes(job.id) || !matches(job)) return;
  const at = history.ids.findIndex((id) => {
    const shown = state.jobs.get(id);
    return shown && shown.created_at < job.created_at;
  });
  if (at === -1 && history.cursor) return;
  history.ids.splice(at === -1 ? history.ids.length : at, 0, job.id);
  renderLists();
  renderHistoryStatus();
}

// ---- formats -------------------------------------------------------------------------------------------

function links() {
  const words = $("url-input").value.split(/\s+/).map((w) => w.trim()).filter(Boolean);
  return [...new Set(words)];
}

function chosenKind() {
  return $("job-form").elements.kind.value;
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
    const select = $("format-select");
    if (!$("format-field").hidden) select.focus();
  } catch (err) {
    report(err);
  } finally {
    button.disabled = false;
    button.textContent = "Choose a format…";
    $("formats-panel").removeAttribute("aria-busy");
  }
}

function option(value, text) {
  const node = document.createElement("option");
  node.value = value;
  node.textContent = text;
  return node;
}

function renderFormats() {
  const found = state.formats;
  if (!found) return;
  const { data } = found;
  const kind = chosenKind();
  const summary = [data.title, clock(data.duration), data.uploader ? `by ${data.uploader}` : ""].filter(Boolean).join(" · ");
  $("formats-summary").textContent = summary || found.url;
  const select = $("format-select");
  const before = select.value;
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
  select.replaceChildren(
    option("", kind === "audio" ? "Best sound (automatic)" : "Best up to the quality chosen (automatic)"),
    ...offered.map((f) => option(f.format_id, f.label + (f.filesize_estimated ? " (estimated)" : ""))),
  );
  if (offered.some((f) => f.format_id === before)) select.value = before;
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
  $("format-select").replaceChildren();
  $("subs-choices").replaceChildren();
  updateQuality();
}

// Video: a quality cap (moot once a format is chosen). Sound only: the file type instead.
function updateQuality() {
  const audio = chosenKind() === "audio";
  const select = $("quality-select");
  const help = $("quality-help");
  const formatChosen = !$("formats-panel").hidden && $("format-select").value !== "";
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
    const formatId = $("format-select").value;
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
        addDownload(job);
        announceJob(job);
        addToHistory(job);
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

async function retry(id, control) {
  control.disabled = true;
  showError("");
  try {
    const job = remember(await api("POST", `/api/v1/jobs/${encodeURIComponent(id)}/retry`));
    state.seqs.set(job.id, job.seq);
    addDownload(job);
    addToHistory(job);
    renderLists();
    watch(job.id);
    announce(`Retrying ${titleOf(job)}.`);
  } catch (err) {
    report(err);
  } finally {
    control.disabled = false;
  }
}

async function remove(id, control) {
  const job = state.jobs.get(id);
  const name = job ? titleOf(job) : "this download";
  if (!window.confirm(`Delete “${name}” from your history, and its file?`)) return;
  control.disabled = true;
  showError("");
  // Where focus goes once the row is gone: the next row, else the previous one, else the list's heading.
  const row = control.closest("li.job");
  const neighbour = row && (row.nextElementSibling || row.previousElementSibling);
  const heading = control.closest("#downloads") ? $("downloads-heading") : $("history-heading");
  try {
    await api("DELETE", `/api/v1/history/${encodeURIComponent(id)}`);
    forgetJob(id);
    const target = neighbour && neighbour.isConnected ? neighbour.querySelector("button:not([hidden]), a:not([hidden])") : null;
    if (target) target.focus();
    else {
      heading.tabIndex = -1;
      heading.focus();
    }
    announce(`${name} deleted.`);
  } catch (err) {
    control.disabled = false;
    report(err);
  }
}

function forgetJob(id) {
  const ws = state.sockets.get(id);
  state.sockets.delete(id);
  if (ws) ws.close(1000, "deleted");
  clearTimeout(state.timers.get(id));
  state.timers.delete(id);
  state.jobs.delete(id);
  state.downloads = state.downloads.filter((known) => known !== id);
  state.history.ids = state.history.ids.filter((known) => known !== id);
  renderLists();
  renderHistoryStatus();
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
      showError("This browser did not let the page copy: use Save file, or copy the link from its menu.");
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
  if (action === "save") followSave(event, control);
  else if (action === "copy") copyLink(id, control);
  else if (action === "cancel") cancel(id, control);
  else if (action === "retry") retry(id, control);
  else if (action === "delete") remove(id, control);
}

function clearFinished() {
  state.downloads = state.downloads.filter((id) => {
    const job = state.jobs.get(id);
    return job && ACTIVE.has(job.status);
  });
  renderLists();
  $("new-heading").focus();
}

// ---- rendering -----------------------------------------------------------------------------------------

function jobsOf(ids) {
  return ids.map((id) => state.jobs.get(id)).filter(Boolean);
}

function showClearFinished() {
  $("clear-finished").hidden = !jobsOf(state.downloads).some((job) => ENDED.has(job.status));
}

function renderLists() {
  const downloads = jobsOf(state.downloads);
  syncRows($("downloads"), downloads, state.downloadRows);
  $("downloads-empty").hidden = downloads.length > 0;
  showClearFinished();
  syncRows($("history"), jobsOf(state.history.ids), state.historyRows);
}

function renderJob(id) {
  const job = state.jobs.get(id);
  if (!job) return;
  for (const rows of [state.downloadRows, state.historyRows]) {
    const li = rows.get(id);
    if (li) fillRow(li, job);
  }
}

// ---- wiring --------------------------------------------------------------------------------------------

function start() {
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
  $("refresh").addEventListener("click", reloadHistory);
  $("load-more").addEventListener("click", async () => {
    try {
      await loadHistory(true);
    } catch (err) {
      report(err);
    }
  });
  let searchTimer = null;
  $("history-form").addEventListener("submit", (event) => {
    event.preventDefault();
    clearTimeout(searchTimer);
    readFilters();
    reloadHistory();
  });
  $("search-input").addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      readFilters();
      reloadHistory();
    }, SEARCH_DELAY_MS);
  });
  for (const id of ["status-filter", "kind-filter"]) {
    $(id).addEventListener("change", () => {
      readFilters();
      reloadHistory();
    });
  }
  $("clear-finished").addEventListener("click", clearFinished);
  $("downloads").addEventListener("click", onListClick);
  $("history").addEventListener("click", onListClick);
  window.addEventListener("online", () => {
    for (const [id, timer] of state.timers) {
      clearTimeout(timer);
      state.timers.delete(id);
      watch(id);
    }
  });

  const audioFormat = stored(AUDIO_FORMAT_STORAGE);
  if (audioFormat && [...$("audio-format-select").options].some((o) => o.value === audioFormat)) {
    $("audio-format-select").value = audioFormat;
  }
  // The browser may restore the form after a reload: the options follow what it restored.
  updateQuality();
  readFilters();
  setKey(stored(KEY_STORAGE));
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
