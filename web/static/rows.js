// One job as a compact list entry: built once, then updated in place on every change (so focus and a
// half-read line stay where they are). Text from the API is only ever set with textContent, never parsed
// as HTML. Buttons carry data-action; app.js handles their clicks for every list at once.
//
//   [x] [thumb] Title……………………………………………   [Save] […]
//               Video 240p · 0:03 · 254 KB · example.com/…/clip-3.mp4
//               (progress bar and words while it runs; the error when it failed; a playlist's items)

import { t } from "./i18n.js";
import {
  ACTIVE,
  ENDED,
  STATUS_WORDS,
  detailsWords,
  hasFile,
  missingSubtitles,
  percentOf,
  linkParts,
  progressWords,
  shortLink,
  titleOf,
} from "./words.js";

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

// A link's text in two parts, so CSS can cut the head and keep the tail (words.js linkParts). Rebuilt only
// when the link changes.
function setLinkText(node, href, tailLength = 28) {
  if (node.dataset.link === href) return;
  node.dataset.link = href;
  const { head, tail } = linkParts(href, tailLength);
  node.replaceChildren(el("span", "head", head), el("span", "tail", tail));
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
  const pick = el("input", "pick");
  pick.type = "checkbox";
  pick.dataset.action = "pick";
  pick.hidden = true;
  const thumb = el("img", "thumb");
  thumb.alt = "";
  thumb.decoding = "async";
  thumb.loading = "lazy";
  thumb.referrerPolicy = "no-referrer";
  thumb.hidden = true;
  thumb.addEventListener("error", () => {
    thumb.hidden = true;
    li.classList.remove("has-thumb");
  });
  const body = el("div", "body");
  const title = el(kind === "top" ? "h3" : "h4", "title");
  // A title may be Latin, Persian or a bare link: each keeps its own direction on a right-to-left page.
  title.dir = "auto";
  const meta = el("p", "meta");
  const badge = el("span", "badge");
  const details = el("span", "details");
  const source = el("a", "source");
  source.dir = "ltr"; // a link reads left to right in every language ("127.0.0.1/x.html", not "x.html/127...")
  source.target = "_blank";
  source.rel = "noopener noreferrer";
  source.referrerPolicy = "no-referrer";
  meta.append(badge, details, source);
  const progressLine = el("div", "progress-line");
  const bar = el("progress");
  bar.max = 100;
  const words = el("span", "progress-words");
  progressLine.append(bar, words);
  const error = el("p", "job-error");
  const note = el("p", "note");
  const files = el("p", "files"); // subtitles and parts: links of their own
  const items = el("ol", "items");
  items.hidden = true;
  body.append(title, meta, progressLine, error, note, files, items);

  const actions = el("div", "actions");
  const save = el("a", "button download primary", t("Save"));
  save.dataset.action = "save";
  const cancel = button("cancel", t("Cancel"), "danger cancel");
  const retry = button("retry", t("Retry"), "retry");
  // Less used actions behind one small button, so a row stays one line of buttons on a phone.
  const more = el("details", "more");
  const summary = el("summary", "button", "…");
  const menu = el("div", "menu");
  const copy = button("copy", t("Copy link"), "copy");
  const remove = button("delete", t("Delete"), "danger delete");
  menu.append(copy, remove);
  more.append(summary, menu);
  actions.append(save, cancel, retry, more);
  li.append(pick, thumb, body, actions);
  li.parts = {
    kind, pick, thumb, title, badge, details, source, progressLine, bar, words, error, note, files, items,
    save, cancel, retry, more, summary, copy, remove, itemRows: new Map(),
  }; // prettier-ignore
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
function setFiles(holder, job) {
  const links = [];
  if (job.status === "done") {
    for (const part of job.parts || []) {
      const href = part.file_url && safeLink(part.file_url);
      if (href) links.push({ href, text: t("Part {n}", { n: part.index }), name: part.filename, label: t("Save part {n} of {title}", { n: part.index, title: titleOf(job) }) });
    }
    for (const sub of job.subtitles || []) {
      const href = sub.url && safeLink(sub.url);
      if (href) links.push({ href, text: t("Subtitles ({lang})", { lang: sub.lang }), name: sub.filename, label: t("Save the {lang} subtitles of {title}", { lang: sub.lang, title: titleOf(job) }), lang: sub.lang });
    }
  }
  const signature = JSON.stringify(links.map((l) => [l.text, l.name]));
  holder.hidden = !links.length;
  if (holder.dataset.signature === signature) return;
  holder.dataset.signature = signature;
  holder.replaceChildren(
    ...links.map((l) => {
      const a = el("a", "subtitle", l.text);
      a.href = l.href;
      a.setAttribute("download", l.name || "");
      a.setAttribute("aria-label", l.label);
      if (l.lang) a.dataset.lang = l.lang;
      return a;
    }),
  );
}

// `stale`: the connection that followed this job was lost (words.js progressWords).
export function fillRow(li, job, { selected = false, stale = false } = {}) {
  const p = li.parts;
  const top = p.kind === "top";
  const active = ACTIVE.has(job.status);
  const name = titleOf(job);
  const untitled = name === job.url;
  li.dataset.status = job.status;
  li.classList.toggle("stale", stale && active);
  // No title yet (or none at all): the link stands for it.
  p.title.classList.toggle("split", untitled);
  if (untitled) setLinkText(p.title, job.url, 16); // beside the buttons: less room
  else if (p.title.textContent !== name || p.title.dataset.link) {
    delete p.title.dataset.link;
    p.title.textContent = name;
  }
  p.title.title = name;

  // Done needs no word (the Done list says it); a running job shows its bar instead.
  const badge = job.status === "done" || (job.status === "running" && !job.items) ? "" : STATUS_WORDS[job.status] || job.status;
  p.badge.className = `badge ${job.status}`;
  p.badge.textContent = badge;
  p.badge.hidden = !badge;
  p.details.textContent = detailsWords(job).join(" · ");
  const href = !untitled && safeLink(job.url);
  p.source.hidden = !href;
  if (href) {
    if (p.source.href !== href) p.source.href = href;
    setLinkText(p.source, job.url);
    p.source.title = job.url;
    p.source.setAttribute("aria-label", t("Source page: {link}", { link: shortLink(job.url) }));
  }

  const thumbUrl = job.thumbnail_url && safeLink(job.thumbnail_url);
  // Set once: the link is signed again with every message, and a new src would fetch the picture again.
  if (thumbUrl && !p.thumb.dataset.set) {
    p.thumb.dataset.set = "true";
    p.thumb.src = thumbUrl;
    p.thumb.hidden = false;
  }
  li.classList.toggle("has-thumb", !p.thumb.hidden);

  const words = progressWords(job, stale);
  p.progressLine.hidden = !active && !words;
  p.bar.hidden = !active;
  p.bar.setAttribute("aria-label", t("Progress of {name}", { name }));
  setBar(p.bar, job);
  p.words.textContent = words;

  const failed = job.status === "failed" && job.error;
  p.error.hidden = !failed;
  p.error.textContent = failed ? t(job.error.message) : "";
  const missing = missingSubtitles(job);
  p.note.hidden = !missing;
  p.note.textContent = missing;

  const saved = setSave(p.save, job);
  p.save.setAttribute("aria-label", t("Save {name}", { name }));
  setFiles(p.files, job);
  p.cancel.hidden = !(top && active);
  p.cancel.setAttribute("aria-label", t("Cancel {name}", { name }));
  p.retry.hidden = !(top && (job.status === "failed" || job.status === "cancelled"));
  p.retry.setAttribute("aria-label", t("Retry {name}", { name }));
  p.copy.hidden = !saved;
  p.copy.setAttribute("aria-label", t("Copy the link to {name}", { name }));
  const deletable = top && ENDED.has(job.status);
  p.remove.hidden = !deletable;
  // Only a job with a file has one to delete.
  p.remove.setAttribute("aria-label", hasFile(job) ? t("Delete {name} and its file", { name }) : t("Delete {name}", { name }));
  p.more.hidden = p.copy.hidden && p.remove.hidden;
  if (p.more.hidden) p.more.open = false;
  p.summary.setAttribute("aria-label", t("More for {name}", { name }));

  p.pick.hidden = !deletable;
  p.pick.checked = deletable && selected;
  p.pick.setAttribute("aria-label", t("Select {name}", { name }));

  p.items.hidden = !job.items;
  if (job.items) {
    p.items.setAttribute("aria-label", t("Items of {name}", { name }));
    syncRows(p.items, job.items, p.itemRows, "item", { stale });
  }
}

// Keeps `list` showing one row per job, in order, reusing the rows in `rows` (id -> <li>); `options(job)`
// gives fillRow's options for each. With `prune` false, rows of jobs not in `jobs` are left for the caller
// (a row moving from one list to another shares one map, and moves as the same element).
export function syncRows(list, jobs, rows, kind = "top", options = {}, prune = true) {
  const optionsOf = typeof options === "function" ? options : () => options;
  if (prune) {
    const shown = new Set(jobs.map((job) => job.id));
    for (const [id, li] of rows) {
      if (!shown.has(id)) {
        li.remove();
        rows.delete(id);
      }
    }
  }
  jobs.forEach((job, index) => {
    let li = rows.get(job.id);
    if (!li) {
      li = makeRow(job.id, kind);
      rows.set(job.id, li);
    }
    fillRow(li, job, optionsOf(job));
    if (list.children[index] !== li) list.insertBefore(li, list.children[index] || null);
  });
}
