"""Downloads in child processes, so a process that serves people and downloads (`mediabot run`) uses every
core: yt-dlp's read loop, extraction and the post-processors are Python and hold the GIL, so threads of one
process share one core however many downloads run.

The pool is made empty: the first call starts a child (a fresh interpreter that imports yt-dlp, never a fork
of a process with an event loop, threads and a listening socket), more start while every child is busy, up
to `processes`, and a child idle for `idle_s` is told to exit, so an idle process holds none. Each child runs
several calls at once in threads (`slots` each). The parent keeps the database, the queue and the events:
a call's progress, its callbacks (`on_info`, `choose_format`: asked of the parent, answered over the pipe)
and its outcome come back on the calling thread, which is what the downloader's callers already expect
(`LazyDownloader.run` blocks on a download thread of the runner).

Cancel: the parent's `Control.stop()` is seen by the calling thread, which tells the child; the child
stops its own Control (hooks raise, open sockets are shut) as an in-process download does; a child that has
not answered `CANCEL_GRACE_S` later is killed with its process group (ffmpeg included). A child is its own
process group and exits (killing that group) when its pipe to the parent closes, so a parent that dies
leaves no child behind; `close()` kills them all on stop."""

from __future__ import annotations

import atexit
import contextlib
import itertools
import logging
import math
import os
import pickle
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from core.config import Settings
from core.errors import Cancelled, DownloadFailed, MediabotError
from core.media.control import Control

log = logging.getLogger(__name__)

# A child with nothing to do for this long exits (the next call starts a new one: ~0.3-0.5 s of imports on a
# quiet machine, paid by that job), so memory goes back after a quiet spell, not between two jobs.
IDLE_S = 300.0
# A cancelled call whose child has not answered by then (stuck outside yt-dlp's hooks) ends with the child.
CANCEL_GRACE_S = 10.0
# How often a waiting caller looks at its Control's cancel flag.
_POLL_S = 0.1

_CONTROL = "__control__"
# Calls a child answers that are functions of yt-dlp's, not methods of the Downloader: "module:name".
_FUNCTIONS = {
    "site_of_url": "core.media.sites:site_of_url",
    "supported_by": "core.media.options:supported_by",
}


@dataclass(frozen=True)
class _Callback:
    key: int


def _error_to_wire(exc: BaseException) -> tuple[Any, ...]:
    if isinstance(exc, MediabotError):
        cls = type(exc)
        return ("mediabot", cls.__module__, cls.__qualname__, dict(exc.__dict__), exc.args)
    return ("other", f"{type(exc).__name__}: {exc}")


def _error_from_wire(wire: tuple[Any, ...]) -> BaseException:
    if wire[0] == "mediabot":
        _, module, qualname, state, args = wire
        try:
            cls: Any = sys.modules.get(module) or __import__(module, fromlist=["_"])
            for part in qualname.split("."):
                cls = getattr(cls, part)
            error = Exception.__new__(cls)
            error.args = args
            error.__dict__.update(state)
            return error
        except Exception:  # noqa: BLE001 - an error class we cannot rebuild is still the job's failure
            return DownloadFailed()
    return ChildError(wire[1])


class ChildError(RuntimeError):
    """An unexpected error inside a child (its traceback is in the log, from the child)."""


# -- the parent's side ----------------------------------------------------------------------------------------


@dataclass
class _Call:
    inbox: queue.Queue[tuple[Any, ...]] = field(default_factory=queue.Queue)


