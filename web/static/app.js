// mediabot's page: the API key kept in localStorage, jobs through /api/v1, live progress over each job's
// WebSocket. Plain DOM, no build step, nothing loaded from elsewhere. Text from the API is only ever set
// with textContent, never parsed as HTML. A playlist is one job with `items` (each a job of its own): its
// WebSocket sends the playlist, then each item's changes (`parent_id` = the playlist), then its end.

const KEY_STORAGE = "mediabot.apiKey";
const ACTIVE = new Set(["queued", "running"]);
const ENDED = new Set(["done", "failed", "cancelled"]);
const RECENT_LIMIT = 20;
const FRESH_LINK_MS = 60_000; // older than this, a file link is asked for again before it is followed
const STATUS_WORDS = { queued: "Queued", running: "Downloading", done: "Done", failed: "Failed", cancelled: "Cancelled" };

const $ = (id) => document.getElementById(id);

const state = {
  key: null,
  jobs: new Map(), // id -> the newest job JSON we have
  fetchedAt: new Map(), // id -> when that JSON arrived (its file_url expires)
  current: null, // the id shown in the "current" panel
  sockets: new Map(), // id -> WebSocket
  retries: new Map(), // id -> reconnect attempts since the last message
  rows: new Map(), // id -> <li>
  itemRows: new Map(), // item id -> <li> in the current panel's list of playlist items
  announced: "", // the last progress milestone read out
};

