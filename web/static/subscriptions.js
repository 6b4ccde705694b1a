// The Subscriptions panel: channels and playlists this key follows (each new video becomes a download in the
// Queue), added with a link, stopped with a button. Drawn with textContent only: titles come from sites.

import { t, tn } from "./i18n.js";
import { api } from "./api.js";
import { announce, report, showError } from "./messages.js";
import { $ } from "./state.js";

function describe(sub) {
  const unread = t("the channel could not be read");
  if (sub.paused) return t("Paused: {why}. Subscribe again to resume.", { why: sub.last_error || unread });
  if (!sub.checked_at) return t("Waiting for its first check.");
  const made = tn("{n} new video so far", "{n} new videos so far", sub.delivered);
  return t("Checked {time} · {made}", { time: new Date(sub.checked_at).toLocaleTimeString(), made });
}

function row(sub) {
  const li = document.createElement("li");
  li.className = "sub";
  li.dataset.id = sub.id;
  const text = document.createElement("div");
  const name = document.createElement("a");
  name.href = sub.url;
  name.rel = "noreferrer";
  name.textContent = sub.title || sub.url;
  name.dir = "auto";
  const state = document.createElement("p");
  state.className = sub.paused ? "muted paused" : "muted";
  state.textContent = (sub.kind === "audio" ? `${t("Audio")} · ` : "") + describe(sub);
  text.append(name, state);
  const stop = document.createElement("button");
  stop.type = "button";
  stop.className = "small";
  stop.textContent = "Stop";
  stop.setAttribute("aria-label", t("Stop following {name}", { name: sub.title || sub.url }));
  stop.addEventListener("click", () => unsubscribe(sub).catch(report));
  li.append(text, stop);
  return li;
}

function render(items) {
  $("subs").replaceChildren(...items.map(row));
  $("subs-empty").hidden = items.length > 0;
}

export async function loadSubscriptions() {
  const list = await api("GET", "/api/v1/subscriptions");
  render(list.items);
}

async function unsubscribe(sub) {
  await api("DELETE", `/api/v1/subscriptions/${sub.id}`);
  announce(t("Stopped following {name}.", { name: sub.title || sub.url }));
  await loadSubscriptions();
}

async function subscribe(event) {
  event.preventDefault();
  const input = $("sub-url");
  const url = input.value.trim();
  if (!url) {
    showError(t("Paste a channel or playlist link to follow."));
    input.focus();
    return;
  }
  $("sub-add").disabled = true;
  try {
    const kind = $("sub-audio").checked ? "audio" : "video";
    const sub = await api("POST", "/api/v1/subscriptions", { url, kind });
    input.value = "";
    showError("");
    announce(t("Following {name}: new videos will appear in the Queue.", { name: sub.title || sub.url }));
    await loadSubscriptions();
  } catch (err) {
    report(err);
    input.focus();
  } finally {
    $("sub-add").disabled = false;
  }
}

export function wireSubscriptions() {
  $("sub-form").addEventListener("submit", (event) => subscribe(event));
}
