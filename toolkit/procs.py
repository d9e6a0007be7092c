"""This machine's processes and mounts, as /proc shows them (Linux).

Used to end what a bake left running and to prove that a build instance left
nothing behind.
"""

from __future__ import annotations

import ctypes
import os
import signal
from pathlib import Path
from typing import Iterator

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """``preexec_fn``: the kernel kills the child (SIGKILL) when the thread that started it ends, even by SIGKILL."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def stop_with_parent() -> None:
    """``preexec_fn``: the kernel sends the child SIGTERM when the thread that started it ends, even by SIGKILL.

    For a child that cleans up after itself when told to stop (Packer deletes its instance, group and key).
    """
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def processes() -> Iterator[tuple[int, str, str]]:
    """``(pid, command line, root folder)`` of every other process that can be read."""
    proc = Path("/proc")
    if not proc.is_dir():
        return
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            root = os.readlink(entry / "root")
        except OSError:
            continue
        yield int(entry.name), cmdline, root


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie has an empty command line, so it counts as ended)."""
    try:
        return bool(Path(f"/proc/{pid}/cmdline").read_bytes())
    except OSError:
        return False


def started(pid: int) -> str | None:
    """When ``pid`` started (clock ticks after boot, from /proc/PID/stat), or None when it is gone.

    A pid and its start time name one process: a later process given the same
    pid has another start time.
    """
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(") ", 1)[-1].split()[19]
    except (OSError, IndexError):
        return None


def mounts(needles: tuple[str, ...]) -> list[str]:
    """Lines of this mount namespace's mountinfo that mention any of ``needles``."""
    with open("/proc/self/mountinfo") as fh:
        return [line.rstrip("\n") for line in fh if any(n in line for n in needles)]
