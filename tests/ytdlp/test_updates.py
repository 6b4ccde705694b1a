"""`mediabot ytdlp status | update | rollback` as an operator runs them, on releases built in the test and
canary links on the local media site: an update becomes current only after its canary passed, a refusal is
one sentence and leaves the current version alone."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.config import SettingsError, load_settings
from tests.support.servers import free_port
from tests.support.services import ROOT, make_settings, run_mediabot, settings_env, wait_until
from tests.ytdlp import wheels
from tests.ytdlp.conftest import BROKEN, CORRUPT, GOOD, NEWER, OLD, UNLOADABLE, Releases

BUNDLED = wheels.bundled_version()


def env_for(tmp_path: Path, **overrides: Any) -> dict[str, str]:
    return settings_env(make_settings(tmp_path, **overrides))


def pointer(data_dir: Path) -> dict[str, Any] | None:
    path = data_dir / "ytdlp" / "current.json"
    return json.loads(path.read_text()) if path.exists() else None


def loaded_by_a_new_process(env: dict[str, str]) -> tuple[str, str]:
    """The yt-dlp a freshly started mediabot process imports: (version, its folder)."""
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import mediabot, yt_dlp; print(yt_dlp.version.__version__); print(yt_dlp.__file__)",
        ],
        env=env,
        cwd=str(ROOT),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split("\n")
    return out[0], out[1]


def one_sentence(err: str) -> str:
    """The refusal: the last line of stderr, `mediabot: ...`, with no traceback anywhere."""
    assert "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("mediabot: "), err
    return last.removeprefix("mediabot: ")


def leftovers(data_dir: Path) -> list[str]:
    root = data_dir / "ytdlp"
    return sorted(p.name for p in root.glob(".staging-*")) if root.exists() else []


async def test_status_names_the_bundled_version_when_nothing_was_installed(tmp_path: Path) -> None:
    code, out, err = await run_mediabot(env_for(tmp_path), "ytdlp", "status")
    assert code == 0, err
    first = out.splitlines()[0]
    assert first.startswith(f"yt-dlp {BUNDLED} is current: the bundled one"), out
    assert "Canary links: none" in out


async def test_update_proves_the_release_on_the_canary_then_rollback_returns(
    tmp_path: Path, media_site, releases: Releases
) -> None:
    """Update, refused update, rollback: the story an operator lives through."""
    page = f"/clip/{uuid.uuid4().hex}.mp4"
    env = env_for(tmp_path, canary_urls=[media_site.url(page), media_site.url("/page.html")])
    data = tmp_path / "data"

    code, out, err = await run_mediabot(env, "ytdlp", "update", "--find-links", str(releases.good))
    assert code == 0, err
    assert out.strip() == (
        f"yt-dlp {GOOD} is current now (2 canary links passed; it was {BUNDLED} (bundled)); "
        "workers restart to load it."
    )
    assert media_site.downloads(page) == 1, "the canary downloaded its link"
    assert pointer(data)["current"] == GOOD  # type: ignore[index]
    version, where = loaded_by_a_new_process(env)
    assert version == GOOD and Path(where).is_relative_to(data / "ytdlp" / GOOD)
    code, out, _ = await run_mediabot(env, "ytdlp", "status")
    assert out.startswith(f"yt-dlp {GOOD} is current (installed ")
    assert f"Rollback goes to yt-dlp {BUNDLED} (bundled)." in out
    assert f"yt-dlp-ejs {wheels.ejs_version() or wheels.STAND_IN_EJS}" in out

    # A release whose generic extractor fails: refused in one sentence naming the link and why.
    code, out, err = await run_mediabot(env, "ytdlp", "update", "--find-links", str(releases.broken))
    assert code == 1
    assert one_sentence(err) == (
        f"yt-dlp {BROKEN} failed its canary ({media_site.url(page)} failed: [generic] this build of the "
        f"generic extractor is broken), so yt-dlp {GOOD} stays current."
    )
    assert pointer(data)["current"] == GOOD  # type: ignore[index]
    assert not leftovers(data)

    code, out, err = await run_mediabot(env, "ytdlp", "rollback")
    assert code == 0, err
    assert out.strip() == (
        f"yt-dlp {BUNDLED} (bundled) is current again (rolled back from {GOOD}); workers restart to load it."
    )
    version, where = loaded_by_a_new_process(env)
    assert version == BUNDLED and not Path(where).is_relative_to(data)
    code, out, _ = await run_mediabot(env, "ytdlp", "status")
    assert out.startswith(f"yt-dlp {BUNDLED} is current: the bundled one")
    assert f"Rolled back from (not installed again by the daily check): {GOOD}." in out

    code, out, err = await run_mediabot(env, "ytdlp", "rollback")
    assert code == 1
    assert one_sentence(err) == (
        f"There is nothing to roll back to: yt-dlp {BUNDLED} (bundled) is current and no earlier version was."
    )


async def test_a_release_that_does_not_import_is_refused(
    tmp_path: Path, media_site, releases: Releases
) -> None:
    env = env_for(tmp_path, canary_urls=[media_site.url("/video.mp4")])
    code, _, err = await run_mediabot(
        env, "ytdlp", "update", "--find-links", str(releases.unloadable), "--version", UNLOADABLE
    )
    assert code == 1
    assert one_sentence(err) == (
        f"yt-dlp {UNLOADABLE} failed its canary (yt-dlp {UNLOADABLE} does not load: ImportError: this "
        f"yt-dlp build cannot be imported), so yt-dlp {BUNDLED} (bundled) stays current."
    )
    assert pointer(tmp_path / "data")["current"] == "bundled"  # type: ignore[index]
    assert loaded_by_a_new_process(env)[0] == BUNDLED


async def test_a_canary_link_that_hangs_fails_after_its_time(
    tmp_path: Path, media_site, releases: Releases
) -> None:
    """A link that sends a little and then nothing: the canary is stopped (process group killed) after
    MEDIABOT_CANARY_TIMEOUT_S, and the sentence says so."""
    stall = media_site.url(f"/stall.mp4?n={uuid.uuid4().hex}")
    env = env_for(tmp_path, canary_urls=[stall], canary_timeout_s=3)
    code, _, err = await run_mediabot(env, "ytdlp", "update", "--find-links", str(releases.good))
    assert code == 1
    assert one_sentence(err) == (
        f"yt-dlp {GOOD} failed its canary ({stall} did not finish within 3 s), "
        f"so yt-dlp {BUNDLED} (bundled) stays current."
    )
    assert pointer(tmp_path / "data")["current"] == "bundled"  # type: ignore[index]
    # The killed canary let go of the connection (the media site holds a stalled one open for a minute).
    await wait_until(lambda: media_site.in_flight() == 0, timeout=10)


async def test_a_corrupt_wheel_is_one_sentence(tmp_path: Path, releases: Releases) -> None:
    env = env_for(tmp_path)
    code, _, err = await run_mediabot(env, "ytdlp", "update", "--find-links", str(releases.corrupt))
    assert code == 1
    assert one_sentence(err) == (
        f"The wheel of yt-dlp {CORRUPT} in the folder {releases.corrupt} "
        f"(yt_dlp-{CORRUPT}-py3-none-any.whl) is damaged: it is not a valid wheel file."
    )
    assert pointer(tmp_path / "data") is None
    assert not leftovers(tmp_path / "data")
    assert not (tmp_path / "data" / "ytdlp" / CORRUPT).exists()


async def test_a_missing_release_and_a_wrong_folder_are_one_sentence(
    tmp_path: Path, releases: Releases
) -> None:
    env = env_for(tmp_path)
    code, _, err = await run_mediabot(
        env, "ytdlp", "update", "--find-links", str(releases.good), "--version", "2099.9.9"
    )
    assert code == 1
    assert one_sentence(err) == f"The folder {releases.good} has no yt-dlp 2099.9.9."
    code, _, err = await run_mediabot(env, "ytdlp", "update", "--find-links", str(tmp_path / "nowhere"))
    assert code == 2 and err.strip() == f"mediabot: {tmp_path / 'nowhere'} is not a folder."


async def test_an_older_release_or_an_unreachable_index_changes_nothing(
    tmp_path: Path, releases: Releases
) -> None:
    env = env_for(tmp_path)
    code, _, err = await run_mediabot(env, "ytdlp", "update", "--find-links", str(releases.old))
    assert code == 1
    assert one_sentence(err) == (
        f"The newest yt-dlp the folder {releases.old} offers is {OLD}, older than the current {BUNDLED} "
        f"(bundled); `--version {OLD}` installs it anyway."
    )
    index = f"http://127.0.0.1:{free_port()}/simple/"
    secret_index = index.replace("http://", "http://mirror:s3cr3t-t0ken@")
    code, _, err = await run_mediabot(env, "ytdlp", "update", "--index-url", secret_index, timeout=120)
    assert code == 1
    assert one_sentence(err) == f"The index {index} could not be reached to get the list of yt-dlp releases."
    assert "s3cr3t" not in err
    assert pointer(tmp_path / "data") is None


@contextlib.contextmanager
def small_disk(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` mounted at `where` (root only: skipped elsewhere)."""
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


