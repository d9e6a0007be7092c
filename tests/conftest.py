"""Suite-wide: the slowest test files first; Ctrl-C as a terminal sends it.

The suite runs on pytest-xdist workers with ``--dist loadfile``: a file is one
unit of work, handed out in this order (``--no-loadscope-reorder`` in
pyproject.toml keeps it; xdist's own would hand out the files with the most
tests first). The list is ordered by measured duration (each file's time
on its worker in a full run, 2026-12-06; files of under 20 s left out),
slowest first, so no long file starts last; a file not listed keeps its
place after them.
"""

from __future__ import annotations

import signal

import pytest

SLOWEST_FIRST = (
    "tests/integration/local/test_release_live.py",
    "tests/integration/release/test_crash.py",
    "tests/integration/local/test_live.py",
    "tests/integration/bake/test_cache.py",
    "tests/integration/test_deploy.py",
    "tests/integration/bake/test_bake.py",
    "tests/integration/test_heroku_habits.py",
    "tests/integration/release/test_config_release.py",
    "tests/integration/test_faults.py",
    "tests/integration/local/test_oneoff_live.py",
    "tests/integration/bake/test_secrets.py",
    "tests/bad_input/test_corpus.py",
    "tests/integration/bake/test_provision_speed.py",
    "tests/integration/local/test_procfile_live.py",
    "tests/integration/test_release_interrupts.py",
    "tests/integration/local/test_classic_live.py",
    "tests/integration/test_review.py",
    "tests/integration/bake/test_stopped.py",
    "tests/integration/local/test_logs_live.py",
    "tests/integration/local/test_regions_live.py",
    "tests/integration/local/test_cleanup.py",
    "tests/integration/images/test_check.py",
    "tests/integration/test_iam.py",
    "tests/integration/release/test_classic.py",
    "tests/integration/bake/test_parallel.py",
    "tests/integration/bake/test_app_source.py",
    "tests/integration/doctor/test_doctor.py",
    "tests/integration/release/test_release.py",
    "tests/integration/release/test_scaling.py",
    "tests/integration/release/test_waves.py",
    "tests/integration/release/test_issue9.py",
    "tests/integration/local/test_config_unit_boot.py",
    "tests/unit/bake/test_parallel.py",
)


def pytest_configure(config):
    """Ctrl-C raises KeyboardInterrupt here and in every process the tests start, however pytest was started.

    A shell without job control starts a background command (``make test &``)
    with SIGINT ignored, and every process inherits that: the tests that
    send Ctrl-C to Rodeo would fail for how the suite was started.
    """
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_modifyitems(items):
    rank = {path: i for i, path in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


@pytest.fixture(autouse=True)
def ctrl_c_left_as_it_was():
    """A test must not leave a SIGINT handler behind: later tests on the same worker rely on Ctrl-C raising KeyboardInterrupt."""
    before = signal.getsignal(signal.SIGINT)
    yield
    after = signal.getsignal(signal.SIGINT)
    if after is not before:
        signal.signal(signal.SIGINT, before)
        pytest.fail(f"this test left a SIGINT handler behind: {after!r}")
