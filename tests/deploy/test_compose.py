"""docker-compose.yml, the Dockerfile and .env.example checked against the code, since no Docker engine runs
here: settings are real, commands are real subcommands, the start-up order holds, ports match the README,
and the health checks pass on a running mediabot and fail without one."""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import json
import os
import re
import shlex
import signal
import socket
import sys
import tomllib
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from core.config import Settings
from core.db.models import Worker, utcnow
from core.db.session import create_engine, session_factory
from mediabot.cli import build_parser
from tests.support.servers import free_port
from tests.support.services import make_settings, settings_env

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ENV_EXAMPLE = ROOT / ".env.example"
README = ROOT / "README.md"

SETTINGS = {f"MEDIABOT_{name.upper()}" for name in Settings.model_fields}
# Subcommands that build the full services (queue, events, storage); `db` touches only the database.
SERVICE_ROLES = {"run", "web", "worker", "telegram", "discord"}
BOTS = ("telegram", "discord")
# What .env must supply before compose starts (the `:?` variables); values for the tests.
REQUIRED = {"POSTGRES_PASSWORD": "pg-secret", "MINIO_ROOT_PASSWORD": "minio-secret"}


# ---- reading the files ----------------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def ours(svcs: Mapping[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The services that run the image built from our Dockerfile."""
    return {name: svc for name, svc in svcs.items() if "build" in svc}


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """Instructions per stage, continuation lines joined, comments dropped."""
    logical: list[str] = []
    buf = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        logical.append(buf + line)
        buf = ""
    stages: list[list[tuple[str, str]]] = []
    for instruction in logical:
        key, _, args = instruction.partition(" ")
        if key.upper() == "FROM":
            stages.append([])
        stages[-1].append((key.upper(), args.strip()))
    return stages


def final_stage() -> list[tuple[str, str]]:
    return dockerfile_stages()[-1]


def instruction(stage: list[tuple[str, str]], key: str) -> str:
    found = [args for k, args in stage if k == key]
    assert found, f"the Dockerfile's final stage has no {key}"
    return found[-1]


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for key, args in final_stage():
        if key == "ENV":
            env.update(part.split("=", 1) for part in shlex.split(args))  # type: ignore[misc]
    return env


def image_cmd() -> list[str]:
    return json.loads(instruction(final_stage(), "CMD"))


def command_of(svc: Mapping[str, Any]) -> list[str]:
    command = svc.get("command")
    if command is None:
        return image_cmd()
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def depends(svc: Mapping[str, Any]) -> dict[str, str]:
    found = svc.get("depends_on") or {}
    if isinstance(found, list):
        return {name: "service_started" for name in found}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in found.items()}


def one_shot(svc: Mapping[str, Any]) -> bool:
    return str(svc.get("restart", "no")) == "no"


def healthcheck_test(svc: Mapping[str, Any]) -> list[str] | None:
    check = svc.get("healthcheck") or {}
    if check.get("disable"):
        return None
    test = check.get("test")
    if isinstance(test, str):
        return ["CMD-SHELL", test]
    return [str(part) for part in test] if test else None


def seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", str(duration))
    assert parts and "".join(n + u for n, u in parts) == str(duration), f"unreadable duration {duration!r}"
    return sum(float(n) * units[u] for n, u in parts)


def published(svc: Mapping[str, Any]) -> list[tuple[str, int, int]]:
    """(host address, host port, container port) of each published port."""
    result = []
    for port in svc.get("ports", []):
        assert isinstance(port, str), f"use the short syntax for ports: {port!r}"
        match = re.fullmatch(r"(?:(\d+\.\d+\.\d+\.\d+):)?(\d+):(\d+)(?:/tcp)?", port)
        assert match, f"unreadable port {port!r}"
        result.append((match.group(1) or "0.0.0.0", int(match.group(2)), int(match.group(3))))
    return result


# ---- compose interpolation (${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, nested, $$) ----------


class MissingVariable(Exception):
    pass


