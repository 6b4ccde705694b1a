// The Admin panel, for admin keys only (GET /api/v1/me says which): today's and the week's figures, who is
// banned (with Unban), a form to ban someone, and what runs and waits by site. Drawn with textContent only:
// reasons, sites and titles come from people and sites.

import { api } from "./api.js";
import { announce, report, showError } from "./messages.js";
import { $ } from "./state.js";
import { N_, t } from "./i18n.js";
import { bytes } from "./words.js";

// Labels are English ids (N_), translated where drawn; data-figure keeps the English one for tests and styles.
const FIGURES = [
  [N_("Requests"), (p) => String(p.requests)],
  [N_("Downloads"), (p) => String(p.downloads)],
  [N_("Cache hits"), (p) => String(p.cache_hits)],
  [N_("Downloaded"), (p) => bytes(p.bytes)],
  [N_("Failures"), (p) => Object.entries(p.failures).map(([code, n]) => `${code} ${n}`).join(", ") || t("none")],
  [N_("Top sites"), (p) => p.top_sites.map((s) => `${s.site} ${s.requests}`).join(", ") || t("none")],
  [N_("Busiest users"), (p) => p.busiest_users.map((u) => `${u.source}:${u.user_id} ${u.requests}`).join(", ") || t("none")],
];
const PERIOD_NAMES = { today: N_("Today (UTC)"), "7d": N_("Last 7 days") };

function cell(tag, text, attrs = {}) {
  const el = document.createElement(tag);
  el.textContent = text;
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, value);
  return el;
}

function renderStats(stats) {
  const head = document.createElement("tr");
  head.append(cell("th", ""), ...stats.periods.map((p) => cell("th", PERIOD_NAMES[p.name] ? t(PERIOD_NAMES[p.name]) : p.name, { scope: "col" })));
  const rows = FIGURES.map(([label, value]) => {
    const tr = document.createElement("tr");
    tr.dataset.figure = label;
    tr.append(cell("th", t(label), { scope: "row" }), ...stats.periods.map((p) => cell("td", value(p))));
    return tr;
  });
  $("admin-stats").replaceChildren(head, ...rows);
}

function renderBans(list) {
  $("admin-bans").replaceChildren(
    ...list.items.map((ban) => {
      const li = document.createElement("li");
      li.className = "sub";
      const who = `${ban.source}:${ban.user_id}`;
      const text = document.createElement("div");
      text.append(cell("span", who), cell("p", ban.reason || t("No reason given."), { class: "muted" }));
      const lift = cell("button", t("Unban"), { type: "button", class: "small", "aria-label": t("Unban {who}", { who }) });
      lift.addEventListener("click", () => unban(ban).catch(report));
      li.append(text, lift);
      return li;
    }),
  );
  $("admin-bans-empty").hidden = list.items.length > 0;
}

function renderQueue(queue) {
  $("admin-queue").replaceChildren(
    ...queue.sites.map((s) => cell("li", t("{site}: {running} running, {queued} waiting", { site: s.site, running: s.running, queued: s.queued }))),
  );
  $("admin-queue-empty").hidden = queue.sites.length > 0;
}

async function refresh() {
  const [stats, bans, queue] = await Promise.all([
    api("GET", "/api/v1/admin/stats"),
    api("GET", "/api/v1/admin/bans"),
    api("GET", "/api/v1/admin/queue"),
  ]);
  renderStats(stats);
  renderBans(bans);
  renderQueue(queue);
}

// Shows the panel for an admin key (and fills it), hides it for any other.
export async function loadAdmin() {
  const me = await api("GET", "/api/v1/me");
  $("admin-section").hidden = !me.admin;
  if (me.admin) await refresh();
}

async function unban(ban) {
  await api("DELETE", `/api/v1/admin/bans/${encodeURIComponent(ban.source)}/${encodeURIComponent(ban.user_id)}`);
  announce(t("{who} may use the service again.", { who: `${ban.source}:${ban.user_id}` }));
  await refresh();
}

async function ban(event) {
  event.preventDefault();
  const input = $("ban-user");
  const userId = input.value.trim();
  if (!userId) {
    showError(t("Enter the id of the person to ban."));
    input.focus();
    return;
  }
  const body = { source: $("ban-source").value, user_id: userId };
  const reason = $("ban-reason").value.trim();
  if (reason) body.reason = reason;
  $("ban-add").disabled = true;
  try {
    await api("POST", "/api/v1/admin/bans", body);
    input.value = "";
    $("ban-reason").value = "";
    showError("");
    announce(t("Banned {user_id}.", { user_id: `${body.source}:${body.user_id}` }));
    await refresh();
  } catch (err) {
    report(err);
    input.focus();
  } finally {
    $("ban-add").disabled = false;
  }
}

export function wireAdmin() {
  $("ban-form").addEventListener("submit", (event) => ban(event));
  $("admin-refresh").addEventListener("click", () => refresh().catch(report));
}
