// The New download form: one link or several, video or sound only, a quality cap or a file type, and for a
// single link a format and subtitles picked from what it offers (GET /api/v1/formats); Download starts them.

import { t, tn } from "./i18n.js";
import { ApiError, api } from "./api.js";
import { remember } from "./jobs.js";
import { renderLists } from "./lists.js";
import { watch } from "./live.js";
import { announce, announceJob, report, showError } from "./messages.js";
import { $, addToDone, state, store, stored } from "./state.js";
import { ENDED, clock, language } from "./words.js";

const AUDIO_FORMAT_STORAGE = "mediabot.audioFormat"; // the file type last chosen for sound only
// The sponsor choice last made: this browser's default for whole media (a part or a split is a cut already).
const SPONSOR_STORAGE = "mediabot.sponsorblock";
const MAX_LINKS = 10;

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
    showError(found.length ? t("Formats are chosen for one link at a time: leave a single link in the box.") : t("Paste a link first, then choose its format."));
    $("url-input").focus();
    return;
  }
  const button = $("formats-button");
  button.disabled = true;
  button.textContent = t("Checking the link…");
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
    button.textContent = t("Choose a format…");
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
    note.textContent = tn(
      "This link is a playlist of {n} item: it gets the best format up to the quality chosen.",
      "This link is a playlist of {n} items: each gets the best format up to the quality chosen.",
      data.playlist.count,
    );
    updateQuality();
    return;
  }
  const offered = data.formats.filter((f) => f.kind === kind);
  const keep = offered.some((f) => f.format_id === before) ? before : "";
  $("format-choices").replaceChildren(
    formatChoice("", kind === "audio" ? t("Best sound (automatic)") : t("Best up to the quality chosen (automatic)"), keep === ""),
    ...offered.map((f) => formatChoice(f.format_id, f.label + (f.filesize_estimated && !f.label.includes("~") ? " (estimated)" : ""), f.format_id === keep)),
  );
  $("format-field").hidden = false;
  if (!offered.length) {
    note.hidden = false;
    note.textContent = kind === "audio"
      ? t("This site offers no sound-only format: the sound is taken from the best video.")
      : t("This site lists no video formats: the best one is picked when downloading.");
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
  help.textContent = formatChosen ? t("The chosen format decides.") : "";
}

// ---- starting downloads --------------------------------------------------------------------------------

async function submit(event) {
  event.preventDefault();
  showError("");
  const found = links();
  if (!found.length) {
    showError(t("Paste a link to download."));
    $("url-input").focus();
    return;
  }
  if (found.length > MAX_LINKS) {
    showError(t("That is {n} links: start at most {max} at once.", { n: found.length, max: MAX_LINKS }));
    $("url-input").focus();
    return;
  }
  const kind = chosenKind();
  const base = { kind, quality: kind === "audio" ? "best" : $("quality-select").value };
  const audioFormat = $("audio-format-select").value;
  if (kind === "audio" && audioFormat) base.audio_format = audioFormat;
  // A part (From/To), each chapter as a file, sponsor segments: the server says which it can't combine.
  const start = $("start-input").value.trim();
  const end = $("end-input").value.trim();
  if (start || end) base.section = { ...(start ? { start } : {}), ...(end ? { end } : {}) };
  if ($("chapters-box").checked) base.split_chapters = true;
  const sponsors = $("sponsor-select").value;
  if (sponsors && !base.section && !base.split_chapters) base.sponsorblock = sponsors;
  const picked = state.formats && found.length === 1 && found[0] === state.formats.url && !$("formats-panel").hidden;
  if (picked) {
    const formatId = chosenFormat();
    if (formatId && !$("format-field").hidden) base.format_id = formatId;
    const subs = [...document.querySelectorAll("#subs-choices input:checked")].map((box) => box.value);
    if (subs.length && !$("subs-field").hidden) base.subtitles = subs;
  }
  const button = $("submit");
  button.disabled = true;
  button.textContent = found.length > 1 ? t("Starting {n} downloads…", { n: found.length }) : t("Starting…");
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
    if (!failed.length) {
      clearFormats();
      $("start-input").value = "";
      $("end-input").value = "";
    }
    if (failed.length) {
      if (failed.some((f) => f.err instanceof ApiError && f.err.status === 401)) {
        report(failed[0].err);
      } else if (found.length === 1) {
        report(failed[0].err);
      } else {
        const notStarted = t("could not start.");
        const lines = failed.map((f) => `${f.url}: ${f.err instanceof ApiError ? f.err.message : notStarted}`);
        showError(`${failed.length} of ${found.length} links did not start. ${lines.join(" ")}`);
      }
      $("url-input").focus();
    } else {
      announce(found.length > 1 ? t("{n} downloads started.", { n: found.length }) : t("Download started."));
    }
  } finally {
    button.disabled = false;
    button.textContent = t("Download");
  }
}

export function wirePicker() {
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
  $("sponsor-select").addEventListener("change", (event) => store(SPONSOR_STORAGE, event.target.value));

  const audioFormat = stored(AUDIO_FORMAT_STORAGE);
  if (audioFormat && [...$("audio-format-select").options].some((o) => o.value === audioFormat)) {
    $("audio-format-select").value = audioFormat;
  }
  const sponsors = stored(SPONSOR_STORAGE);
  if (sponsors !== null && [...$("sponsor-select").options].some((o) => o.value === sponsors)) {
    $("sponsor-select").value = sponsors;
  }
  // The browser may restore the form after a reload: the options follow what it restored.
  updateQuality();
}