def interpolate(text: str, env: Mapping[str, str], seen: set[str] | None = None) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("${", i):
            depth, j = 1, i + 2
            while depth:
                assert j < len(text), f"unclosed ${{ in {text!r}"
                if text.startswith("${", j):
                    depth, j = depth + 1, j + 2
                    continue
                depth -= text[j] == "}"
                j += 1
            out.append(_expand(text[i + 2 : j - 1], env, seen))
            i = j
        elif match := re.match(r"\$([A-Za-z_][A-Za-z0-9_]*)", text[i:]):
            if seen is not None:
                seen.add(match.group(1))
            out.append(env.get(match.group(1), ""))
            i += match.end()
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _expand(expr: str, env: Mapping[str, str], seen: set[str] | None) -> str:
    match = re.match(r"[A-Za-z_][A-Za-z0-9_]*", expr)
    assert match, f"unreadable ${{{expr}}}"
    name, rest = match.group(0), expr[match.end() :]
    if seen is not None:  # only collecting the names, also those inside defaults
        seen.add(name)
        for op in (":-", "-", ":?", "?"):
            if rest.startswith(op):
                interpolate(rest[len(op) :], env, seen)
                break
        return ""
    value = env.get(name)
    for op, empty_counts in ((":-", True), ("-", False), (":?", True), ("?", False)):
        if rest.startswith(op):
            missing = value is None or (empty_counts and value == "")
            if not missing:
                return value or ""
            if "?" in op:
                raise MissingVariable(f"{name}: {interpolate(rest[len(op) :], env)}")
            return interpolate(rest[len(op) :], env)
    assert rest == "", f"unsupported ${{{expr}}}"
    return value or ""


def variables_used() -> set[str]:
    names: set[str] = set()
    interpolate(COMPOSE.read_text(), {}, names)
    return names


def example_env() -> dict[str, str]:
    """The .env a user has after `cp .env.example .env` and filling in the required passwords."""
    env = {e.name: e.value for e in env_example() if not e.commented}
    env.update(REQUIRED)
    return env


def container_env(svc: Mapping[str, Any], dotenv: Mapping[str, str]) -> dict[str, str]:
    """The environment compose gives a container: env_file (.env) first, `environment` over it."""
    env: dict[str, str] = {}
    if svc.get("env_file"):
        assert svc["env_file"] in (".env", [".env"]), "only .env is expected as env_file"
        env.update(dotenv)
    environment = svc.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    for key, value in environment.items():
        env[key] = interpolate("" if value is None else str(value), dotenv)
    return env


@contextlib.contextmanager
def environ(monkeypatch: pytest.MonkeyPatch, env: Mapping[str, str]) -> Iterator[None]:
    with monkeypatch.context() as patch:
        for key in [k for k in os.environ if k.startswith("MEDIABOT_")]:
            patch.delenv(key)
        for key, value in env.items():
            if key.startswith("MEDIABOT_"):
                patch.setenv(key, value)
        yield


# ---- .env.example ---------------------------------------------------------------------------------------


class EnvLine:
    def __init__(self, name: str, value: str, commented: bool, comment: list[str], own: bool) -> None:
        self.name, self.value, self.commented, self.comment = name, value, commented, comment
        self.own_comment = own  # the line right above is its comment


def env_example() -> list[EnvLine]:
    """The variable lines, each with the comment block above it (one block may cover a few lines in a row,
    such as a user and its password)."""
    lines: list[EnvLine] = []
    comment: list[str] = []
    after_variable = False
    for raw in ENV_EXAMPLE.read_text().splitlines():
        match = re.fullmatch(r"(#\s*)?([A-Z][A-Z0-9_]*)=(.*)", raw.strip())
        if match:
            own = bool(comment) and not after_variable
            lines.append(EnvLine(match.group(2), match.group(3).strip(), bool(match.group(1)), comment, own))
        elif raw.startswith("#"):
            comment = [raw.lstrip("#").strip()] if after_variable else [*comment, raw.lstrip("#").strip()]
        else:
            comment = []
        after_variable = bool(match)
    return lines


# ---- compose: settings, commands, order -----------------------------------------------------------------


def test_compose_sets_only_real_settings() -> None:
    for name, svc in services().items():
        environment = svc.get("environment") or {}
        keys = environment if isinstance(environment, dict) else [e.split("=", 1)[0] for e in environment]
        unknown = {key for key in keys if key.startswith("MEDIABOT_")} - SETTINGS
        assert not unknown, f"{name} sets {sorted(unknown)}, which core.config.Settings does not have"


