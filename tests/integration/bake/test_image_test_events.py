"""The verify step's pytest plugin in a real pytest: one event per test, in order, and pytest's own report kept."""

from __future__ import annotations

import subprocess
import sys

import pytest

from toolkit import progress
from toolkit.bake.image_tests import EVENT_ARGS

pytestmark = pytest.mark.integration

TESTS = """import pytest

def test_one():
    pass

@pytest.mark.parametrize("x", [1, 2])
def test_two(x):
    assert x == 1

def test_skipped():
    pytest.skip("not here")

@pytest.fixture
def broken():
    raise RuntimeError("no fixture")

def test_setup_error(broken):
    pass
"""


def test_one_event_per_test_and_no_dots(tmp_path):
    (tmp_path / "test_image.py").write_text(TESTS)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "test_image.py",
            "-p",
            "no:cacheprovider",
            "-o",
            "addopts=",
            "-q",
            "--color=no",
            *EVENT_ARGS,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = proc.stdout.splitlines()
    events = [progress.parse(line) for line in lines if line.startswith(progress.PREFIX)]
    assert events == [
        progress.ImageTest("test_one", "passed", 1, 0, 5),
        progress.ImageTest("test_two[1]", "passed", 2, 0, 5),
        progress.ImageTest("test_two[2]", "failed", 2, 1, 5),
        progress.ImageTest("test_skipped", "skipped", 2, 1, 5),
        progress.ImageTest("test_setup_error", "failed", 2, 2, 5),
    ]
    assert all(line.startswith(progress.PREFIX) for line in lines[:5])  # no dot or letter glued to an event line
    assert "FAILED test_image.py::test_two[2] - assert 2 == 1" in lines
    assert lines[-1].startswith("1 failed, 2 passed, 1 skipped, 1 error in ")
