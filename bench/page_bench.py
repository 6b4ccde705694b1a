"""The web page's own figures, in Debian's headless Chromium (Playwright) against the embedded app on
127.0.0.1 and the test media site; prints medians and stops.

1. Page load in a fresh browser profile with the key stored: DOM interactive, DOMContentLoaded, load, and
   "ready" (the page's scripts ran and its first API answers are on screen: downloads in progress and the first
   history page), with an empty history and with `--history` finished jobs in it.
2. Submit -> first progress frame: from the form's submit event to the first WebSocket message of the new job,
   both on the page's own clock (performance.now()); also submit -> card on screen, and -> "done" shown, for a
   0.25 MB clip on a warm worker.

    .venv/bin/python bench/page_bench.py [--runs 9] [--history 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shutil
import statistics
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

HARD_LIMIT_S = 300

# Runs before the page's own scripts (CDP, so the page's CSP does not apply): timestamps of WebSocket
# messages and of the form's submit event, on the page's clock.
PROBE = """
(() => {
  window.__bench = { frames: [], submitted: null };
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", (event) => {
        window.__bench.frames.push([performance.now(), event.data]);
      });
    }
  };
  document.addEventListener("submit", (event) => {
    if (event.target.id === "job-form") window.__bench.submitted = performance.now();
  }, true);
})();
"""

READY = "() => document.documentElement.dataset.ready === 'true'"
TIMES = """(() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const ready = performance.getEntriesByName('mediabot:ready')[0];
  return [nav.domInteractive, nav.domContentLoadedEventEnd, nav.loadEventEnd, ready ? ready.startTime : null];
})()"""


def median(values: list[float]) -> float:
    return statistics.median(values)


async def page_loads(browser: Any, base: str, key: str, runs: int) -> dict[str, float]:
    from tests.browser.conftest import DESKTOP

    rows: list[list[float]] = []
    for _ in range(runs + 1):
        context = await browser.new_context(viewport=DESKTOP)
        await context.add_init_script(f"localStorage.setItem('mediabot.apiKey', {json.dumps(key)})")
        page = await context.new_page()
        await page.goto(base + "/")
        await page.wait_for_function(READY, timeout=20_000)
        await page.wait_for_function("() => performance.getEntriesByType('navigation')[0].loadEventEnd > 0")
        rows.append(await page.evaluate(TIMES))
        await context.close()
    rows = rows[1:]  # the first warms the browser's own caches and the server's code paths
    names = ("dom_interactive", "dom_content_loaded", "load", "ready")
    return {name: median([row[i] for row in rows]) for i, name in enumerate(names)}


async def submit_to_progress(browser: Any, base: str, key: str, site: Any, runs: int) -> dict[str, float]:
    from tests.browser.conftest import PHONE

    context = await browser.new_context(viewport=PHONE)
    await context.add_init_script(f"localStorage.setItem('mediabot.apiKey', {json.dumps(key)})")
    await context.add_init_script(PROBE)
    page = await context.new_page()
    await page.goto(base + "/")
    await page.wait_for_function(READY, timeout=20_000)
    first, card, done = [], [], []
    known: list[str] = []
    for run in range(runs + 1):
        await page.evaluate("window.__bench.frames = []; window.__bench.submitted = null")
        rows = "#queue > li.job, #done > li.job"
        before = await page.locator(rows).count()
        await page.fill("#url-input", site.url(f"/clip/page-bench-{uuid.uuid4().hex[:10]}.mp4"))
        await page.click("#submit")
        await page.wait_for_function(
            f"() => document.querySelectorAll('{rows}').length > {before}", timeout=20_000
        )
        shown_at = await page.evaluate("performance.now()")
        # The new card is on top of the Queue, or already in Done when the clip was that quick.
        job_id = await page.evaluate(
            "(known) => [...document.querySelectorAll('#queue > li.job, #done > li.job')]"
            ".map((li) => li.dataset.jobId).find((id) => !known.includes(id))",
            known,
        )
        known.append(job_id)
        top = page.locator(f"li.job[data-job-id='{job_id}']")
        await page.wait_for_function(
            "(li) => li.dataset.status === 'done'", arg=await top.element_handle(), timeout=30_000
        )
        done_at = await page.evaluate("performance.now()")
        bench = await page.evaluate("window.__bench")
        frames = [at for at, data in bench["frames"] if json.loads(data).get("job", {}).get("id") == job_id]
        if run == 0:
            continue  # the first job also warms the worker's yt-dlp
        submitted = bench["submitted"]
        first.append(min(frames) - submitted)
        card.append(shown_at - submitted)
        done.append(done_at - submitted)
    await context.close()
    return {"first_frame": median(first), "card_upper": median(card), "done_upper": median(done)}


async def main(args: argparse.Namespace) -> None:
    from playwright.async_api import async_playwright

    from core.jobs.choices import SubmitRequest
    from tests.browser.conftest import CHROMIUM_ARGS
    from tests.support.media import generate_media
    from tests.support.media_site import MediaSite
    from tests.support.services import make_settings, running_services
    from web.server import serving

    logging.basicConfig(level=logging.WARNING)
    for noisy in ("taskiq", "web.access", "worker.runner"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    files = generate_media()
    with tempfile.TemporaryDirectory(prefix="mediabot-page-bench-") as tmp:
        from bench.web_bench import free_port

        settings = make_settings(
            Path(tmp), port=free_port(), api_rate_per_minute=100_000, api_calls_per_minute=1_000_000,
            worker_concurrency=2, log_level="WARNING",
        )  # fmt: skip
        async with (
            MediaSite(files) as site,
            running_services(settings) as services,
            serving(services),
            async_playwright() as pw,
        ):
            base = f"http://127.0.0.1:{settings.port}"
            browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            try:
                _, empty_key = await services.keys.create("page-bench-empty")
                _, full_key = await services.keys.create("page-bench-history")
                full = await services.keys.verify(full_key)
                assert full is not None
                ids = []
                for i in range(args.history):
                    url = site.url(f"/clip/page-history-{i}-{uuid.uuid4().hex[:6]}.mp4")
                    ids.append(
                        (
                            await services.jobs.submit(SubmitRequest(text=url, source="api", user_id=full.id))
                        ).job.id
                    )
                for job_id in ids:
                    await services.jobs.wait(job_id, timeout=60)
                empty = await page_loads(browser, base, empty_key, args.runs)
                loaded = await page_loads(browser, base, full_key, args.runs)
                submit = await submit_to_progress(browser, base, empty_key, site, args.runs)
            finally:
                await browser.close()
    print(f"page bench: chromium headless, {args.runs} runs each (medians), embedded app on 127.0.0.1")
    for name, figures in (("empty history", empty), (f"{args.history} jobs in history", loaded)):
        print(
            f"page load, {name}: DOM interactive {figures['dom_interactive']:.0f} ms, DOMContentLoaded "
            f"{figures['dom_content_loaded']:.0f} ms, load {figures['load']:.0f} ms, ready (first answers on "
            f"screen) {figures['ready']:.0f} ms"
        )
    print(
        f"submit -> first progress frame {submit['first_frame']:.0f} ms; card on screen <= "
        f"{submit['card_upper']:.0f} ms; done shown <= {submit['done_upper']:.0f} ms (0.25 MB clip)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--history", type=int, default=60)
    parsed = parser.parse_args()

    async def bounded() -> None:
        await asyncio.wait_for(main(parsed), timeout=HARD_LIMIT_S)

    asyncio.run(bounded())