def test_each_mediabot_service_builds_valid_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    svcs = services()
    for name, svc in ours(svcs).items():
        env = container_env(svc, example_env())
        with environ(monkeypatch, env):
            settings = Settings(_env_file=None)  # type: ignore[call-arg]
        assert not settings.is_sqlite and urlsplit(settings.database_url).hostname == "db", name
        assert str(settings.data_dir) == "/data", name
        if command_of(svc)[0] in SERVICE_ROLES:
            assert settings.redis_url and urlsplit(settings.redis_url).hostname == "redis", name
            assert settings.storage == "s3" and settings.s3_bucket, name
            assert settings.s3_endpoint_url and urlsplit(settings.s3_endpoint_url).hostname == "minio", name
            assert env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"), name
        # Every URL points at a service by name, at a port that service's container listens on.
        for url in (settings.database_url, settings.redis_url, settings.s3_endpoint_url):
            if not url:
                continue
            parts = urlsplit(url)
            assert parts.hostname in svcs, f"{name}: {url} names no service"
            ports = {container for _, _, container in published(svcs[parts.hostname])}
            assert parts.port in ports, (
                f"{name}: {parts.hostname} listens on {sorted(ports)}, not {parts.port}"
            )


def test_credentials_agree_across_services() -> None:
    svcs = services()
    dotenv = example_env()
    env = {name: container_env(svc, dotenv) for name, svc in svcs.items()}
    url = urlsplit(env["web"]["MEDIABOT_DATABASE_URL"])
    assert url.username == env["db"]["POSTGRES_USER"]
    assert url.password == env["db"]["POSTGRES_PASSWORD"]
    assert url.path.lstrip("/") == env["db"]["POSTGRES_DB"]
    check = " ".join(healthcheck_test(svcs["db"]) or [])
    assert f"-U {url.username}" in check and f"-d {url.path.lstrip('/')}" in check
    # Without AWS keys in .env, mediabot uses MinIO's root user; minio-init logs in as it and makes the bucket.
    assert (
        env["web"]["AWS_ACCESS_KEY_ID"]
        == env["minio"]["MINIO_ROOT_USER"]
        == env["minio-init"]["MINIO_ROOT_USER"]
    )
    secret = env["web"]["AWS_SECRET_ACCESS_KEY"]
    assert secret == env["minio"]["MINIO_ROOT_PASSWORD"] == env["minio-init"]["MINIO_ROOT_PASSWORD"]
    assert env["minio-init"]["BUCKET"] == env["web"]["MEDIABOT_S3_BUCKET"]
    # With AWS keys, those are used instead.
    aws = container_env(
        svcs["web"], {**dotenv, "AWS_ACCESS_KEY_ID": "AKIA1", "AWS_SECRET_ACCESS_KEY": "s3cr3t"}
    )
    assert (aws["AWS_ACCESS_KEY_ID"], aws["AWS_SECRET_ACCESS_KEY"]) == ("AKIA1", "s3cr3t")
    # An empty endpoint in .env means AWS S3 itself, not MinIO.
    assert (
        container_env(svcs["web"], {**dotenv, "MEDIABOT_S3_ENDPOINT_URL": ""})["MEDIABOT_S3_ENDPOINT_URL"]
        == ""
    )


def test_compose_refuses_to_start_without_the_passwords() -> None:
    assert set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*):?\?", COMPOSE.read_text())) == set(REQUIRED)
    dotenv = {e.name: e.value for e in env_example() if not e.commented}
    for name in REQUIRED:
        with pytest.raises(MissingVariable, match=name):
            for svc in services().values():
                container_env(svc, {**dotenv, **REQUIRED, name: ""})


def test_every_service_runs_a_real_subcommand() -> None:
    parser = build_parser()
    roles = {}
    for name, svc in ours(services()).items():
        command = command_of(svc)
        try:
            parser.parse_args(command)
        except SystemExit:
            pytest.fail(f"{name}: `mediabot {' '.join(command)}` is not a mediabot command")
        roles[name] = command
    assert roles == {
        "migrate": ["db", "upgrade"],
        "web": ["web"],
        "worker": ["worker"],
        "telegram": ["telegram"],
        "discord": ["discord"],
    }
    parser.parse_args(image_cmd())