class ApiError extends Error {
  constructor(message, status = 0, code = "") {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// ---- the API -------------------------------------------------------------------------------------------

async function api(method, path, body) {
  if (!state.key) throw new ApiError("Enter your API key first.", 0, "no_key");
  const init = {
    method,
    cache: "no-store",
    headers: { Authorization: `Bearer ${state.key}`, Accept: "application/json" },
  };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch {
    throw new ApiError("Could not reach mediabot. Check your connection and try again.", 0, "network");
  }
  let data = null;
  try {
    data = await resp.json();
  } catch {
    // not JSON (a proxy's error page): described below by its status
  }
  if (!resp.ok) {
    const error = data && data.error;
    const message = (error && error.message) || `mediabot answered ${resp.status} ${resp.statusText}. Try again shortly.`;
    throw new ApiError(message, resp.status, (error && error.code) || "");
  }
  return data;
}

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

// ---- the key -------------------------------------------------------------------------------------------

function storedKey() {
  try {
    return localStorage.getItem(KEY_STORAGE);
  } catch {
    return null; // storage disabled: the key lasts until the page is closed
  }
}

function showKeyState() {
  const saved = Boolean(state.key);
  $("key-form").hidden = saved;
  $("key-saved").hidden = !saved;
}

function forgetKey() {
  state.key = null;
  try {
    localStorage.removeItem(KEY_STORAGE);
  } catch {
    // nothing stored
  }
  for (const ws of state.sockets.values()) ws.close(1000, "key forgotten");
  state.sockets.clear();
  state.jobs.clear();
  state.fetchedAt.clear();
  state.current = null;
  render();
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
  state.key = value;
  $("key-save").disabled = true;
  try {
    await loadRecent(); // proves the key before it is kept
  } catch (err) {
    state.key = null;
    report(err);
    input.focus();
    return;
  } finally {
    $("key-save").disabled = false;
  }
  try {
    localStorage.setItem(KEY_STORAGE, value);
  } catch {
    // storage disabled: kept for this visit only
  }
  input.value = "";
  showError("");
  showKeyState();
  $("url-input").focus();
}

// ---- playlists -----------------------------------------------------------------------------------------

// "Playlist: 10 of 143 items" (or "Playlist: 3 items" when that is all of it, or the size is unknown).
function playlistLine(job) {
  const { count, total } = job.playlist;
  if (total && total > count) return `Playlist: ${count} of ${total} items`;
  return `Playlist: ${count} item${count === 1 ? "" : "s"}`;
}

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

function updateItem(parentId, item) {
  const parent = state.jobs.get(parentId);
  if (!parent || !parent.items || !parent.items.some((known) => known.id === item.id)) return;
  const items = parent.items.map((known) => (known.id === item.id && newer(item, known) ? item : known));
  state.jobs.set(parentId, summed({ ...parent, items }));
  state.fetchedAt.set(item.id, Date.now());
  render();
}

// ---- jobs ----------------------------------------------------------------------------------------------

function remember(job) {
  if (job.parent_id) {
    // An item read on its own (for a fresh link): it lives in its playlist.
    updateItem(job.parent_id, job);
    return job;
  }
  const known = state.jobs.get(job.id);
  // A late snapshot (a list read racing the WebSocket) never takes a finished job back to running.
  if (known && !ACTIVE.has(known.status) && ACTIVE.has(job.status)) return known;
  const merged = withItems(job, known);
  state.jobs.set(job.id, merged);
  const now = Date.now();
  state.fetchedAt.set(job.id, now);
  for (const item of job.items || []) state.fetchedAt.set(item.id, now);
  return merged;
}

function update(job) {
  remember(job);
  render();
}

async function loadRecent() {
  const page = await api("GET", `/api/v1/jobs?limit=${RECENT_LIMIT}`);
  const listed = new Set();
  for (const job of page.items) {
    remember(job);
    listed.add(job.id);
  }
  for (const id of [...state.jobs.keys()]) {
    if (!listed.has(id) && id !== state.current && !state.sockets.has(id)) state.jobs.delete(id);
  }
  render();
  for (const job of state.jobs.values()) watch(job);
}

async function refresh() {
  try {
    await loadRecent();
  } catch (err) {
    report(err);
  }
}

async function submit(event) {
  event.preventDefault();
  showError("");
  if (!state.key) {
    showError("Enter your API key first.");
    $("key-input").focus();
    return;
  }
  const form = $("job-form");
  const url = $("url-input").value.trim();
  if (!url) {
    showError("Paste a link to download.");
    $("url-input").focus();
    return;
  }
  const kind = form.elements.kind.value;
  const quality = kind === "audio" ? "best" : $("quality-select").value;
  const button = $("submit");
  button.disabled = true;
  button.textContent = "Starting…";
  try {
    const job = remember(await api("POST", "/api/v1/jobs", { url, kind, quality }));
    state.current = job.id;
    state.announced = "";
    render();
    watch(job);
    $("url-input").value = "";
  } catch (err) {
    report(err);
  } finally {
    button.disabled = false;
    button.textContent = "Download";
  }
}

async function cancel(id, button) {
  button.disabled = true;
  showError("");
  try {
    update(await api("DELETE", `/api/v1/jobs/${encodeURIComponent(id)}`));
  } catch (err) {
    report(err);
  } finally {
    button.disabled = false;
  }
}

// ---- live progress -------------------------------------------------------------------------------------

function watch(job) {
  if (!ACTIVE.has(job.status) || state.sockets.has(job.id) || !state.key) return;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  // Browsers cannot set headers on a WebSocket: this is the one place the key goes in a URL.
  const address = `${scheme}//${location.host}/api/v1/jobs/${encodeURIComponent(job.id)}/events?token=${encodeURIComponent(state.key)}`;
  const ws = new WebSocket(address);
  state.sockets.set(job.id, ws);
  ws.addEventListener("message", (event) => {
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    if (!message || message.type !== "job" || !message.job) return;
    if (message.job.id === job.id) {
      state.retries.delete(job.id);
      update(message.job);
    } else if (message.job.parent_id === job.id) {
      state.retries.delete(job.id);
      updateItem(job.id, message.job);
    }
  });
  ws.addEventListener("close", () => {
    if (state.sockets.get(job.id) === ws) state.sockets.delete(job.id);
    const latest = state.jobs.get(job.id);
    if (!state.key || !latest || !ACTIVE.has(latest.status)) return;
    // Closed before the job ended (network, server restart): read its state, then follow it again.
    const attempt = (state.retries.get(job.id) || 0) + 1;
    state.retries.set(job.id, attempt);
    setTimeout(() => resync(job.id), Math.min(1000 * 2 ** (attempt - 1), 15_000));
  });
}

async function resync(id) {
  if (!state.key || state.sockets.has(id)) return;
  try {
    const job = remember(await api("GET", `/api/v1/jobs/${encodeURIComponent(id)}`));
    render();
    watch(job);
  } catch (err) {
    if (err.status === 401 || err.status === 404) {
      report(err);
      return;
    }
    const attempt = (state.retries.get(id) || 0) + 1;
    state.retries.set(id, attempt);
    setTimeout(() => resync(id), Math.min(1000 * 2 ** (attempt - 1), 15_000));
  }
}

// ---- rendering -----------------------------------------------------------------------------------------

function bytes(n) {
  if (n == null) return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = n;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value >= 100 || unit === 0 ? Math.round(value) : value.toFixed(1)} ${units[unit]}`;
}

function seconds(s) {
  if (s == null) return "";
  if (s < 60) return `${Math.max(1, Math.round(s))} s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m} min ${Math.round(s % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

function percentOf(job) {
  if (job.status === "done") return 100;
  const p = job.progress && job.progress.percent;
  return p == null ? null : Math.max(0, Math.min(100, p));
}

function titleOf(job) {
  return job.title || job.filename || job.url;
}

function safeLink(href) {
  try {
    const url = new URL(href, location.href);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

function playlistProgress(job) {
  const count = (status) => job.items.filter((item) => item.status === status).length;
  const parts = [`${count("done")} of ${job.items.length} done`];
  if (count("failed")) parts.push(`${count("failed")} failed`);
  if (count("cancelled")) parts.push(`${count("cancelled")} cancelled`);
  const pct = percentOf(job);
  if (ACTIVE.has(job.status) && pct != null) parts.push(`${pct.toFixed(0)}%`);
  return parts.join(" · ");
}

function progressWords(job) {
  if (job.items) return playlistProgress(job);
  const p = job.progress || {};
  const pct = percentOf(job);
  if (job.status === "queued") return "Waiting for a free downloader…";
  if (job.status === "done") return ["100%", bytes(job.filesize)].filter(Boolean).join(" · ");
  if (job.status !== "running") return pct == null ? "" : `Stopped at ${pct.toFixed(0)}%`;
  const parts = [];
  if (pct != null) parts.push(`${pct.toFixed(0)}%`);
  if (p.downloaded_bytes != null) parts.push(p.total_bytes ? `${bytes(p.downloaded_bytes)} of ${bytes(p.total_bytes)}` : bytes(p.downloaded_bytes));
  if (p.speed) parts.push(`${bytes(p.speed)}/s`);
  if (p.eta != null) parts.push(`about ${seconds(p.eta)} left`);
  return parts.join(" · ") || "Starting…";
}

// The status line (a live region) changes with the status only; progress is announced every tenth of
// the way in a second, silent-on-screen region, not on every tick.
function statusWords(job) {
  if (job.items && job.status === "running") return "Downloading the playlist…";
  if (job.items && job.status === "done") {
    const ready = job.items.filter((item) => item.status === "done" && item.file_url).length;
    return ready ? `Done: ${ready} file${ready === 1 ? " is" : "s are"} ready.` : "Done, but the files are no longer available.";
  }
  if (job.status === "running") return "Downloading…";
  if (job.status === "queued") return "Queued: waiting to start.";
  if (job.status === "done") return job.file_url ? "Done: your file is ready." : "Done, but the file is no longer available.";
  if (job.status === "failed") return `Failed: ${(job.error && job.error.message) || "the download did not finish."}`;
  return "Cancelled.";
}

function milestone(job) {
  const pct = percentOf(job);
  return job.status === "running" && pct != null && pct >= 10 ? `${Math.floor(pct / 10) * 10}% downloaded` : "";
}

function setBar(bar, job) {
  const pct = percentOf(job);
  if (pct == null) {
    if (ACTIVE.has(job.status)) bar.removeAttribute("value"); // indeterminate
  } else {
    bar.value = pct;
  }
}

function setDownload(link, job) {
  const href = job.status === "done" && job.file_url ? safeLink(job.file_url) : null;
  link.hidden = !href;
  if (href) {
    link.href = href;
    link.setAttribute("download", job.filename || "");
    link.dataset.jobId = job.id;
  } else {
    link.removeAttribute("href");
  }
}

function renderCurrent() {
  const panel = $("current");
  const job = state.current && state.jobs.get(state.current);
  panel.hidden = !job;
  if (!job) return;
  $("current-title").textContent = titleOf(job);
  $("current-url").textContent = job.url;
  setBar($("bar"), job);
  $("progress-text").textContent = progressWords(job);
  const said = statusWords(job);
  if (said !== $("status").textContent) $("status").textContent = said;
  const mark = milestone(job);
  if (mark !== state.announced) {
    state.announced = mark;
    $("progress-live").textContent = mark;
  }
  setDownload($("download"), job);
  const line = $("playlist-line");
  line.hidden = !job.playlist;
  line.textContent = job.playlist ? playlistLine(job) : "";
  const items = $("current-items");
  items.hidden = !job.items;
  syncRows(items, job.items || [], state.itemRows, fillItem);
  const cancelButton = $("cancel");
  cancelButton.hidden = !ACTIVE.has(job.status);
  cancelButton.dataset.jobId = job.id;
}

function when(iso) {
  const date = new Date(iso);
  const today = new Date().toDateString() === date.toDateString();
  const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return today ? time : `${date.toLocaleDateString()} ${time}`;
}

function makeRow(id) {
  const li = document.createElement("li");
  li.dataset.jobId = id;
  const title = document.createElement("span");
  title.className = "title";
  const meta = document.createElement("span");
  meta.className = "meta";
  const badge = document.createElement("span");
  const details = document.createElement("span");
  meta.append(badge, details);
  const bar = document.createElement("progress");
  bar.max = 100;
  const error = document.createElement("span");
  error.className = "job-error";
  const actions = document.createElement("div");
  actions.className = "actions";
  const link = document.createElement("a");
  link.className = "button download";
  link.textContent = "Save file";
  const stop = document.createElement("button");
  stop.type = "button";
  stop.className = "danger cancel";
  stop.textContent = "Cancel";
  stop.dataset.jobId = id;
  actions.append(link, stop);
  const items = document.createElement("ol");
  items.className = "items";
  items.hidden = true;
  li.append(title, meta, bar, error, actions, items);
  li.parts = { title, badge, details, bar, error, link, stop, items, itemRows: new Map() };
  return li;
}

// A playlist's item: like a job's row, without a Cancel of its own (the playlist's stops the rest).
function fillItem(li, job) {
  fillRow(li, job);
  li.parts.stop.hidden = true;
}

function fillRow(li, job) {
  const { title, badge, details, bar, error, link, stop, items, itemRows } = li.parts;
  li.dataset.status = job.status;
  title.textContent = titleOf(job);
  badge.className = `badge ${job.status}`;
  badge.textContent = STATUS_WORDS[job.status] || job.status;
  items.hidden = !job.items;
  syncRows(items, job.items || [], itemRows, fillItem);
  const what = job.playlist
    ? playlistLine(job)
    : job.kind === "audio" ? "Audio" : `Video, ${job.quality === "best" ? "best" : `${job.quality}p`}`;
  const pct = percentOf(job);
  const progress = job.status === "running" && pct != null ? `${pct.toFixed(0)}%` : "";
  details.textContent = " · " + [what, progress, bytes(job.filesize), job.cached ? "from cache" : "", when(job.created_at)].filter(Boolean).join(" · ");
  bar.hidden = !ACTIVE.has(job.status);
  bar.setAttribute("aria-label", `Progress of ${titleOf(job)}`);
  setBar(bar, job);
  error.hidden = !(job.status === "failed" && job.error);
  error.textContent = job.status === "failed" && job.error ? job.error.message : "";
  setDownload(link, job);
  link.setAttribute("aria-label", `Save ${titleOf(job)}`);
  stop.hidden = !ACTIVE.has(job.status);
  stop.setAttribute("aria-label", `Cancel ${titleOf(job)}`);
}

// Keeps `list` showing one row per job, in order, reusing the rows in `rows` (id -> <li>).
function syncRows(list, jobs, rows, fill) {
  const shown = new Set(jobs.map((job) => job.id));
  for (const [id, li] of rows) {
    if (!shown.has(id)) {
      li.remove();
      rows.delete(id);
    }
  }
  jobs.forEach((job, index) => {
    let li = rows.get(job.id);
    if (!li) {
      li = makeRow(job.id);
      rows.set(job.id, li);
    }
    fill(li, job);
    if (list.children[index] !== li) list.insertBefore(li, list.children[index] || null);
  });
}

function renderList() {
  const jobs = [...state.jobs.values()].sort((a, b) => b.created_at.localeCompare(a.created_at)).slice(0, RECENT_LIMIT);
  syncRows($("jobs"), jobs, state.rows, fillRow);
  $("recent-empty").hidden = jobs.length > 0;
}

function render() {
  renderCurrent();
  renderList();
}

// ---- wiring --------------------------------------------------------------------------------------------

async function followLink(event) {
  const link = event.target.closest("a.download, a#download");
  if (!link || !link.dataset.jobId) return;
  const id = link.dataset.jobId;
  if (Date.now() - (state.fetchedAt.get(id) || 0) < FRESH_LINK_MS) return; // the link is fresh: follow it
  // The link may have expired while the page sat open: ask for a fresh one first.
  event.preventDefault();
  try {
    const job = remember(await api("GET", `/api/v1/jobs/${encodeURIComponent(id)}`));
    render();
    const href = job.file_url && safeLink(job.file_url);
    if (href) location.assign(href);
    else showError("This file is no longer available.");
  } catch (err) {
    report(err);
  }
}

function start() {
  $("key-form").addEventListener("submit", saveKey);
  $("key-forget").addEventListener("click", () => {
    forgetKey();
    showError("");
    $("key-input").focus();
  });
  $("job-form").addEventListener("submit", submit);
  $("job-form").addEventListener("change", (event) => {
    if (event.target.name === "kind") $("quality-select").disabled = event.target.value === "audio";
  });
  $("refresh").addEventListener("click", refresh);
  $("cancel").addEventListener("click", (event) => cancel(event.currentTarget.dataset.jobId, event.currentTarget));
  $("jobs").addEventListener("click", (event) => {
    const button = event.target.closest("button.cancel");
    if (button) cancel(button.dataset.jobId, button);
  });
  document.addEventListener("click", followLink);

  // The browser may restore the form after a reload; the quality list follows the restored choice.
  $("quality-select").disabled = $("job-form").elements.kind.value === "audio";
  state.key = storedKey();
  showKeyState();
  render();
  if (state.key) refresh();
  document.documentElement.dataset.ready = "true";
}

start();
