import os

import pytest

pytest_plugins = [
    "tests.support.s3",
    "tests.support.media_fixtures",
    "tests.support.services",
    "tests.support.servers",
    "tests.fakes.telegram",
    "tests.fakes.discord",
    "tests.fakes.pot_provider",
]

# `make test` runs the suite on several pytest-xdist workers (`--dist loadgroup`). The tests of the "serial"
# group all run in one worker, one after another, never beside each other: these folders (they kill and
# restart processes and servers, fill a tmpfs, drive a browser, fuzz the API) and the tests marked
# `@pytest.mark.xdist_group("serial")` elsewhere (they assert how long something took, or kill a worker).
SERIAL = "serial"
SERIAL_PATHS = ("tests/faults/", "tests/browser/", "tests/ytdlp/", "tests/web/test_fuzz.py")


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups from the marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.nodeid.startswith(SERIAL_PATHS):
            item.add_marker(pytest.mark.xdist_group(SERIAL))
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # The serial group is the longest piece of work: handed out first, it ends with the rest, not after.
        items.sort(key=lambda item: not _in_group(item, SERIAL))


def _in_group(item: pytest.Item, group: str) -> bool:
    return any(mark.args[:1] == (group,) for mark in item.iter_markers("xdist_group"))