def test_dependency_order() -> None:
    svcs = services()
    mediabot = ours(svcs)
    for name, svc in svcs.items():
        for dep, condition in depends(svc).items():
            assert dep in svcs, f"{name} depends on {dep}, which is not a service"
            if condition == "service_healthy":
                assert healthcheck_test(svcs[dep]), f"{name} waits for {dep} to be healthy; it has no check"
            elif condition == "service_completed_successfully":
                assert one_shot(svcs[dep]), f"{name} waits for {dep} to exit, but {dep} restarts"
            else:
                pytest.fail(f"{name} starts when {dep} merely started ({condition})")
            assert not svcs[dep].get("profiles"), f"{name} depends on {dep}, which only runs in a profile"

    assert depends(svcs["migrate"]).get("db") == "service_healthy"
    for name, svc in mediabot.items():
        if name == "migrate":
            continue
        needs = depends(svc)
        assert needs.get("migrate") == "service_completed_successfully", f"{name} must wait for migrate"
        if command_of(svc)[0] in SERVICE_ROLES:
            assert needs.get("redis") == "service_healthy", f"{name} uses Redis"
            assert needs.get("minio") == "service_healthy", f"{name} uses MinIO"
            assert needs.get("minio-init") == "service_completed_successfully", f"{name} needs the bucket"
    assert depends(svcs["minio-init"]).get("minio") == "service_healthy"

    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == "done":
            return
        assert state.get(name) != "active", "dependency cycle: " + " -> ".join([*path, name])
        state[name] = "active"
        for dep in depends(svcs[name]):
            visit(dep, [*path, name])
        state[name] = "done"

    for name in svcs:
        visit(name, [])


def test_workers_scale() -> None:
    worker = services()["worker"]
    assert "container_name" not in worker, "a fixed name allows one worker only"
    assert not worker.get("ports"), "a fixed host port allows one worker only"
    assert not worker.get("hostname"), "the health check finds each worker's heartbeat by its own hostname"


def test_the_worker_count_lives_in_env() -> None:
    """WORKERS in .env, read by `deploy.replicas` on every `up` (Compose v2 casts it to a number)."""
    replicas = str(services()["worker"]["deploy"]["replicas"])
    dotenv = example_env()
    assert "WORKERS" in {line.name for line in env_example()}
    assert interpolate(replicas, dotenv) == "1"
    assert interpolate(replicas, {**dotenv, "WORKERS": "4"}) == "4"
    assert "WORKERS=" in deploy_section()


def test_the_project_name_works_with_every_compose_version() -> None:
    """A top-level `name:` is read by Compose v2 only; COMPOSE_PROJECT_NAME in .env by every version, and
    keeps the volumes' prefix (mediabot_) of deployments made when the file still had `name: mediabot`."""
    assert "name" not in compose()
    assert example_env().get("COMPOSE_PROJECT_NAME") == "mediabot"


