"""The instance's one-off runner (playbooks/roles/base/files/rodeo-oneoff.py), on this host: user data in, lines and the last line out.

The script runs on the instance with the standard library; it is loaded here
by path and its command runs here for real. On booted instances, through the
journal and CloudWatch Logs: tests/integration/local/test_oneoff_live.py.
"""

from __future__ import annotations

import importlib.util
import json
import signal
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "playbooks/roles/base/files/rodeo-oneoff.py"
loaded = importlib.util.spec_from_file_location("rodeo_oneoff", SCRIPT)
runner = importlib.util.module_from_spec(loaded)
loaded.loader.exec_module(runner)


@pytest.fixture(autouse=True)
def keep_sigterm():
    before = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, before)


def doc(**oneoff) -> bytes:
    return json.dumps({"rodeo": {"app": "web", "env": "prod", **({"oneoff": oneoff} if oneoff else {})}}).encode()


SPECS = [
    ("no user data", None, None),
    ("a shell script", b"#!/bin/sh\necho hi\n", None),
    ("a slot instance's", doc(), None),
    (
        "a command",
        doc(id="0123456789ab", argv=["sh", "-c", "x"], timeout=5),
        {"id": "0123456789ab", "argv": ["sh", "-c", "x"], "timeout": 5},
    ),
]


@pytest.mark.parametrize("name,data,expected", SPECS, ids=[r[0] for r in SPECS])
def test_spec(name, data, expected):
    assert runner.spec(data) == expected


@pytest.mark.parametrize(
    "bad",
    [
        dict(id="a", argv=[], timeout=5),
        dict(id="a", argv=["x"], timeout=0),
        dict(id="a", argv=[1], timeout=5),
        dict(argv=["x"], timeout=5),
    ],
)
def test_a_malformed_command_is_refused(bad):
    with pytest.raises(ValueError):
        runner.spec(doc(**bad))


def test_both_outputs_become_journal_lines_with_their_priority(capfd):
    assert runner.run(["sh", "-c", "echo out; echo err >&2; printf 'no newline'; exit 4"], 10) == 4
    assert sorted(capfd.readouterr().out.splitlines()) == ["<3>err", "<6>no newline", "<6>out"]


def test_exit_codes_of_a_signal_a_missing_program_and_a_timeout(capfd):
    assert runner.run(["sh", "-c", "kill -9 $$"], 10) == 137
    assert runner.run(["/no/such/program"], 10) == 127
    started = time.monotonic()
    assert runner.run(["sh", "-c", "trap '' TERM; sleep 30"], 1) is None  # TERM ignored: KILL after the grace
    assert time.monotonic() - started < 1 + runner.GRACE_SECONDS + 5
    assert runner.end_line("0123456789ab", None, 1) == "rodeo-oneoff 0123456789ab: timed out after 1s"
    assert runner.end_line("0123456789ab", 0, 1) == "rodeo-oneoff 0123456789ab: exit 0"


def test_main_runs_the_command_once_per_instance(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path))
    monkeypatch.setattr(runner, "user_data", lambda: doc(id="0123456789ab", argv=["echo", "ran"], timeout=5))
    assert runner.main() == 0
    first = capfd.readouterr().out.splitlines()
    assert first == [
        "rodeo-oneoff 0123456789ab: running echo ran (timeout 5s)",
        "<6>ran",
        "rodeo-oneoff 0123456789ab: exit 0",
    ]
    assert runner.main() == 0  # a reboot: not again
    assert capfd.readouterr().out.splitlines() == [
        "rodeo-oneoff 0123456789ab: ran at an earlier boot of this instance; not again"
    ]
