"""Which tests share one pytest-xdist worker.

`make test` runs the suite on several workers with `--dist loadgroup`. The tests of the "serial" group run in
one worker, one after another, never beside each other: the folders below (they kill and restart processes
and servers, fill a tmpfs, drive a browser, fuzz the API) and the tests marked
`@pytest.mark.xdist_group("serial")` elsewhere (they assert how long something took, or kill a worker). The
other workers share the rest, test by test.
"""

from __future__ import annotations

import os

import pytest

SERIAL = "serial"
SERIAL_PATHS = ("tests/faults/", "tests/browser/", "tests/ytdlp/", "tests/web/test_fuzz.py")


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups from the marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.nodeid.startswith(SERIAL_PATHS):
            item.add_marker(pytest.mark.xdist_group(SERIAL))
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # The serial group is the longest piece of work: handed out first, it ends with the rest, not after.
        items.sort(
            key=lambda item: not any(m.args[:1] == (SERIAL,) for m in item.iter_markers("xdist_group"))
        )


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist sends the names to the scheduler
def pytest_collection_finish(session: pytest.Session) -> None:
    """pytest-xdist 3.8 tells the scheduler a test's group by renaming it `<nodeid>@<group>` in the legacy
    `_nodeid` attribute, which pytest 9.2 no longer reads (pytest-xdist issue 1386): every group then falls
    apart silently. Carry the name over to the structured id while that is so."""
    for item in session.items:
        legacy = vars(item).get("_nodeid")
        structured = getattr(item, "_id", None)
        if legacy and structured is not None and str(structured) != legacy:
            item._id = type(structured).parse(legacy)