async def test_a_bot_without_its_token_exits_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Its profile enabled but no token in .env: the bot says so in one line and exits 0, which its restart
    policy (on failure only) leaves alone, instead of restarting in a loop; a crash still restarts it."""
    svcs = services()
    for bot in BOTS:
        svc = svcs[bot]
        assert svc.get("restart") == "on-failure", bot
        env = container_env(svc, example_env())
        assert env[f"MEDIABOT_{bot.upper()}_TOKEN"] == "", "the example .env has no token"
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "mediabot",
            *command_of(svc),
            env={**{k: v for k, v in os.environ.items() if not k.startswith("MEDIABOT_")}, **env},
            cwd=str(tmp_path),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
        assert proc.returncode == 0, err
        assert out == b""
        assert err.decode().strip() == (
            f"mediabot: nothing to run for '{bot}': set MEDIABOT_{bot.upper()}_TOKEN to run it."
        )


def test_bots_start_only_in_their_profiles() -> None:
    svcs = services()
    for bot in ("telegram", "discord"):
        assert svcs[bot].get("profiles") == [bot]
        token = f"MEDIABOT_{bot.upper()}_TOKEN"
        assert token in (svcs[bot].get("environment") or {})
    for name, svc in svcs.items():
        if name not in ("telegram", "discord"):
            assert not svc.get("profiles"), f"{name} must start with a plain `docker compose up`"


def test_stop_grace_covers_shutdown() -> None:
    svcs = services()
    grace = Settings.model_fields["shutdown_grace_s"].default
    # WorkerRuntime.stop: grace_s for running jobs, then up to 10 s for the hand-back.
    assert seconds(svcs["worker"].get("stop_grace_period", "10s")) > grace + 10
    for name in ("web", "telegram", "discord"):
        assert seconds(svcs[name].get("stop_grace_period", "10s")) > grace, name


def test_every_service_has_a_fitting_healthcheck() -> None:
    svcs = services()
    for name, svc in svcs.items():
        if one_shot(svc):
            assert (svc.get("healthcheck") or {}).get("disable"), (
                f"{name} runs once: disable the image's check"
            )
            continue
        test = healthcheck_test(svc)
        assert test and test[0] in ("CMD", "CMD-SHELL"), f"{name} has no health check"
        if name in BOTS:
            continue  # test_a_bot_without_its_token_exits_once
        assert svc.get("restart") == "unless-stopped", f"{name} should come back after a crash or reboot"
    text = {name: " ".join(healthcheck_test(svc) or []) for name, svc in svcs.items()}
    assert "pg_isready" in text["db"]
    assert "redis-cli ping" in text["redis"]
    assert "mc ready" in text["minio"] or "/minio/health" in text["minio"]
    assert "urllib" in text["web"] and "/health" in text["web"]
    assert "heartbeat_at" in text["worker"]
    assert svcs["telegram"]["healthcheck"] == svcs["discord"]["healthcheck"]


def test_redis_keeps_an_append_only_file() -> None:
    redis = services()["redis"]
    command = command_of(redis)
    assert command[:1] == ["redis-server"] and "--appendonly" in command
    assert command[command.index("--appendonly") + 1] == "yes"
    assert any(v.endswith(":/data") for v in redis["volumes"]), "the append-only file lives in /data"


def test_volumes_are_named_and_declared() -> None:
    spec = compose()
    declared = set(spec.get("volumes") or {})
    used: dict[str, str] = {}
    for name, svc in spec["services"].items():
        for volume in svc.get("volumes", []):
            source, _, target = str(volume).partition(":")
            assert not source.startswith((".", "/")), f"{name}: use a named volume, not {source}"
            used[source] = target.split(":")[0]
            assert source in declared, f"{name} uses volume {source}, which is not declared"
    assert declared == set(used), f"declared but unused: {sorted(declared - set(used))}"
    targets = {
        name: {str(v).split(":")[1] for v in svc.get("volumes", [])} for name, svc in spec["services"].items()
    }
    assert "/var/lib/postgresql/data" in targets["db"]
    assert "/data" in targets["minio"]
    for name in ours(spec["services"]):
        assert image_env()["MEDIABOT_DATA_DIR"] in targets[name], f"{name} keeps its data in a volume"


# ---- ports and the README -------------------------------------------------------------------------------


def deploy_section() -> str:
    text = README.read_text()
    match = re.search(r"^## Deploy\n(.*?)^## ([^\n]*)$", text, re.S | re.M)
    assert match, "README has no '## Deploy' section followed by another section"
    assert match.group(2) == "Development", "'## Deploy' goes right before '## Development'"
    return match.group(1)


def test_published_ports_match_the_readme() -> None:
    svcs = services()
    rows = [line for line in deploy_section().splitlines() if line.startswith("| `")]
    documented: dict[str, set[str]] = {}
    for row in rows:
        first = row.split("|")[1]
        for name in re.findall(r"`([a-z-]+)`", first):
            documented[name] = set(re.findall(r"\d+\.\d+\.\d+\.\d+:\d+", row))
    for name, svc in svcs.items():
        actual = {f"{host}:{port}" for host, port, _ in published(svc)}
        if actual or name in documented:
            assert documented.get(name) == actual, f"{name} publishes {sorted(actual)}; README says otherwise"
    host_ports = {name: {port for _, port, _ in published(svc)} for name, svc in svcs.items()}
    assert host_ports["db"] == {5433}
    assert host_ports["redis"] == {6380}
    assert host_ports["web"] == {8080}
    assert len(host_ports["minio"]) == 2 and not host_ports["minio"] & {9000, 9001, 9090, 9100}
    everything = [port for ports in host_ports.values() for port in ports]
    assert len(everything) == len(set(everything)), "two services publish the same host port"
    web_port = int(container_env(svcs["web"], example_env())["MEDIABOT_PORT"])
    assert {container for _, _, container in published(svcs["web"])} == {web_port}
    assert "--scale worker=" in deploy_section()


# ---- Dockerfile and .dockerignore ----------------------------------------------------------------------


def test_dockerfile_builds_a_small_non_root_image_with_ffmpeg() -> None:
    stages = dockerfile_stages()
    final = stages[-1]
    for stage in stages:
        assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?( AS \w+)?", instruction(stage, "FROM"), re.I)
    runs = [args for key, args in final if key == "RUN"]
    apt = next((run for run in runs if "apt-get install" in run), "")
    assert re.search(r"\bffmpeg\b", apt) and "--no-install-recommends" in apt, "system ffmpeg from apt"
    assert "rm -rf /var/lib/apt/lists" in apt, "apt lists removed in the same layer"
    for stage in stages:
        for key, args in stage:
            if key == "RUN" and "pip install" in args:
                assert "--no-cache-dir" in args, f"pip keeps its cache: {args}"

    user = instruction(final, "USER")
    assert user.split(":")[0] not in ("root", "0"), "the image must not run as root"
    assert any("useradd" in run and user in run for run in runs), f"USER {user} is never created"
    keys = [key for key, _ in final]
    assert keys.index("USER") > max(i for i, (k, _) in enumerate(final) if k == "RUN"), "USER after the RUNs"

    env = image_env()
    assert {k for k in env if k.startswith("MEDIABOT_")} <= SETTINGS
    assert env["MEDIABOT_HOST"] == "0.0.0.0", "a container must listen on every interface"
    data = env["MEDIABOT_DATA_DIR"]
    assert data in json.loads(instruction(final, "VOLUME"))
    assert any(f"chown {user}" in run and data in run for run in runs), f"{data} owned by {user}"
    assert instruction(final, "WORKDIR") == "/app"

    assert json.loads(instruction(final, "ENTRYPOINT")) == ["mediabot"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "mediabot" in scripts
    assert image_cmd() == ["run"]
    assert instruction(final, "HEALTHCHECK").split()[-1] != "NONE"

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = {shlex.split(args)[0] for stage in stages for key, args in stage if key == "COPY"}
    assert packages <= copied, f"the image misses {sorted(packages - copied)}"


def test_dockerignore_keeps_junk_and_secrets_out_but_not_the_sources() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(path: str) -> bool:
        return any(fnmatch.fnmatch(path, p.rstrip("/")) or fnmatch.fnmatch(path, f"**/{p}") for p in patterns)

    for path in (".venv", ".git", ".env", "data", "__pycache__", ".pytest_cache", ".ruff_cache"):
        assert ignored(path), f".dockerignore should exclude {path}"
    sources = [
        shlex.split(args)[0]
        for stage in dockerfile_stages()
        for key, args in stage
        if key == "COPY" and not args.startswith("--from")
    ]
    for source in sources:
        assert not ignored(source), f"the Dockerfile copies {source}, which .dockerignore excludes"


# ---- .env.example ---------------------------------------------------------------------------------------


def test_env_example_lists_every_setting_with_a_comment() -> None:
    lines = env_example()
    names = [line.name for line in lines if line.name.startswith("MEDIABOT_")]
    assert len(names) == len(set(names)), "a setting is listed twice"
    assert set(names) - SETTINGS == set(), f"not settings: {sorted(set(names) - SETTINGS)}"
    assert SETTINGS - set(names) == set(), f"missing from .env.example: {sorted(SETTINGS - set(names))}"
    for line in lines:
        assert line.comment, f"{line.name} needs a comment above it"
        if line.name.startswith("MEDIABOT_"):
            assert line.own_comment, f"{line.name} needs a comment of its own"


def test_env_example_lists_every_compose_variable() -> None:
    listed = {line.name for line in env_example()}
    missing = variables_used() - listed
    assert not missing, f"docker-compose.yml reads {sorted(missing)}; list them in .env.example"
    assert set(REQUIRED) <= listed


def _comparable(settings: Settings) -> dict[str, Any]:
    return {k: (None if v in ("", [], None) else v) for k, v in settings.model_dump().items()}


def test_env_example_defaults_are_the_code_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Uncommenting a line as it stands changes nothing, unless its comment says the default is worked out
    (then the line is an example, and it must at least be valid)."""
    monkeypatch.chdir(tmp_path)
    with environ(monkeypatch, {}):
        baseline = _comparable(Settings(_env_file=None))  # type: ignore[call-arg]
    for line in env_example():
        if not line.name.startswith("MEDIABOT_"):
            continue
        with environ(monkeypatch, {line.name: line.value}):
            settings = Settings(_env_file=None)  # type: ignore[call-arg]
        if line.commented and not any("Default" in text for text in line.comment):
            assert _comparable(settings) == baseline, f"{line.name}={line.value} is not the default"


