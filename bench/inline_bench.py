"""Inline mode benchmark: how long "@bot LINK" takes to be answered, from the moment the fake Bot API server
hands out the inline query (getUpdates) to the bot's answerInlineQuery arriving there, through the real
python-telegram-bot client, the bot's handlers and the embedded services (SQLite), one query at a time.

Two cases: a cached link (the delivery cache holds a file_id for the person's default variant: the answer is
that file) and an uncached one (the answer is the "Download and send here" article). No media is downloaded:
the cached file_id is put in the cache directly, as an earlier delivery would have.

    .venv/bin/python bench/inline_bench.py [--runs 50]

Figures: see bench/README.md ("Inline mode").
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bots.telegram.runner import running  # noqa: E402
from core.delivery.filecache import DeliveryRef, variant_key  # noqa: E402
from tests.fakes.telegram import FakeTelegram  # noqa: E402
from tests.support.services import make_settings, running_services  # noqa: E402


async def measure(tg: FakeTelegram, url: str) -> float:
    """Milliseconds from the query's push to the answer's arrival."""
    pushed = time.monotonic()
    query = tg.inline_query(url)
    answer = await tg.inline_answer(query, timeout=30)
    return (answer.at - pushed) * 1000


async def main(runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        tg = FakeTelegram(root / "telegram")
        await tg.start()
        try:
            settings = make_settings(
                root, telegram_token=tg.token, telegram_api_url=tg.api_url, telegram_storage_chat=-100900,
                shutdown_grace_s=0, log_level="WARNING",
            )  # fmt: skip
            async with running_services(settings, worker=False) as services, running(services):
                cached_url = f"https://media.example/v/{uuid.uuid4().hex[:8]}.mp4"
                key = variant_key(cached_url, "video", "best", playable=settings.chat_playable)
                file_id = f"video-{uuid.uuid4().hex}"
                tg.files[file_id] = root / "telegram" / "uploads" / "placeholder.mp4"
                await services.deliveries.put("telegram", key, DeliveryRef(file_id, "video"))
                for _ in range(3):  # warm-up: first queries import and connect
                    await measure(tg, cached_url)
                figures: dict[str, list[float]] = {"cached": [], "uncached": []}
                for _ in range(runs):
                    figures["cached"].append(await measure(tg, cached_url))
                    fresh = f"https://media.example/v/{uuid.uuid4().hex[:8]}.mp4"
                    figures["uncached"].append(await measure(tg, fresh))
                assert tg.inline_answers, "no answers"
                kinds = {c["results"][0]["type"] for c in tg.inline_answers.values() if c["results"]}
                assert kinds == {"video", "article"}, kinds
        finally:
            await tg.stop()
    for name, values in figures.items():
        values.sort()
        p95 = values[max(0, int(len(values) * 0.95) - 1)]
        print(
            f"inline answer, {name:8} link: median {statistics.median(values):6.1f} ms  "
            f"p95 {p95:6.1f} ms  (min {values[0]:.1f}, max {values[-1]:.1f}, n={len(values)})"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(main(args.runs))
