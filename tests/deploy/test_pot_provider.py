"""The PO token provider in docker-compose.yml and the extraction stack in the image, checked against the
plugin and the code (no Docker engine runs here)."""

from __future__ import annotations

import shlex
import subprocess
import sys
from urllib.parse import urlsplit

from yt_dlp_plugins.extractor.getpot_bgutil_http import BgUtilHTTPPTP

from core.media.pot import plugin_version
from tests.deploy.test_compose import (
    ROOT,
    container_env,
    example_env,
    final_stage,
    healthcheck_test,
    ours,
    published,
    services,
)

PROVIDER_PORT = urlsplit(BgUtilHTTPPTP.DEFAULT_BASE_URL).port


def test_the_workers_ask_the_provider_service() -> None:
    svcs = services()
    provider = svcs["pot-provider"]
    image, _, tag = provider["image"].partition(":")
    assert image == "brainicism/bgutil-ytdlp-pot-provider"
    # The plugin refuses a server of another major version.
    assert tag.split(".")[0] == (plugin_version() or "").split(".")[0], (tag, plugin_version())
    # No authentication: the provider stays inside the compose network.
    assert published(provider) == []
    check = " ".join(healthcheck_test(provider) or [])
    assert f"127.0.0.1:{PROVIDER_PORT}/ping" in check
    for name, svc in ours(svcs).items():
        url = container_env(svc, example_env())["MEDIABOT_POT_PROVIDER_URL"]
        assert (urlsplit(url).hostname, urlsplit(url).port) == ("pot-provider", PROVIDER_PORT), name
    # An empty value in .env turns it off.
    off = container_env(svcs["worker"], {**example_env(), "MEDIABOT_POT_PROVIDER_URL": ""})
    assert off["MEDIABOT_POT_PROVIDER_URL"] == ""


def test_the_image_build_checks_the_bundled_deno() -> None:
    runs = [args for key, args in final_stage() if key == "RUN" and "check_js_runtime" in args]
    assert len(runs) == 1, "the image build runs the JavaScript runtime check"
    argv = shlex.split(runs[0])
    assert argv[:2] == ["python", "-c"]
    done = subprocess.run([sys.executable, *argv[1:]], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("JavaScript runtime: deno ")