# ---- the health checks, run for real ---------------------------------------------------------------------


def python_check(test: list[str] | None) -> list[str]:
    assert test and test[:2] == ["CMD", "python"], f"not a Python health check: {test}"
    return [sys.executable, *test[2:]]


async def passes(argv: list[str], env: Mapping[str, str], cwd: Path) -> bool:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        env=dict(env),
        cwd=str(cwd),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    return await asyncio.wait_for(proc.wait(), timeout=30) == 0


async def test_web_and_worker_checks_follow_a_real_process(tmp_path: Path, database_url: str) -> None:
    svcs = services()
    web = python_check(healthcheck_test(svcs["web"]))
    worker = python_check(healthcheck_test(svcs["worker"]))
    image = python_check(["CMD", *json.loads(instruction(final_stage(), "HEALTHCHECK").split("CMD", 1)[1])])
    settings = make_settings(tmp_path, database_url=database_url, port=free_port())
    env = settings_env(settings)

    assert not await passes(web, env, tmp_path), "nothing listens yet"
    assert not await passes(worker, env, tmp_path), "no worker has written a heartbeat yet"

    log = open(tmp_path / "mediabot.log", "wb")  # noqa: SIM115 - closed below
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mediabot", "run", env=env, cwd=str(tmp_path), stdout=log, stderr=log
    )
    try:
        async with asyncio.timeout(60):
            while not (await passes(web, env, tmp_path) and await passes(worker, env, tmp_path)):
                assert proc.returncode is None, (tmp_path / "mediabot.log").read_text()
                await asyncio.sleep(0.5)
        assert await passes(image, env, tmp_path)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), timeout=45) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        log.close()

    assert not await passes(web, env, tmp_path), "the web app stopped"
    assert not await passes(image, env, tmp_path)
    assert not await passes(worker, env, tmp_path), "a stopped worker removes its heartbeat"

    # A heartbeat older than 3 leases is a dead or stuck worker; a fresh one is a live worker.
    engine = create_engine(settings.database_url)
    try:
        sessions = session_factory(engine)
        for age, healthy in ((4 * settings.lease_s, False), (1, True)):
            async with sessions() as session, session.begin():
                session.add(
                    Worker(
                        id=f"check-{age}",
                        hostname=socket.gethostname()[:255],
                        pid=1,
                        concurrency=1,
                        running=0,
                        started_at=utcnow(),
                        heartbeat_at=utcnow() - timedelta(seconds=age),
                    )
                )
            assert await passes(worker, env, tmp_path) is healthy
    finally:
        await engine.dispose()


async def test_bot_check_needs_the_database_and_redis(tmp_path: Path, redis_url: str) -> None:
    check = python_check(healthcheck_test(services()["telegram"]))
    env = settings_env(make_settings(tmp_path, redis_url=redis_url))
    assert await passes(check, env, tmp_path)
    no_redis = {**env, "MEDIABOT_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    assert not await passes(check, no_redis, tmp_path)
    no_database = {**env, "MEDIABOT_DATABASE_URL": f"postgresql://mediabot@127.0.0.1:{free_port()}/mediabot"}
    assert not await passes(check, no_database, tmp_path)
