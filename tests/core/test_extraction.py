"""The extraction stack: yt-dlp is pointed at the bundled Deno and at the PO token provider, the plugin
really asks that provider (through our connection guard), and a broken runtime harms only YouTube."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from pathlib import Path

import pytest
import yt_dlp
from yt_dlp.extractor.youtube.pot._director import initialize_pot_director
from yt_dlp.extractor.youtube.pot.provider import PoTokenContext, PoTokenRequest
from yt_dlp.networking import Request
from yt_dlp.networking.exceptions import TransportError
from yt_dlp.networking.impersonate import ImpersonateTarget

from core.config import SettingsError, load_settings
from core.errors import PrivateAddress
from core.jobs.choices import SubmitRequest
from core.media import extraction
from core.media.control import Control
from core.media.downloader import Downloader
from core.media.options import build_options
from tests.fakes.pot_provider import TOKEN, FakePotProvider
from tests.support.servers import free_port
from tests.support.services import make_settings, running_services


def fake_runtime(path: Path, *, version: str = "2.9.8", run_exit: int = 0, log: Path | None = None) -> Path:
    """A stand-in for Deno: answers --version, and either runs the script through the real Deno or
    exits with `run_exit`; each start is appended to `log`."""
    real = extraction.find_js_runtime("auto")
    record = f'echo "$1" >> "{log}"\n' if log else ""
    run = f'exec "{real}" "$@"' if run_exit == 0 else f'echo "error: broken on purpose" >&2; exit {run_exit}'
    path.write_text(
        "#!/bin/sh\n"
        + record
        + f'if [ "$1" = "--version" ]; then echo "deno {version} (stable, release)"; exit 0; fi\n'
        + run
        + "\n"
    )
    path.chmod(0o755)
    return path


def test_ytdlp_is_given_the_bundled_deno_whatever_the_path_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    extraction.find_js_runtime.cache_clear()
    try:
        settings = make_settings(tmp_path, pot_provider_url="http://pot-provider:4416")
        opts = build_options(settings, kind="video", quality="best", workdir=tmp_path, ffmpeg=None)
    finally:
        extraction.find_js_runtime.cache_clear()
    deno = opts["js_runtimes"]["deno"]["path"]
    # The deno package's binary, in this Python's environment, not found through the PATH.
    assert Path(deno).is_file() and os.access(deno, os.X_OK)
    assert Path(deno).resolve().is_relative_to(Path(sys.prefix).resolve())
    assert opts["extractor_args"] == {"youtubepot-bgutilhttp": {"base_url": ["http://pot-provider:4416"]}}
    # yt-dlp takes the options as they are and finds a supported Deno there.
    with yt_dlp.YoutubeDL({**opts, "quiet": True}) as ydl:
        info = ydl._js_runtimes["deno"].info
    assert info is not None and info.path == deno and info.supported

    # Without a provider, no extractor arguments; an operator's own runtime path is passed as it is.
    plain = build_options(
        make_settings(tmp_path, js_runtime="/opt/deno/bin/deno"),
        kind="video",
        quality="best",
        workdir=tmp_path,
        ffmpeg=None,
    )
    assert "extractor_args" not in plain
    assert plain["js_runtimes"] == {"deno": {"path": "/opt/deno/bin/deno"}}


async def test_the_pot_plugin_asks_the_configured_provider_through_the_guard(
    tmp_path: Path, pot_provider: FakePotProvider, media_site
) -> None:
    # Private addresses are refused except the media site: the provider (also on 127.0.0.1) is reachable
    # for the plugin's own requests only.
    settings = make_settings(
        tmp_path,
        allow_private_urls=False,
        allowed_private_hosts=[f"127.0.0.1:{media_site.port}"],
        pot_provider_url=pot_provider.url,
    )
    downloader = Downloader(settings)
    workdir = tmp_path / "work"
    workdir.mkdir()

    def ask_for_a_token() -> str | None:
        opts = build_options(settings, kind="video", quality="best", workdir=workdir, ffmpeg=None)
        with downloader._guarded(Control()), yt_dlp.YoutubeDL({**opts, "quiet": True}) as ydl:
            director = initialize_pot_director(ydl.get_info_extractor("Youtube"))
            return director.get_po_token(
                PoTokenRequest(
                    context=PoTokenContext.GVS,
                    innertube_context={"client": {"clientName": "WEB", "clientVersion": "2.20260101"}},
                    internal_client_name="web",
                    visitor_data="CgtWaXNpdG9yRGF0YQ%3D%3D",
                    video_id="dQw4w9WgXcQ",
                )
            )

    assert await asyncio.to_thread(ask_for_a_token) == TOKEN
    assert pot_provider.paths() == ["GET /ping", "POST /get_pot"]
    assert pot_provider.calls[1].body and pot_provider.calls[1].body["content_binding"]

    # A link that redirects to the provider is refused like any private address: the exemption is the
    # plugin's, not the provider address's.
    pot_provider.calls.clear()
    redirect = media_site.url(f"/redirect?to={pot_provider.url}/ping")
    with pytest.raises(PrivateAddress):
        await asyncio.to_thread(
            downloader.run, "j1", redirect, "video", "best", tmp_path / "j1", Control(), lambda info: True
        )
    assert pot_provider.calls == []


async def test_a_broken_runtime_and_a_dead_provider_leave_other_sites_working(
    tmp_path: Path, media_site
) -> None:
    broken = tmp_path / "deno"
    broken.write_text("not a program")  # and not executable
    dead = f"http://127.0.0.1:{free_port()}"
    settings = make_settings(tmp_path, js_runtime=str(broken), pot_provider_url=dead)
    assert extraction.check_js_runtime(settings.js_runtime).status == "fail"
    assert (await extraction.check_pot_provider(dead)).status == "fail"
    async with running_services(settings) as services:
        submission = await services.jobs.submit(
            SubmitRequest(text=media_site.url(f"/clip/{uuid.uuid4().hex}.mp4"), source="cli", user_id="a")
        )
        final = await services.jobs.wait(submission.job.id, timeout=60)
    assert final.status == "done", final.error


def test_the_runtime_check_runs_a_script_and_says_what_is_wrong(tmp_path: Path) -> None:
    good = extraction.check_js_runtime("auto")
    assert good.status == "ok" and good.version and good.version.startswith("deno ")
    assert "ran a script" in good.detail

    missing = extraction.check_js_runtime(str(tmp_path / "nowhere" / "deno"))
    assert (missing.status, missing.detail) == ("fail", "the configured runtime does not exist")
    assert missing.advice and missing.advice.startswith("Point MEDIABOT_JS_RUNTIME at a working Deno")

    not_executable = tmp_path / "deno-plain"
    not_executable.write_text("#!/bin/sh\n")
    assert (
        extraction.check_js_runtime(str(not_executable)).detail == "the configured runtime is not executable"
    )

    failing = extraction.check_js_runtime(str(fake_runtime(tmp_path / "deno-fails", run_exit=3)))
    assert failing.status == "fail" and failing.detail == "a one-line script exited with code 3"
    assert failing.local and "broken on purpose" in failing.local  # the program's words: the terminal only
    assert "broken on purpose" not in str(failing.public())

    old = extraction.check_js_runtime(str(fake_runtime(tmp_path / "deno-old", version="1.46.0")))
    assert old.status == "fail" and "older than" in old.detail


def test_the_runtime_check_is_reused_until_the_binary_changes(tmp_path: Path) -> None:
    log = tmp_path / "starts.log"
    runtime = fake_runtime(tmp_path / "deno", log=log)
    first = extraction.cached_js_runtime(str(runtime))
    second = extraction.cached_js_runtime(str(runtime))
    assert first.status == second.status == "ok"
    assert log.read_text().split().count("run") == 1
    # A changed binary (an upgrade, a new mode) is checked again at once.
    runtime.chmod(0o700)
    assert extraction.cached_js_runtime(str(runtime)).status == "ok"
    assert log.read_text().split().count("run") == 2


def test_the_provider_url_is_checked_at_start_up(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="MEDIABOT_POT_PROVIDER_URL: .*http:// URL"):
        load_settings(data_dir=tmp_path, pot_provider_url="pot-provider:4416")
    assert load_settings(data_dir=tmp_path, pot_provider_url=" ").pot_provider_url is None
    assert (
        load_settings(data_dir=tmp_path, pot_provider_url="http://p:4416/").pot_provider_url
        == "http://p:4416"
    )


async def test_impersonated_requests_keep_to_the_address_policy(
    tmp_path: Path, pot_provider: FakePotProvider, media_site, media_files
) -> None:
    """curl_cffi connects in libcurl, past the socket guard: its redirects are followed and checked by us."""
    settings = make_settings(
        tmp_path, allow_private_urls=False, allowed_private_hosts=[f"127.0.0.1:{media_site.port}"]
    )
    downloader = Downloader(settings)
    chrome = {"impersonate": ImpersonateTarget("chrome")}

    def fetch(url: str) -> tuple[str, bytes, object]:
        with downloader._guarded(Control()), yt_dlp.YoutubeDL({"quiet": True}) as ydl:
            with ydl.urlopen(Request(url, extensions=chrome)) as resp:
                return resp.url, resp.read(), resp.extensions.get("impersonate")

    # A redirect within what is allowed is followed, as a browser would.
    url, body, target = await asyncio.to_thread(
        fetch, media_site.url(f"/redirect?to={media_site.url('/video.mp4')}")
    )
    assert url == media_site.url("/video.mp4") and target is not None
    assert body == media_files.video_mp4.read_bytes()

    # A redirect to another private address is refused before a byte is sent there.
    with pytest.raises(TransportError, match="private address refused"):
        await asyncio.to_thread(fetch, media_site.url(f"/redirect?to={pot_provider.url}/ping"))
    assert pot_provider.calls == []
