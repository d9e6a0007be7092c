"""Each instance in a control group of its own, so that no two booted instances share their systemd's cgroups.

``systemd-nspawn --keep-unit`` makes its container's cgroup ``payload`` (and
its own ``supervisor``) under the cgroup it was started in. Started side by
side from one process, every container got the same ``payload``: their
systemds shared ``init.scope`` and every ``system.slice/<unit>``, and one
instance removing a unit's cgroup as it finished (``systemd-user-sessions``)
while another started the same unit failed that unit there ("Failed to
attach to cgroup ... No such file or directory"): its ``/run/nologin`` stayed
and sshd refused every login. Now each nspawn starts in ``rodeo-<stack>-<instance>``
(``<stack>``: the stack's run folder's hash) under the starting process's cgroup, in each hierarchy systemd keeps its
processes in (the unified one, and ``name=systemd`` on a legacy or hybrid
machine), and the folders go when the instance has stopped.

``hierarchies`` and ``own_path`` parse the process's mount and cgroup tables (pure).
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

PREFIX = "rodeo-"
REMOVE_TIMEOUT = 2.0  # seconds an ended container's processes may take to leave their cgroups


def hierarchies(mountinfo: str) -> list[tuple[str, str, str]]:
    """(key in /proc/self/cgroup, mount point, root of the mount) of the hierarchies systemd tracks processes in:
    the cgroup2 one (key ``""``) and a v1 ``name=systemd`` one (key ``name=systemd``)."""
    found = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if " - " not in line or len(fields) < 10:
            continue
        after = line.split(" - ", 1)[1].split()
        fstype, options = after[0], after[2] if len(after) > 2 else ""
        root, point = fields[3], fields[4]
        if fstype == "cgroup2":
            found.append(("", point, root))
        elif fstype == "cgroup" and "name=systemd" in options.split(","):
            found.append(("name=systemd", point, root))
    return found


def own_path(cgroup_table: str, key: str) -> str | None:
    """This process's path in the hierarchy ``key`` names (``""``: cgroup2's ``0::`` line), from /proc/self/cgroup."""
    for line in cgroup_table.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3 and (parts[1] == key if key else parts[0] == "0" and parts[1] == ""):
            return parts[2]
    return None


def folders_for(name: str) -> list[Path]:
    """The cgroup folders an instance named ``name`` starts in, one per hierarchy (made if absent); the hierarchies
    this machine does not let us write are left out (the instance then starts where its starter is)."""
    mountinfo = Path("/proc/self/mountinfo").read_text()
    table = Path("/proc/self/cgroup").read_text()
    made = []
    for key, point, root in hierarchies(mountinfo):
        path = own_path(table, key)
        if path is None or not path.startswith(root):
            continue
        folder = Path(point) / path[len(root) :].lstrip("/") / f"{PREFIX}{name}"
        with contextlib.suppress(OSError):
            folder.mkdir(exist_ok=True)
            made.append(folder)
    return made


def enter(folders: list[Path]) -> None:
    """Move the calling process into ``folders`` (in a child between fork and exec: system calls only, no Python
    file objects, whose locks another thread of the parent may have held at the fork)."""
    for folder in folders:
        with contextlib.suppress(OSError):
            fd = os.open(os.path.join(folder, "cgroup.procs"), os.O_WRONLY)
            try:
                os.write(fd, b"%d\n" % os.getpid())
            finally:
                os.close(fd)


def freeze(folders: list[Path], frozen: bool = True) -> bool:
    """Freeze (or thaw) every process of an instance: cgroup v2's ``cgroup.freeze`` in its unified folder.

    A frozen process runs nothing and answers nothing (a connection to it is
    accepted by the kernel and then hangs), and is killed by SIGKILL as any
    other. False when none of ``folders`` is a cgroup v2 folder.
    """
    done = False
    for folder in folders:
        control = folder / "cgroup.freeze"
        if control.exists():
            with contextlib.suppress(OSError):
                control.write_text("1" if frozen else "0")
                done = True
    return done


def remove(folders: list[Path], timeout: float = REMOVE_TIMEOUT) -> None:
    """Remove ``folders`` and the cgroups the instance's systemd left in them, deepest first; a cgroup still holding
    a process that is ending is tried again for up to ``timeout`` seconds, then left."""
    deadline = time.monotonic() + timeout
    while True:
        for folder in folders:
            for dirpath, _, _ in sorted(os.walk(folder), key=lambda walked: -walked[0].count("/")):
                with contextlib.suppress(OSError):
                    os.rmdir(dirpath)
        if not any(folder.is_dir() for folder in folders) or time.monotonic() >= deadline:
            return
        time.sleep(0.05)


def sweep(stack: str) -> None:
    """Remove the cgroup folders a stack's instances left (``<stack>-<instance>``, anywhere in the hierarchies):
    a server killed with SIGKILL never removed them, and nothing else does."""
    for _, point, _ in hierarchies(Path("/proc/self/mountinfo").read_text()):
        found = [Path(dirpath) / d for dirpath, dirs, _ in os.walk(point) for d in dirs if d.startswith(f"{stack}-")]
        remove(found, timeout=0)
