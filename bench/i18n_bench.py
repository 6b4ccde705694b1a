"""Languages benchmark (issue 24): what one sentence costs through the catalogs, per message a bot sends.

    .venv/bin/python bench/i18n_bench.py [--runs 7] [--n 20000]

Measures, in one process, the median of --runs runs of --n calls each (microseconds per call):
- English `_()` (the identity path) and Russian `_()` of a fixed sentence (a dict lookup in the compiled catalog);
- a plural with formatting: `ngettext(...).format(n=...)` in Russian and Arabic;
- a whole progress line in English and in German (core.words.progress_line: percent, sizes, speed, ETA:
  several sentences, Babel's number formatting for German);
- compiling one catalog from its .po (done once per process and language; `preload()` does all at start).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core import i18n  # noqa: E402
from core.i18n import _, ngettext, use  # noqa: E402
from core.jobs.views import JobView, Progress  # noqa: E402
from core.words import progress_line  # noqa: E402


def per_call_us(fn, n: int, runs: int) -> float:
    samples = []
    for _run in range(runs):
        start = time.perf_counter()
        for _i in range(n):
            fn()
        samples.append((time.perf_counter() - start) / n * 1e6)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--n", type=int, default=20000)
    args = parser.parse_args()

    compile_ms = []
    for locale in i18n.LOCALES[1:]:
        i18n._loaded.pop(locale, None)
        start = time.perf_counter()
        i18n.translations(locale)
        compile_ms.append((time.perf_counter() - start) * 1000)

    view = JobView.model_construct(
        status="running",
        progress=Progress(
            percent=52.0, downloaded_bytes=14_000_000, total_bytes=27_000_000, speed=2_100_000, eta=6
        ),
    )
    sentence = "You have no downloads running."
    rows = []
    with use("en"):
        rows.append(("`_()` English (identity)", per_call_us(lambda: _(sentence), args.n, args.runs)))
        rows.append(
            ("progress line, English", per_call_us(lambda: progress_line(view), args.n // 4, args.runs))
        )
    with use("ru"):
        rows.append(("`_()` Russian", per_call_us(lambda: _(sentence), args.n, args.runs)))
        rows.append((
            "plural + format, Russian",
            per_call_us(lambda: ngettext("{n} chapter", "{n} chapters", 23).format(n=23), args.n, args.runs),
        ))  # fmt: skip
    with use("ar"):
        rows.append((
            "plural + format, Arabic",
            per_call_us(lambda: ngettext("{n} chapter", "{n} chapters", 11).format(n=11), args.n, args.runs),
        ))  # fmt: skip
    with use("de"):
        rows.append(
            ("progress line, German", per_call_us(lambda: progress_line(view), args.n // 4, args.runs))
        )
    for what, us in rows:
        print(f"{what:<40} {us:8.2f} µs")
    print(f"{'compile one catalog from .po (median)':<40} {statistics.median(compile_ms):8.1f} ms")
    print(f"{'compile all ten':<40} {sum(compile_ms):8.1f} ms")


if __name__ == "__main__":
    main()