class _Child:
    """One child process, its pipe, and the calls it runs."""

    def __init__(self, pool: ProcessPool) -> None:
        self.pool = pool
        parent_end, child_end = socket.socketpair()
        root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        code = "import sys; from core.media.procpool import child_main; child_main(int(sys.argv[1]))"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, str(child_end.fileno())],
            pass_fds=(child_end.fileno(),),
            env=env,
            stdin=subprocess.DEVNULL,
            # Its own process group: a kill reaches the ffmpeg it started, and a Ctrl-C in the terminal
            # reaches only the parent, which decides how running downloads end.
            start_new_session=True,
        )
        child_end.close()
        self.conn = Connection(parent_end.detach())
        self.pid = self.proc.pid
        self.calls: dict[int, _Call] = {}
        self.alive = True
        self.idle_since = time.monotonic()
        self._send_lock = threading.Lock()
        # The parent's sys.path: the same yt-dlp (DATA_DIR/ytdlp's current version, core.ytdlp.versions).
        self.send(("start", pool.settings, logging.getLogger().getEffectiveLevel(), list(sys.path)))
        self._reader = threading.Thread(target=self._read, name=f"download-child-{self.pid}", daemon=True)
        self._reader.start()

    def send(self, message: tuple[Any, ...]) -> None:
        with self._send_lock:
            self.conn.send(message)

    def _read(self) -> None:
        try:
            while True:
                message = self.conn.recv()
                kind = message[0]
                if kind == "log":
                    _relay_log(message[1])
                    continue
                call = self.calls.get(message[1])
                if call is not None:
                    call.inbox.put(message)
        except (EOFError, OSError):
            pass
        except Exception:
            log.exception("download child %d: unreadable message", self.pid)
        self.alive = False
        with self.pool.lock:
            for call in self.calls.values():
                call.inbox.put(("died",))
            self.pool.forget(self)
        with contextlib.suppress(OSError):
            self.conn.close()
        self.reap()

    def kill(self) -> None:
        """The child and everything it started (ffmpeg), at once."""
        with contextlib.suppress(OSError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            self.proc.kill()

    def reap(self) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
            return
        self.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)


class ProcessPool:
    """Child processes that run a `core.media.downloader.Downloader`'s methods for this process."""

    def __init__(self, settings: Settings, processes: int, *, idle_s: float = IDLE_S) -> None:
        self.settings = settings
        self.processes = max(1, processes)
        # Threads per child: together they take the whole concurrency (probes and listings ride along).
        self.slots = max(1, math.ceil(settings.worker_concurrency / self.processes))
        self.idle_s = idle_s
        self.lock = threading.Lock()
        self.children: list[_Child] = []
        self._ids = itertools.count(1)
        self._closed = False
        self._janitor: threading.Thread | None = None
        atexit.register(self.close)

    @property
    def pids(self) -> list[int]:
        with self.lock:
            return [c.pid for c in self.children]

    def forget(self, child: _Child) -> None:
        """Called with `lock` held."""
        if child in self.children:
            self.children.remove(child)

    def _take(self, call_id: int) -> tuple[_Child, _Call]:
        with self.lock:
            if self._closed:
                raise Cancelled()
            live = [c for c in self.children if c.alive]
            free = [c for c in live if not c.calls]
            if free:
                child = free[0]
            elif len(live) < self.processes:
                child = _Child(self)
                self.children.append(child)
                log.info(
                    "download process %d started (%d of up to %d)", child.pid, len(live) + 1, self.processes
                )
                self._watch_idle()
            else:
                child = min(live, key=lambda c: len(c.calls))
            call = _Call()
            child.calls[call_id] = call
            return child, call

    def _give_back(self, child: _Child, call_id: int) -> None:
        with self.lock:
            child.calls.pop(call_id, None)
            if not child.calls:
                child.idle_since = time.monotonic()

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """`Downloader.<method>(*args, **kwargs)` in a child, from a worker thread (it blocks until done).
        A `Control` among the arguments is mirrored in the child; callables are called back here."""
        control: Control | None = None
        callbacks: dict[int, Callable[..., Any]] = {}

        def wire(value: Any) -> Any:
            nonlocal control
            if isinstance(value, Control):
                control = value
                return _CONTROL
            if callable(value) and not isinstance(value, type):
                key = len(callbacks)
                callbacks[key] = value
                return _Callback(key)
            return value

        wired_args = tuple(wire(a) for a in args)
        wired_kwargs = {k: wire(v) for k, v in kwargs.items()}
        call_id = next(self._ids)
        child, call = self._take(call_id)
        try:
            child.send(("call", call_id, method, wired_args, wired_kwargs))
            return self._wait(child, call, call_id, control, callbacks)
        finally:
            self._give_back(child, call_id)

    def _wait(
        self,
        child: _Child,
        call: _Call,
        call_id: int,
        control: Control | None,
        callbacks: dict[int, Callable[..., Any]],
    ) -> Any:
        cancel_sent_at: float | None = None
        while True:
            if control is not None and control.cancel.is_set() and cancel_sent_at is None:
                cancel_sent_at = time.monotonic()
                with contextlib.suppress(OSError):
                    child.send(("cancel", call_id))
            if cancel_sent_at is not None and time.monotonic() - cancel_sent_at > CANCEL_GRACE_S:
                log.warning("download process %d did not stop a cancelled download; killing it", child.pid)
                child.kill()
                raise Cancelled()
            try:
                message = call.inbox.get(timeout=_POLL_S)
            except queue.Empty:
                continue
            kind = message[0]
            if kind == "progress":
                if control is not None and control.on_progress is not None:
                    control.on_progress(message[2])
            elif kind == "ask":
                _, _, ask_id, key, ask_args = message
                try:
                    answer: tuple[Any, ...] = ("answer", call_id, ask_id, True, callbacks[key](*ask_args))
                except BaseException as exc:  # noqa: BLE001 - the child raises it where it asked
                    answer = ("answer", call_id, ask_id, False, _error_to_wire(exc))
                with contextlib.suppress(OSError):
                    child.send(answer)
            elif kind == "done":
                _, _, ok, value = message
                if ok:
                    return value
                raise _error_from_wire(value)
            elif kind == "died":
                if cancel_sent_at is not None or self._closed:
                    raise Cancelled()
                log.error(
                    "download process %d ended during a download (exit code %s)", child.pid, child.proc.poll()
                )
                raise DownloadFailed()

    def _watch_idle(self) -> None:
        """Called with `lock` held: a thread that retires children idle for `idle_s`, while there are any."""
        if self._janitor is not None and self._janitor.is_alive():
            return
        self._janitor = threading.Thread(target=self._retire_idle, name="download-children-idle", daemon=True)
        self._janitor.start()

    def _retire_idle(self) -> None:
        while True:
            time.sleep(min(self.idle_s / 4, 5.0))
            with self.lock:
                if self._closed or not self.children:
                    self._janitor = None
                    return
                now = time.monotonic()
                for child in list(self.children):
                    if not child.calls and now - child.idle_since >= self.idle_s:
                        # Under the lock: no call can pick it meanwhile.
                        self.children.remove(child)
                        child.alive = False
                        with contextlib.suppress(OSError):
                            child.send(("exit",))
                        log.info("download process %d idle for %.0f s: stopped", child.pid, self.idle_s)

    def warm_up(self) -> None:
        """Start one child and have it import yt-dlp's extractors, ahead of the first job."""
        self.call("warm_up")

    def close(self) -> None:
        """Stop every child now (their calls end as cancelled or failed); no process is left behind."""
        with self.lock:
            self._closed = True
            children = list(self.children)
            self.children.clear()
        for child in children:
            child.alive = False
            child.kill()
        for child in children:
            child.reap()


