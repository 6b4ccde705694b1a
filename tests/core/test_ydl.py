"""YoutubeDL objects made from several threads at once in a fresh process (the worker's first jobs)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import threading
from core.media.ydl import new_ydl
start = threading.Barrier(4)
def make():
    start.wait()
    new_ydl({"quiet": True}).close()
threads = [threading.Thread(target=make) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
from yt_dlp.extractor.youtube.pot._registry import _pot_providers
print(sorted(_pot_providers.value))
"""


def test_plugins_load_once_when_the_first_downloads_start_together() -> None:
    # Made directly, two of four YoutubeDL objects race to register the PO token provider plugin and one
    # prints "PoTokenProvider BgUtilHTTP already registered" (that download then has no PO tokens).
    for _ in range(3):
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
        )
        assert "Error while importing" not in done.stderr, done.stderr
        assert "already registered" not in done.stderr, done.stderr
        assert "BgUtilHTTP" in done.stdout, done.stdout
