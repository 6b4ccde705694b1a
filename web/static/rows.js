// One job as a list entry: built once, then updated in place on every change (so focus and a half-read
// line stay where they are). Text from the API is only ever set with textContent, never parsed as HTML.
// Buttons carry data-action; app.js handles their clicks for every list at once.

import { ACTIVE, STATUS_WORDS, detailsWords, missingSubtitles, percentOf, progressWords, titleOf } from "./words.js";

export function safeLink(href) {
  try {
    const url = new URL(href, location.href);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text) node.textContent = text;
  return node;
}

function button(action, text, className = "") {
  const node = el("button", className, text);
  node.type = "button";
  node.dataset.action = action;
  return node;
}

// `kind`: "top" (a job you submitted) or "item" (a playlist's entry: no cancel, retry or delete of its own).
export function makeRow(id, kind = "top") {
  const li = el("li", "job");
  li.dataset.jobId = id;
  const thumb = el("img", "thumb");
  thumb.alt = "";
  thumb.decoding = "async";
  thumb.loading = "lazy";
  thumb.referrerPolicy = "no-referrer";
  thumb.hidden = true;
  thumb.addEventListener("error", () => {
    thumb.hidden = true;
  });
  const body = el("div", "body");
  const title = el(kind === "top" ? "h3" : "h4", "title");
  const meta = el("p", "meta");
  const badge = el("span", "badge");
  const details = el("span", "details");
  meta.append(badge, details);
  const progressLine = el("div", "progress-line");
  const bar = el("progress");
  bar.max = 100;
  const words = el("span", "progress-words");
  progressLine.append(bar, words);
  const error = el("p", "job-error");
  const note = el("p", "note");
  const actions = el("div", "actions");
  const save = el("a", "button download primary", "Save file");
  save.dataset.action = "save";
  const copy = button("copy", "Copy link", "copy");
  const files = el("span", "files"); // subtitles and parts: links of their own
  const cancel = button("cancel", "Cancel", "danger cancel");
  const retry = button("retry", "Retry", "retry");
  const remove = button("delete", "Delete", "danger delete");
  actions.append(save, copy, files, cancel, retry, remove);
  const items = el("ol", "items");
  items.hidden = true;
  body.append(title, meta, progressLine, error, note, actions, items);
  li.append(thumb, body);
  li.parts = { kind, thumb, title, badge, details, progressLine, bar, words, error, note, save, copy, files, cancel, retry, remove, items, itemRows: new Map() };
  return li;
}

function setBar(bar, job) {
  const pct = percentOf(job);
  if (pct == null) {
    if (ACTIVE.has(job.status)) bar.removeAttribute("value"); // indeterminate
  } else if (bar.value !== pct) {
    bar.value = pct;
  }
}

function setSave(link, job) {
  const href = job.status === "done" && job.file_url && !job.items ? safeLink(job.file_url) : null;
  link.hidden = !href;
  if (href) {
    if (link.href !== href) link.href = href;
    link.setAttribute("download", job.filename || "");
  } else {
    link.removeAttribute("href");
  }
  return Boolean(href);
}

// Subtitle files and file parts, as links; rebuilt only when what they point at changes.
function setFiles(span, job) {
  const links = [];
  if (job.status === "done") {
    for (const part of job.parts || []) {
      const href = part.file_url && safeLink(part.file_url);
      if (href) links.push({ href, text: `Part ${part.index}`, name: part.filename, label: `Save part ${part.index} of ${titleOf(job)}` });
    }
    for (const sub of job.subtitles || []) {
      const href = sub.url && safeLink(sub.url);
      if (href) links.push({ href, text: `Subtitles (${sub.lang})`, name: sub.filename, label: `Save the ${sub.lang} subtitles of ${titleOf(job)}`, lang: sub.lang });
    }
  }
  const signature = JSON.stringify(links.map((l) => [l.text, l.name]));
  span.hidden = !links.length;
  if (span.dataset.signature === signature) return;
  span.dataset.signature = signature;
  span.replaceChildren(
    ...links.map((l) => {
      const a = el("a", "button subtitle", l.text);
      a.href = l.href;
      a.setAttribute("download", l.name || "");
      a.setAttribute("aria-label", l.label);
      if (l.lang) a.dataset.lang = l.lang;
      return a;
    }),
  );
}

export function fillRow(li, job) {
  const p = li.parts;
  const name = titleOf(job);
  li.dataset.status = job.status;
  if (p.title.textContent !== name) p.title.textContent = name;
  p.badge.className = `badge ${job.status}`;
  p.badge.textContent = STATUS_WORDS[job.status] || job.status;
  p.details.textContent = detailsWords(job).map((part) => ` · ${part}`).join("");

  const thumbUrl = job.thumbnail_url && safeLink(job.thumbnail_url);
  // Set once: the link is signed again with every message, and a new src would fetch the picture again.
  if (thumbUrl && !p.thumb.dataset.set) {
    p.thumb.dataset.set = "true";
    p.thumb.src = thumbUrl;
    p.thumb.hidden = false;
  }
  li.classList.toggle("has-thumb", !p.thumb.hidden);

  const active = ACTIVE.has(job.status);
  const words = progressWords(job);
  p.progressLine.hidden = !active && !words;
  p.bar.hidden = !active;
  p.bar.setAttribute("aria-label", `Progress of ${name}`);
  setBar(p.bar, job);
  p.words.textContent = words;

  const failed = job.status === "failed" && job.error;
  p.error.hidden = !failed;
  p.error.textContent = failed ? job.error.message : "";
  const missing = missingSubtitles(job);
  p.note.hidden = !missing;
  p.note.textContent = missing;

  const saved = setSave(p.save, job);
  p.save.setAttribute("aria-label", `Save ${name}`);
  p.copy.hidden = !saved;
  p.copy.setAttribute("aria-label", `Copy the link to ${name}`);
  setFiles(p.files, job);
  const top = p.kind === "top";
  p.cancel.hidden = !(top && active);
  p.cancel.setAttribute("aria-label", `Cancel ${name}`);
  p.retry.hidden = !(top && (job.status === "failed" || job.status === "cancelled"));
  p.retry.setAttribute("aria-label", `Retry ${name}`);
  p.remove.hidden = !(top && !active);
  p.remove.setAttribute("aria-label", `Delete ${name} and its file`);

  p.items.hidden = !job.items;
  if (job.items) {
    p.items.setAttribute("aria-label", `Items of ${name}`);
    syncRows(p.items, job.items, p.itemRows, "item");
  }
}

// Keeps `list` showing one row per job, in order, reusing the rows in `rows` (id -> <li>).
export function syncRows(list, jobs, rows, kind = "top") {
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
      li = makeRow(job.id, kind);
      rows.set(job.id, li);
    }
    fillRow(li, job);
    if (list.children[index] !== li) list.insertBefore(li, list.children[index] || null);
  });
}