def _relay_log(record: dict[str, Any]) -> None:
    """A child's log record, handled here as if it had been logged here (redaction, handlers, levels)."""
    from core.logs import REDACTOR

    made = logging.makeLogRecord(record)
    REDACTOR.filter(made)
    logger = logging.getLogger(made.name)
    if logger.isEnabledFor(made.levelno):
        logger.handle(made)


# -- the child's side -----------------------------------------------------------------------------------------


class _ToParent(logging.Handler):
    def __init__(self, send: Callable[[tuple[Any, ...]], None]) -> None:
        super().__init__()
        self._send = send

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            data = {
                "name": record.name, "levelno": record.levelno, "levelname": record.levelname,
                "msg": record.getMessage(), "args": None, "exc_text": record.exc_text,
                "created": record.created, "msecs": record.msecs, "pathname": record.pathname,
                "lineno": record.lineno, "funcName": record.funcName, "process": record.process,
                "threadName": record.threadName,
            }  # fmt: skip
            self._send(("log", data))
        except Exception:  # noqa: BLE001 - a log line must never break a download
            self.handleError(record)


def _wire_safe(value: Any) -> Any:
    """A value the parent can unpickle: yt-dlp's info dicts may hold lazy lists and such; they go as the
    JSON-like copy yt-dlp makes for that."""
    try:
        pickle.dumps(value)
        return value
    except Exception:  # noqa: BLE001
        import json

        from yt_dlp.utils import sanitize_info

        return json.loads(json.dumps(sanitize_info(value), default=repr))


