// What the page says about a job: sizes, durations, statuses and progress, in plain words.

import { N_, num, t, tn } from "./i18n.js";

export const ACTIVE = new Set(["queued", "running"]);
export const ENDED = new Set(["done", "failed", "cancelled"]);

const WORDS = { queued: t("Queued"), running: t("Downloading"), done: t("Done"), failed: t("Failed"), cancelled: t("Cancelled") };
export const STATUS_WORDS = WORDS;

const UNITS = [N_("{n} B"), N_("{n} KB"), N_("{n} MB"), N_("{n} GB"), N_("{n} TB")];

export function bytes(n) {
  if (n == null) return "";
  let value = n;
  let unit = 0;
  while (value >= 1000 && unit < UNITS.length - 1) {
    value /= 1000;
    unit += 1;
  }
  const shown = value >= 100 || unit === 0 ? Math.round(value) : Math.round(value * 10) / 10;
  return t(UNITS[unit], { n: num(shown, { maximumFractionDigits: 1 }) });
}

// "0:03", "12:05", "1:02:03": as players show a length.
export function clock(s) {
  if (s == null || !Number.isFinite(s)) return "";
  const total = Math.max(0, Math.round(s));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const sec = String(total % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
}

export function seconds(s) {
  if (s == null) return "";
  if (s < 60) return t("{s} s", { s: num(Math.max(1, Math.round(s))) });
  const m = Math.floor(s / 60);
  if (m < 60) return t("{min} min {s} s", { min: num(m), s: num(Math.round(s % 60)) });
  return t("{h} h {min} min", { h: num(Math.floor(m / 60)), min: num(m % 60) });
}

export function when(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const today = new Date().toDateString() === date.toDateString();
  const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return today ? time : `${date.toLocaleDateString()} ${time}`;
}

let languageNames = null;
try {
  languageNames = new Intl.DisplayNames(["en"], { type: "language" });
} catch {
  // an old browser: codes alone
}

// "English (en)", or the code alone when the browser does not know it.
export function language(code) {
  let name = null;
  try {
    name = languageNames && languageNames.of(code);
  } catch {
    name = null;
  }
  return name && name.toLowerCase() !== code.toLowerCase() ? `${name} (${code})` : code;
}

export function titleOf(job) {
  return job.title || job.filename || job.url;
}

export function percentOf(job) {
  if (job.status === "done") return 100;
  const p = job.progress && job.progress.percent;
  return p == null ? null : Math.max(0, Math.min(100, p));
}

// "Playlist: 10 of 143 items" (or "Playlist: 3 items" when that is all of it, or the size is unknown).
export function playlistLine(job) {
  const { count, total } = job.playlist;
  if (total && total > count) return tn("Playlist: {n} of {total} item", "Playlist: {n} of {total} items", total, { n: count, total });
  return tn("Playlist: {n} item", "Playlist: {n} items", count);
}

function playlistProgress(job) {
  const count = (status) => job.items.filter((item) => item.status === status).length;
  const parts = [t("{done} of {total} done", { done: num(count("done")), total: num(job.items.length) })];
  if (count("failed")) parts.push(t("{n} failed", { n: num(count("failed")) }));
  if (count("cancelled")) parts.push(t("{n} cancelled", { n: num(count("cancelled")) }));
  const pct = percentOf(job);
  if (ACTIVE.has(job.status) && pct != null) parts.push(t("{n}%", { n: num(Math.round(pct)) }));
  return parts.join(" · ");
}

// A queued job held back by its site's pacing (the same words as the chats, core/words.py).
export function waitingWords(job) {
  const site = job.waiting_for;
  if (job.ahead == null) return t("Waiting for {site}: it is refusing downloads for now, trying again later", { site });
  if (job.ahead === 0) return t("Waiting for {site}: you are next", { site });
  return tn("Waiting for {site}: {n} ahead of you", "Waiting for {site}: {n} ahead of you", job.ahead, { site, n: num(job.ahead) });
}

// `stale`: the page lost its connection, so the last state it heard may be long gone (a restarted server
// hands running downloads back to the queue): say so instead of a speed and a time left.
export function progressWords(job, stale = false) {
  const pct = percentOf(job);
  if (stale && ACTIVE.has(job.status)) {
    return pct ? t("Connection lost at {n}%: reconnecting…", { n: num(Math.round(pct)) }) : t("Connection lost: reconnecting…");
  }
  if (job.items) return playlistProgress(job);
  const p = job.progress || {};
  if (job.status === "queued" && job.waiting_for) return waitingWords(job);
  if (job.status === "queued") return t("Waiting for a free downloader…");
  if (job.status === "done") return "";
  if (job.status !== "running") return pct ? t("Stopped at {n}%", { n: num(Math.round(pct)) }) : "";
  const parts = [];
  if (pct != null) parts.push(t("{n}%", { n: num(Math.round(pct)) }));
  if (p.downloaded_bytes != null) {
    parts.push(p.total_bytes ? t("{done} of {total}", { done: bytes(p.downloaded_bytes), total: bytes(p.total_bytes) }) : bytes(p.downloaded_bytes));
  }
  if (p.speed) parts.push(t("{size}/s", { size: bytes(p.speed) }));
  if (p.eta != null) parts.push(t("about {duration} left", { duration: seconds(p.eta) }));
  return parts.join(" · ") || t("Starting…");
}

// File types that hold sound only: such a file is "Audio" whatever was asked for (a feed of MP3s fetched as
// video gives MP3s).
const AUDIO_EXTS = new Set(["mp3", "m4a", "opus", "ogg", "oga", "aac", "flac", "wav", "wma", "weba"]);

// "Video 240p", "Audio mp3": what came out once known, else what was asked for.
export function whatWords(job) {
  const ext = (job.ext || "").toLowerCase();
  if (job.kind === "audio" || (AUDIO_EXTS.has(ext) && !job.height)) return [t("Audio"), ext].filter(Boolean).join(" ");
  const height = job.height ? `${job.height}p` : job.quality === "best" || !job.quality ? "" : t("up to {height}p", { height: job.quality });
  return [t("Video"), height].filter(Boolean).join(" ");
}

// A link as a person reads it: no scheme, no "www.", split into a head that may be cut short on a narrow
// screen ("example.com/videos/…") and a tail that always shows ("clip-3.mp4?v=2", at most `tail` chars),
// as the end is often the only part that tells two links apart.
export function linkParts(href, tail = 28) {
  let url;
  try {
    url = new URL(href);
  } catch {
    return { head: "", tail: href };
  }
  const host = url.host.replace(/^www\./, "");
  const path = url.pathname === "/" ? "" : url.pathname;
  const cut = path.lastIndexOf("/");
  let end = `${path.slice(cut + 1)}${url.search}`;
  if (end.length > tail) end = `…${end.slice(-(tail - 1))}`;
  return { head: host + path.slice(0, cut + 1), tail: end };
}

export function shortLink(href) {
  const { head, tail } = linkParts(href);
  return head + tail;
}

// Whether the job has stored files that deleting it removes (a failed or cancelled one has none).
export function hasFile(job) {
  if (job.items) return job.items.some(hasFile);
  return job.status === "done" && Boolean(job.file_url || (job.parts && job.parts.length));
}

// A row's second line: what it is, how long and big, whose, and when.
export function detailsWords(job) {
  if (job.playlist) return [playlistLine(job), job.kind === "audio" ? t("Audio") : "", when(job.created_at)].filter(Boolean);
  return [
    whatWords(job),
    clock(job.duration),
    bytes(job.filesize),
    job.uploader ? t("by {name}", { name: job.uploader }) : "",
    cutWords(job),
    job.cached ? t("from cache") : "",
    when(job.created_at),
  ].filter(Boolean);
}

// A clip's part, a split's or a file's chapters, what sponsor removal did ("clip 0:05-0:09", "3 chapters").
function cutWords(job) {
  const words = [];
  const clip = /^(clip|gif):([\d.]+)-([\d.]*)$/.exec(job.variant || "");
  if (clip) words.push(`${clip[1] === "gif" ? "animation" : "clip"} ${clock(Number(clip[2])) || "0:00"}-${clip[3] ? clock(Number(clip[3])) : "end"}`);
  if (job.chapters) words.push(tn("{n} chapter", "{n} chapters", job.chapters, { n: num(job.chapters) }));
  if (job.note) words.push(t(job.note));
  return words.join(" · ");
}

// One sentence when subtitles asked for are not there (a job never fails for that).
export function missingSubtitles(job) {
  const missing = job.subtitles_missing || [];
  if (!missing.length || job.status !== "done") return "";
  const names = missing.map(language);
  return `No subtitles in ${names.join(", ")}: the media does not have ${missing.length === 1 ? "them" : "those"}.`;
}

// What a screen reader hears when a job changes status.
export function statusSentence(job) {
  const title = titleOf(job);
  if (job.status === "running") return t("{title}: downloading.", { title });
  if (job.status === "queued") return t("{title}: queued.", { title });
  if (job.status === "done") return job.items ? t("{title}: playlist done.", { title }) : t("{title}: done, the file is ready.", { title });
  if (job.status === "failed") return `${t("{title}: failed.", { title })} ${(job.error && job.error.message) || ""}`.trim();
  return t("{title}: cancelled.", { title });
}
