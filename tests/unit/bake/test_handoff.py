"""The bake's steps wait with Packer; its provisioner hands them the host and relays their output and exit code."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from toolkit.bake import handoff

ROOT = Path(__file__).resolve().parents[3]
# Stands in for the steps: prints what it was given, as a child process would too, and exits 3.
FAKE_STEPS = """
import subprocess, sys
from toolkit.bake import handoff
def run(argv):
    print("@rodeo steps got " + " ".join(argv), flush=True)
    subprocess.run(["sh", "-c", "echo from a child; echo to stderr >&2"], timeout=10)
    return 3
sys.exit(handoff.serve(sys.argv[1:], run=run, wait=float(sys.argv[-1])))
"""


def running(pid: int) -> bool:
    """True while ``pid`` runs (an ended orphan may stay a zombie until whoever adopted it reaps it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def serving(bake_dir: Path, wait: float = 30.0) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", FAKE_STEPS, "--bake-dir", str(bake_dir), "--image", "base", str(wait)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_the_client_hands_over_the_host_and_relays_output_and_exit_code(tmp_path, capsysbinary):
    # A folder whose path is longer than a socket address may be (107 bytes): the descriptor path keeps it short.
    bake_dir = tmp_path / ("long-" * 24)
    bake_dir.mkdir()
    steps = serving(bake_dir)
    code = handoff.client(bake_dir, "10.0.0.5", 2222, "admin", timeout=30)
    assert code == 3
    out = capsysbinary.readouterr().out.decode().splitlines()
    assert out == [
        f"@rodeo steps got --image base 30.0 --bake-dir {bake_dir} --host 10.0.0.5 --port 2222 --user admin",
        "from a child",
        "to stderr",
    ]
    assert steps.wait(timeout=30) == 3 and steps.stdout.read() == ""  # nothing of the steps' went anywhere else
    assert sorted(p.name for p in bake_dir.iterdir()) == [handoff.EXIT_CODE]  # the socket is gone


def test_a_client_without_steps_waiting_says_so(tmp_path, capsys):
    started = time.monotonic()
    assert handoff.client(tmp_path, "10.0.0.5", 22, "admin", timeout=0.2) == 1
    assert time.monotonic() - started < 5
    assert capsys.readouterr().err == f"the bake's steps are not waiting in {tmp_path} (see {tmp_path / handoff.LOG})\n"


def test_steps_that_end_without_an_exit_code_fail_the_provisioner(tmp_path, capsys):
    crashing = FAKE_STEPS.replace("    return 3", "    import os; os._exit(9)")
    steps = subprocess.Popen([sys.executable, "-c", crashing, "--bake-dir", str(tmp_path), "30"], cwd=ROOT)
    assert handoff.client(tmp_path, "h", 22, "admin", timeout=30) == 1
    assert steps.wait(timeout=30) == 9
    assert capsys.readouterr().err.endswith(
        f"the bake's steps ended without an exit code (see {tmp_path / handoff.LOG})\n"
    )


def test_steps_nobody_hands_a_host_end_after_their_wait(tmp_path):
    steps = serving(tmp_path, wait=0.3)
    assert steps.wait(timeout=30) == 1
    assert steps.stdout.read() == "no build host came within 0s, or the bake is gone\n"
    assert list(tmp_path.iterdir()) == []


def test_steps_whose_bake_died_stop_waiting(tmp_path):
    # The bake (here a shell) starts the steps and is killed before Packer reaches the host: the steps end too.
    shell = subprocess.run(
        [
            "sh",
            "-c",
            f'"{sys.executable}" -c "$0" --parent $$ --bake-dir "$1" 30 >/dev/null 2>&1 & echo $!',
            FAKE_STEPS,
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    pid = int(shell.stdout)
    deadline = time.monotonic() + 20
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running(pid), "the steps still wait for a bake that is gone"
    assert not (tmp_path / handoff.SOCKET).exists()


def test_steps_stop_when_packers_provisioner_is_gone(tmp_path):
    # The steps run (here: wait for SIGTERM, as the provision step stops Ansible on it); Packer's client is killed.
    waiting = FAKE_STEPS.replace(
        "def run(argv):\n",
        "def run(argv):\n    import signal, time; signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))\n",
    ).replace("    return 3", "    time.sleep(60); return 3")
    steps = subprocess.Popen([sys.executable, "-c", waiting, "--bake-dir", str(tmp_path), "30"], cwd=ROOT)
    client = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "toolkit.bake.handoff",
            "--bake-dir",
            str(tmp_path),
            "--host",
            "h",
            "--port",
            "22",
            "--user",
            "admin",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert client.stdout.readline().startswith("@rodeo steps got")
    client.kill()
    client.wait(timeout=10)
    assert steps.wait(timeout=20) == 143