def child_main(fd: int) -> None:
    """A download child: serve calls from the parent over `fd` until told to exit or the parent is gone."""
    conn = Connection(fd)
    send_lock = threading.Lock()

    def send(message: tuple[Any, ...]) -> None:
        with send_lock:
            conn.send(message)

    def gone() -> None:
        # The parent is gone (or said so): nothing here may outlive it, ffmpeg included.
        with contextlib.suppress(OSError):
            os.killpg(0, signal.SIGKILL)
        os._exit(0)

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        _, settings, level, path = conn.recv()
    except (EOFError, OSError):
        gone()
    sys.path[:] = path  # before yt-dlp is imported: the version the parent would load
    # Records go to the parent, which redacts and writes them with its own handlers and levels.
    root = logging.getLogger()
    root.handlers[:] = [_ToParent(send)]
    root.setLevel(level)
    for name in ("aiosqlite", "asyncpg", "sqlalchemy", "urllib3", "botocore"):
        logging.getLogger(name).setLevel(max(level, logging.INFO))

    from core.media.downloader import Downloader

    downloader = Downloader(settings)
    controls: dict[int, Control] = {}
    asks: dict[int, queue.Queue[tuple[bool, Any]]] = {}
    ask_ids = itertools.count(1)
    lock = threading.Lock()

    def run(
        call_id: int, control: Control, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        def unwire(value: Any) -> Any:
            if isinstance(value, str) and value == _CONTROL:
                return control
            if isinstance(value, _Callback):
                return lambda *a: ask(call_id, value.key, a)
            return value

        try:
            if method in _FUNCTIONS:
                module, name = _FUNCTIONS[method].split(":")
                target = getattr(__import__(module, fromlist=[name]), name)
            else:
                target = getattr(downloader, method)
            result = target(*(unwire(a) for a in args), **{k: unwire(v) for k, v in kwargs.items()})
            reply: tuple[Any, ...] = ("done", call_id, True, result)
        except BaseException as exc:  # noqa: BLE001 - every outcome goes back to the caller
            if not isinstance(exc, MediabotError):
                logging.getLogger("core.media.downloader").exception("download failed unexpectedly")
            reply = ("done", call_id, False, _error_to_wire(exc))
        finally:
            with lock:
                controls.pop(call_id, None)
            _trim_memory()
        try:
            send(reply)
        except Exception as exc:  # noqa: BLE001 - e.g. a result that would not pickle
            send(("done", call_id, False, ("other", f"{type(exc).__name__}: {exc}")))

    def ask(call_id: int, key: int, args: tuple[Any, ...]) -> Any:
        ask_id = next(ask_ids)
        inbox: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=1)
        with lock:
            asks[ask_id] = inbox
        try:
            send(("ask", call_id, ask_id, key, tuple(_wire_safe(a) for a in args)))
            ok, value = inbox.get()
        finally:
            with lock:
                asks.pop(ask_id, None)
        if ok:
            return value
        raise _error_from_wire(value)

    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            gone()
        kind = message[0]
        if kind == "call":
            _, call_id, method, args, kwargs = message
            # Registered here, before the next message is read: a cancel right behind the call finds it.
            control = Control(on_progress=lambda update, call_id=call_id: send(("progress", call_id, update)))
            with lock:
                controls[call_id] = control
            threading.Thread(target=run, args=(call_id, control, method, args, kwargs), daemon=True).start()
        elif kind == "answer":
            _, _, ask_id, ok, value = message
            with lock:
                waiting = asks.get(ask_id)
            if waiting is not None:
                waiting.put((ok, value))
        elif kind == "cancel":
            with lock:
                control = controls.get(message[1])
            if control is not None:
                control.stop()
        elif kind == "exit":
            gone()


_libc: Any = None


def _trim_memory() -> None:
    """Freed memory back to the system after each call (as worker.memory does for a worker's threads)."""
    global _libc
    if _libc is None:
        import ctypes

        try:
            _libc = ctypes.CDLL("libc.so.6")
        except OSError:
            _libc = False
    if _libc:
        _libc.malloc_trim(0)
