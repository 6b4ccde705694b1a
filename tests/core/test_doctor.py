"""`mediabot doctor` as an operator runs it: a line per part, exit 1 with one sentence per broken required
part, and the PO token provider checked only when it is configured."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.core.test_extraction import fake_runtime
from tests.fakes.pot_provider import FakePotProvider
from tests.support.servers import free_port
from tests.support.services import make_settings, run_mediabot, settings_env

LABELS = [
    "yt-dlp",
    "yt-dlp-ejs",
    "JavaScript runtime",
    "impersonation",
    "ffmpeg",
    "ffprobe",
    "PO token provider",
    "database",
    "queue",
    "storage",
    "cookies",
]


def lines(out: str) -> dict[str, str]:
    """label -> status mark of each part line."""
    found = {}
    for line in out.splitlines():
        for label in LABELS:
            if line[6:].startswith(label + " "):
                found[label] = line[:5].strip()
    return found


@pytest.mark.both_databases
async def test_doctor_checks_every_part(
    tmp_path: Path, database_url: str, pot_provider: FakePotProvider
) -> None:
    cookies = tmp_path / "cookies"
    cookies.mkdir()
    (cookies / "youtube.com.txt").write_text("# Netscape HTTP Cookie File\n")
    (cookies / "youtube.com.txt").chmod(0o600)
    settings = make_settings(
        tmp_path,
        database_url=database_url,
        allowed_extractors=[],
        pot_provider_url=pot_provider.url,
        cookies_dir=cookies,
    )
    code, out, err = await run_mediabot(settings_env(settings), "doctor")
    assert code == 0, out + err
    marks = lines(out)
    assert list(marks) == LABELS, out
    assert set(marks.values()) == {"ok"}, out
    assert "Everything required works." in out
    by_label = {
        label: next(ln for ln in out.splitlines() if ln[6:].startswith(label + " ")) for label in LABELS
    }
    assert "ran a script in" in by_label["JavaScript runtime"] and "deno " in by_label["JavaScript runtime"]
    assert "targets (" in by_label["impersonation"] and "chrome" in by_label["impersonation"]
    assert f"{pot_provider.version}: answers" in by_label["PO token provider"]
    assert "1 site: youtube.com" in by_label["cookies"]
    assert ("sqlite" if "sqlite" in database_url else "postgresql") in by_label["database"]
    assert pot_provider.paths() == ["GET /ping"]


async def test_doctor_says_what_to_do_about_each_broken_part(
    tmp_path: Path, pot_provider: FakePotProvider
) -> None:
    await pot_provider.stop()
    cookies = tmp_path / "cookies"
    cookies.mkdir()
    (cookies / "vimeo.com.txt").write_text("# Netscape HTTP Cookie File\n")
    (cookies / "vimeo.com.txt").chmod(0o644)
    settings = make_settings(
        tmp_path,
        allowed_extractors=[],
        js_runtime=str(fake_runtime(tmp_path / "deno", run_exit=1)),
        pot_provider_url=pot_provider.url,
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        cookies_dir=cookies,
    )
    code, out, err = await run_mediabot(settings_env(settings), "doctor")
    assert code == 1, out + err
    marks = lines(out)
    assert [label for label, mark in marks.items() if mark == "FAIL"] == [
        "JavaScript runtime",
        "PO token provider",
        "queue",
    ], out
    assert marks["cookies"] == "warn" and "vimeo.com.txt (readable by every user" in out
    tail = out.split("3 required parts not working:\n", 1)[1].strip().splitlines()
    assert [line.split(":", 1)[0] for line in tail] == ["JavaScript runtime", "PO token provider", "queue"]
    for line in tail:
        sentence = line.split(": ", 1)[1]
        assert sentence[0].isupper() and sentence.endswith(".") and sentence.count(". ") == 0, line
    assert "a one-line script exited with code 1" in out
    assert "Traceback" not in out + err


async def test_doctor_without_youtube_or_a_provider(tmp_path: Path) -> None:
    broken = tmp_path / "deno"
    broken.write_text("not a program")
    # Only the generic extractor: the runtime is not needed, so its trouble is a warning; no provider is
    # configured, so none is asked.
    settings = make_settings(tmp_path, allowed_extractors=["generic"], js_runtime=str(broken))
    code, out, err = await run_mediabot(settings_env(settings), "doctor")
    assert code == 0, out + err
    marks = lines(out)
    assert marks["JavaScript runtime"] == "warn" and marks["PO token provider"] == "off"
    assert "not configured (MEDIABOT_POT_PROVIDER_URL)" in out
    assert "only YouTube needs it" in out

    settings = make_settings(tmp_path, allowed_extractors=["youtube", "generic"], js_runtime=str(broken))
    code, out, _ = await run_mediabot(settings_env(settings), "doctor")
    assert code == 1 and lines(out)["JavaScript runtime"] == "FAIL"
    assert "JavaScript runtime: Point MEDIABOT_JS_RUNTIME at a working Deno binary" in out
