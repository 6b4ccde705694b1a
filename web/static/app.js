// mediabot's page: the API key kept in localStorage, jobs through /api/v1, live progress over each active
// job's WebSocket. Two lists, each job in one of them: the Queue (queued and running) and Done (finished,
// failed or cancelled; searchable, paged). Plain DOM modules, no build step, nothing loaded from elsewhere.
// A playlist is one job with `items` (each a job of its own): its WebSocket sends the playlist, then each
// item's changes (`parent_id` = the playlist), then its end.
//
// Where things live (each module imports only those below it in this list):
//   app.js       this: wires each part to the page and starts
//   bulk.js      several at once in Done: delete ticked, retry failed, clear finished
//   subscriptions.js  the Subscriptions panel: channels followed, added and stopped (loaded with the lists)
//   admin.js     the Admin panel for admin keys: figures, bans, the queue by site (loaded with the lists)
//   actions.js   a row's buttons: save, copy link, cancel, retry, delete
//   picker.js    the New download form: links, kind, quality, formats and subtitles, Download
//   key.js       the API key: kept, proven, forgotten
//   history.js   loading the Queue and Done: pages, search, filters
//   live.js      live progress over WebSockets; reading a job again when its socket drops; "connection lost"
//   jobs.js      a job's new state: remembered, its row updated, read out
//   messages.js  the error line and what a screen reader reads out
//   lists.js     the Queue and Done on screen (rows.js draws one row)
//   state.js     what the page knows, and the rules for merging a job's states
//   api.js, rows.js, words.js: calls and sockets; one row; sizes, times and statuses in words

import { wireAdmin } from "./admin.js";
import { translatePage } from "./i18n.js";
import { hasKey } from "./api.js";
import { wireRows } from "./actions.js";
import { wireBulk } from "./bulk.js";
import { loadAll, wireHistory } from "./history.js";
import { forgetKey, restoreKey, wireKey } from "./key.js";
import { renderLists } from "./lists.js";
import { wireLive } from "./live.js";
import { onUnauthorized, report } from "./messages.js";
import { wirePicker } from "./picker.js";
import { wireSubscriptions } from "./subscriptions.js";

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
  translatePage();
  // The key is wrong or was revoked: ask for it again (the reason stays on screen).
  onUnauthorized(forgetKey);
  wireLive();
  wireKey();
  wirePicker();
  wireHistory();
  wireBulk();
  wireSubscriptions();
  wireAdmin();
  wireRows();
  wireMenus();
  restoreKey();
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
