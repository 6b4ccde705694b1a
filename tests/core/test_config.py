import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from core.config import SettingsError, load_settings


def test_zero_configuration_defaults(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "d")
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / 'd' / 'mediabot.db'}"
    assert settings.storage == "local"
    assert settings.redis_url is None
    assert settings.public_url == "http://127.0.0.1:8080"
    assert settings.max_filesize_bytes == 2_000_000_000


def test_postgres_urls_are_normalised_and_s3_chosen_by_bucket(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, database_url="postgres://u@db:5432/x", s3_bucket="media")
    assert settings.database_url == "postgresql+asyncpg://u@db:5432/x"
    assert settings.storage == "s3"


def test_generated_secret_key_is_kept_and_private(tmp_path: Path) -> None:
    first = load_settings(data_dir=tmp_path).signing_key()
    again = load_settings(data_dir=tmp_path).signing_key()
    assert first == again and len(first) >= 32
    mode = stat.S_IMODE(os.stat(tmp_path / "secret.key").st_mode)
    assert mode & 0o077 == 0


def test_invalid_setting_named_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(data_dir=tmp_path, port="eighty")
    assert "MEDIABOT_PORT" in str(info.value)


def test_cli_reports_invalid_settings_without_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "MEDIABOT_DATA_DIR": str(tmp_path), "MEDIABOT_MAX_FILESIZE_MB": "-5"}
    proc = subprocess.run(
        [sys.executable, "-m", "mediabot", "db", "upgrade"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "MEDIABOT_MAX_FILESIZE_MB" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_worker_without_redis_exits_with_a_clear_message(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIABOT_")}
    env["MEDIABOT_DATA_DIR"] = str(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "mediabot", "worker"], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert "MEDIABOT_REDIS_URL" in proc.stderr


@pytest.mark.parametrize(
    "value, words",
    [
        ("http://nas.lan:8000", "leave out the http://"),
        ("nas.lan:8000/media", "leave out any path"),
        ("nas.lan:99999", "invalid port"),
        ("nas.lan:http", "invalid port"),
        (":8000", "no host name"),
        ("media.lan, https://other.lan", "leave out the https://"),
    ],
)
def test_allowed_private_hosts_refuse_what_they_cannot_use(tmp_path: Path, value: str, words: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(data_dir=tmp_path, allowed_private_hosts=value)
    message = str(info.value)
    assert "MEDIABOT_ALLOWED_PRIVATE_HOSTS" in message and words in message
    assert "\n" not in message


def test_allowed_private_hosts_are_kept_as_written(tmp_path: Path) -> None:
    settings = load_settings(
        data_dir=tmp_path, allowed_private_hosts="NAS.lan:8096, localhost, [::1]:9000, fd00::5, media_box."
    )
    assert settings.allowed_private_hosts == [
        "nas.lan:8096",
        "localhost",
        "[::1]:9000",
        "[fd00::5]",
        "media_box",
    ]


def test_cli_refuses_an_allowed_host_with_a_scheme_in_one_line(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "MEDIABOT_DATA_DIR": str(tmp_path),
        "MEDIABOT_ALLOWED_PRIVATE_HOSTS": "http://nas:8000",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "mediabot", "db", "upgrade"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "MEDIABOT_ALLOWED_PRIVATE_HOSTS" in proc.stderr and "http://" in proc.stderr