async def test_a_full_disk_during_an_update_leaves_the_current_version_working(
    tmp_path: Path, media_site, releases: Releases
) -> None:
    """DATA_DIR on a 50 MB filesystem: the first release fits (about 26 MB installed, leaving room for the
    canary's download and the 16 MB a download keeps free), the second does not."""
    with small_disk(tmp_path / "small", "50m") as data:
        env = env_for(tmp_path, data_dir=data, canary_urls=[media_site.url("/video.mp4")])
        code, _, err = await run_mediabot(env, "ytdlp", "update", "--find-links", str(releases.good))
        assert code == 0, err
        code, _, err = await run_mediabot(env, "ytdlp", "update", "--find-links", str(releases.newer))
        assert code == 1
        assert one_sentence(err) == f"There is not enough disk space to install yt-dlp {NEWER}."
        assert pointer(data)["current"] == GOOD  # type: ignore[index]
        assert not leftovers(data) and not (data / "ytdlp" / NEWER).exists()
        version, _ = loaded_by_a_new_process(env)
        assert version == GOOD
        code, out, _ = await run_mediabot(env, "ytdlp", "status")
        assert code == 0 and out.startswith(f"yt-dlp {GOOD} is current")


def test_canary_links_must_be_web_links() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(canary_urls="https://example.com/v.mp4, file:///etc/passwd")
    assert "MEDIABOT_CANARY_URLS" in str(caught.value)
    assert load_settings(canary_urls="https://a.example/1, http://b.example/2").canary_urls == [
        "https://a.example/1",
        "http://b.example/2",
    ]
