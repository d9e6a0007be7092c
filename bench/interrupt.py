#!/usr/bin/env python3
"""Ctrl-C during a bake: how long until the command has ended (the README's "about a second").

Run (as root, after ``make setup``):

    .venv/bin/python bench/interrupt.py --runs 5

In a temp copy of the project (``tests.integration.bakes.Project``) against a
moto server of its own: each run starts ``invoke bake --image base --force``
with a base playbook whose one task sleeps for a minute, waits for that task's
line, sends SIGINT to the command's process group (what Ctrl-C in a terminal
does) and times until the command has exited: Ansible stopped, the build
instance torn down, the key pair deleted, nothing registered. Prints each
run with its exit code and the load average, then the median, min and max.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.integration.bakes import CACHE, Project  # noqa: E402
from toolkit.local import stack  # noqa: E402

REGION = "us-east-1"
SLOW = "    - name: Slow step\n      ansible.builtin.command: sleep 60\n"


def one_run(project: Project) -> tuple[float, int]:
    """Seconds from SIGINT to the command's exit, and its exit code."""
    proc = project.start("bake", "--image", "base", "--force")
    deadline = time.monotonic() + 300
    assert proc.stdout is not None
    for line in proc.stdout:
        if ": Slow step" in line or time.monotonic() > deadline:
            break
    else:
        raise SystemExit(f"the bake ended before its slow step: {proc.stderr.read() if proc.stderr else ''}")
    sent = time.perf_counter()
    os.killpg(proc.pid, signal.SIGINT)
    proc.communicate(timeout=120)
    return time.perf_counter() - sent, proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs (default 5)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="rodeo-bench-interrupt-"))
    st = stack.Stack(state_dir=tmp / "state", cache_dir=CACHE)
    try:
        stack.up(st, REGION)
        project = Project(tmp / "project", st.state_dir)
        project.minimal_images()
        project.append("playbooks/base.yml", SLOW)
        times = []
        for n in range(1, args.runs + 1):
            seconds, code = one_run(project)
            times.append(seconds)
            print(
                f"run {n}: {seconds:.2f} s from SIGINT to exit (exit {code}), load {os.getloadavg()[0]:.2f}", flush=True
            )
        print(
            f"Ctrl-C to exit: median {statistics.median(times):.2f} s (min {min(times):.2f}, max {max(times):.2f}) over {len(times)} runs"
        )
    finally:
        stack.down(st)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
