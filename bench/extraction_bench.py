"""Extraction stack benchmark: what the JavaScript runtime check costs, and how big the install is.

- The runtime check (`core.extraction.check_js_runtime`: `deno --version`, then a one-line script with
  yt-dlp's flags), the first in the process and then warm; the cached check that /health/detailed uses;
  the whole `extraction` health component.
- With `--sizes`: two fresh virtualenvs in a temporary folder, `pip install .` and `pip install '.[test]'`,
  their size in MB and the share of the extraction stack (deno, curl_cffi, yt-dlp-ejs, the PO token plugin);
  both are deleted afterwards. Needs PyPI (or pip's cache); a few minutes.

    .venv/bin/python bench/extraction_bench.py [--runs 20] [--sizes]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.config import load_settings  # noqa: E402
from core.media import extraction  # noqa: E402

STACK = {
    "deno": ["deno", "bin/deno"],
    "curl_cffi": ["curl_cffi", "curl_cffi.libs"],
    "yt-dlp-ejs": ["yt_dlp_ejs"],
    "bgutil plugin": ["yt_dlp_plugins"],
}


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def timed(fn, runs: int) -> list[float]:  # type: ignore[no-untyped-def]
    took = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        took.append(time.perf_counter() - started)
    return took


def runtime_figures(runs: int) -> None:
    path = extraction.find_js_runtime("auto")
    print(f"JavaScript runtime: {path}")
    import yt_dlp  # noqa: F401 - the import (about a second) is not the runtime's cost

    extraction.ytdlp_facts()  # read once, as a worker does
    first = timed(lambda: extraction.check_js_runtime("auto"), 1)[0]
    warm = timed(lambda: extraction.check_js_runtime("auto"), runs)
    version_only = timed(
        lambda: subprocess.run([path, "--version"], capture_output=True, check=True, timeout=30), runs
    )
    script = timed(
        lambda: subprocess.run(
            [path, "run", *extraction.ytdlp_facts().deno_flags, "-"],
            input=b"console.log(6 * 7)",
            capture_output=True,
            check=True,
            timeout=30,
        ),
        runs,
    )
    extraction.cached_js_runtime("auto")
    cached = timed(lambda: extraction.cached_js_runtime("auto"), runs * 50)
    settings = load_settings(data_dir=Path(tempfile.mkdtemp(prefix="mb-extraction-bench-")))
    asyncio.run(extraction.check_stack(settings))  # fills the caches (impersonation targets, runtime)
    stack = timed(lambda: asyncio.run(extraction.check_stack(settings)), runs)
    shutil.rmtree(settings.data_dir, ignore_errors=True)
    print("| what | figure |")
    print("|---|---|")
    print(f"| runtime check, first in this process (yt-dlp already imported) | {ms(first)} |")
    print(
        f"| runtime check (`--version` + one-line script), median of {runs} | {ms(statistics.median(warm))} |"
    )
    print(f"| of which `deno --version` | {ms(statistics.median(version_only))} |")
    print(f"| of which `deno run` of the script | {ms(statistics.median(script))} |")
    print(f"| cached runtime check (health polls), median | {statistics.median(cached) * 1e6:.1f} us |")
    print(f"| whole `extraction` health component, cached, median | {ms(statistics.median(stack))} |")


def du_mb(path: Path) -> float:
    out = subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True, check=True).stdout
    return int(out.split()[0]) / 1024


def size_figures() -> None:
    with tempfile.TemporaryDirectory(prefix="mb-venv-bench-") as tmp:
        rows = []
        for name, spec in (("runtime", "."), ("runtime + test extras", ".[test]")):
            venv = Path(tmp) / name.replace(" ", "")
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            started = time.perf_counter()
            subprocess.run(
                [str(venv / "bin/pip"), "install", "--quiet", "--disable-pip-version-check", spec],
                cwd=ROOT,
                check=True,
            )
            took = time.perf_counter() - started
            site = next((venv / "lib").glob("python3*/site-packages"))
            parts = {
                part: sum(du_mb(p) for rel in rels for p in [site / rel, venv / rel] if p.exists())
                for part, rels in STACK.items()
            }
            rows.append((name, du_mb(venv), took, parts))
        print("| venv | size | install time | of which deno / curl_cffi / yt-dlp-ejs / plugin |")
        print("|---|---|---|---|")
        for name, size, took, parts in rows:
            share = " / ".join(f"{parts[p]:.1f}" for p in STACK)
            print(f"| {name} | {size:.0f} MB | {took:.0f} s | {share} MB |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--sizes", action="store_true", help="also measure two fresh virtualenvs (slow)")
    args = parser.parse_args()
    runtime_figures(args.runs)
    if args.sizes:
        size_figures()


if __name__ == "__main__":
    main()
