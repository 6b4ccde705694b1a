"""Wheels of yt-dlp made from the copy installed here, for update tests that never reach the internet.

A "newer" yt-dlp is the installed package with a bumped version; a broken one has a generic extractor that
raises, or a package that fails to import; a corrupt one is not a zip at all. Each is a proper wheel (zip
with METADATA, WHEEL and RECORD) that pip installs from a --find-links folder or a local index.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import importlib.util
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

Patch = Callable[[str, bytes], bytes]


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def bundled_version() -> str:
    return importlib.metadata.version("yt-dlp")


def ejs_version() -> str | None:
    try:
        return importlib.metadata.version("yt-dlp-ejs")
    except importlib.metadata.PackageNotFoundError:
        return None


def _digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _write_wheel(out: Path, name: str, version: str, files: dict[str, bytes], requires: list[str]) -> Path:
    dist = f"{name.replace('-', '_')}-{version}"
    path = out / f"{dist}-py3-none-any.whl"
    meta = [
        "Metadata-Version: 2.1",
        f"Name: {name}",
        f"Version: {version}",
        *(["Provides-Extra: default"] if requires else []),
        *(f"Requires-Dist: {req}; extra == 'default'" for req in requires),
    ]
    files = dict(files)
    files[f"{dist}.dist-info/METADATA"] = ("\n".join(meta) + "\n").encode()
    files[f"{dist}.dist-info/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: mediabot-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    record = [f"{arc},{_digest(data)},{len(data)}" for arc, data in files.items()]
    record.append(f"{dist}.dist-info/RECORD,,")
    files[f"{dist}.dist-info/RECORD"] = ("\n".join(record) + "\n").encode()
    tmp = path.with_suffix(".part")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for arc, data in files.items():
            zf.writestr(arc, data)
    os.replace(tmp, path)
    return path


def _package_files(name: str, patch: Patch | None = None) -> dict[str, bytes]:
    root = _package_dir(name)
    assert root is not None, f"{name} is not installed"
    files: dict[str, bytes] = {}
    for file in sorted(root.rglob("*")):
        if not file.is_file() or "__pycache__" in file.parts or file.suffix in (".pyc", ".pyo"):
            continue
        arc = f"{name}/{file.relative_to(root).as_posix()}"
        data = file.read_bytes()
        files[arc] = patch(arc, data) if patch else data
    return files


def build_ytdlp(out: Path, version: str, patch: Patch | None = None) -> Path:
    """The installed yt-dlp as a wheel of `version` (its version.py rewritten), plus `patch` per file.
    Pins yt-dlp-ejs to the installed one (or to the stand-in build_ejs makes) as real releases do."""
    old = bundled_version()

    def rewrite(arc: str, data: bytes) -> bytes:
        if arc == "yt_dlp/version.py":
            data = data.replace(f"'{old}'".encode(), f"'{version}'".encode())
        return patch(arc, data) if patch else data

    files = _package_files("yt_dlp", rewrite)
    ejs = ejs_version() or STAND_IN_EJS
    return _write_wheel(out, "yt-dlp", version, files, [f"yt-dlp-ejs=={ejs}"])


STAND_IN_EJS = "0.0.1"


def build_ejs(out: Path) -> Path:
    """yt-dlp-ejs as a wheel: the installed one, or a tiny stand-in when it isn't installed here."""
    version = ejs_version()
    if version is not None and _package_dir("yt_dlp_ejs") is not None:
        return _write_wheel(out, "yt-dlp-ejs", version, _package_files("yt_dlp_ejs"), [])
    # The stand-in has the real package's shape (yt-dlp imports yt_dlp_ejs.yt.solver when it is present).
    files = {
        "yt_dlp_ejs/__init__.py": f"version = {STAND_IN_EJS!r}\n".encode(),
        "yt_dlp_ejs/yt/__init__.py": b"",
        "yt_dlp_ejs/yt/solver/__init__.py": b"def core() -> str:\n    return ''\n\n\ndef lib() -> str:\n    return ''\n",
    }
    return _write_wheel(out, "yt-dlp-ejs", STAND_IN_EJS, files, [])


def generic_raises(arc: str, data: bytes) -> bytes:
    """The generic extractor fails on every link, as a bad release might."""
    if arc != "yt_dlp/extractor/generic.py":
        return data
    marker = b"    def _real_extract(self, url):\n"
    assert marker in data
    return data.replace(
        marker, marker + b"        raise ExtractorError('this build of the generic extractor is broken')\n", 1
    )


def import_fails(arc: str, data: bytes) -> bytes:
    """A release whose package does not even import."""
    if arc == "yt_dlp/version.py":
        return data + b"\nraise ImportError('this yt-dlp build cannot be imported')\n"
    return data


def corrupt(out: Path, version: str) -> Path:
    """Garbage bytes under a wheel's name."""
    path = out / f"yt_dlp-{version}-py3-none-any.whl"
    path.write_bytes(os.urandom(4096))
    return path
