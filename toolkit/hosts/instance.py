"""The bake's side of a build instance the live local stack boots (``toolkit.local.buildinstances``).

Packer launches the instance (RunInstances on moto); the stack boots it under
systemd-nspawn, cloud-init writes the key pair's key, and its sshd is served
on a unix socket named after the bake once systemd is up. ``ssh_port`` gives
Packer a 127.0.0.1 port whose connections wait for that socket (bounded),
then reach the instance's port 22: Packer's first SSH attempt succeeds as
soon as the instance is up, with no retry interval lost.

``handed_back`` waits, after Packer, for the stack to have powered the
instance off and left its upper layer where the bake can take it. Teardown
always runs: the forwarder ends, an instance Packer left (killed, say) is
terminated through the API, and its disk comes back to the bake's folder.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator

from toolkit import procs
from toolkit.errors import SandboxError
from toolkit.hosts import sandbox

SSH_WAIT = 180  # seconds a connection to the forwarder waits for the instance's sshd
HANDOVER_TIMEOUT = 60.0
BAKE_TAG = "rodeo:bake"


def connect_script(sock: Path, wait: int = SSH_WAIT) -> str:
    """The script socat runs for each connection: wait for ``sock``, then relay to it (stdio)."""
    return (
        f"#!/bin/sh\ni=0\nwhile [ ! -S '{sock}' ] && [ $i -lt {wait * 10} ]; do sleep 0.1; i=$((i+1)); done\n"
        f"exec socat STDIO 'UNIX-CONNECT:{sock}'\n"
    )


@contextlib.contextmanager
def ssh_port(sock: Path, folder: Path) -> Iterator[tuple[int, int]]:
    """A 127.0.0.1 port relaying to the build instance's SSH socket ``sock``: ``(port, forwarder pid)``.

    The relay script lives in ``folder`` (socat's address syntax splits a command line at ``:`` and ``,``).
    """
    port = sandbox._free_port()
    script = folder / "ssh-relay.sh"
    script.write_text(connect_script(sock))
    log = folder / "ssh-forwarder.log"
    cmd = ["socat", f"TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr", f"EXEC:sh {script}"]
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=procs.die_with_parent,
            env={"PATH": sandbox._PATH},
        )
    try:
        _wait_listening(proc, port)
        yield port, proc.pid
    finally:
        sandbox._stop(proc)


def kept_ssh_port(sock: Path, folder: Path) -> tuple[int, int]:
    """Like ``ssh_port``, detached: the forwarder outlives this process (``--keep-on-failure``); ``(port, pid)``."""
    port = sandbox._free_port()
    script = folder / "ssh-relay.sh"
    script.write_text(connect_script(sock))
    with open(folder / "ssh-forwarder.log", "ab") as out:
        proc = subprocess.Popen(
            ["socat", f"TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr", f"EXEC:sh {script}"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={"PATH": sandbox._PATH},
        )
    _wait_listening(proc, port)
    return port, proc.pid


def _wait_listening(proc: subprocess.Popen, port: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.02)
    raise SandboxError(
        f"the build instance's SSH forwarder did not listen on 127.0.0.1:{port}", "is socat installed? (make setup)"
    )


def launched(ec2, bake_id: str, tag: str = BAKE_TAG) -> list[dict]:
    """The instances launched for ``bake_id`` (tagged ``tag``), terminated ones too."""
    pages = ec2.get_paginator("describe_instances").paginate(Filters=[{"Name": f"tag:{tag}", "Values": [bake_id]}])
    return [i for page in pages for r in page["Reservations"] for i in r["Instances"]]


def end_instances(ec2, bake_id: str, tag: str = BAKE_TAG) -> list[str]:
    """Terminate what was left running for ``bake_id`` (Packer killed, say); the ids."""
    left = [i["InstanceId"] for i in launched(ec2, bake_id, tag) if i["State"]["Name"] != "terminated"]
    if left:
        with contextlib.suppress(Exception):
            ec2.terminate_instances(InstanceIds=left)
    return left


def take_disk(handover: Path, upper: Path, ever_launched: bool, timeout: float = HANDOVER_TIMEOUT) -> bool:
    """Move the build instance's upper layer from ``handover`` to ``upper`` once the stack left it there.

    Waits (bounded) only when an instance was launched at all. False when none came back.
    """
    deadline = time.monotonic() + (timeout if ever_launched else 0)
    while not handover.is_dir() and time.monotonic() < deadline:
        time.sleep(0.1)
    if not handover.is_dir():
        return False
    shutil.rmtree(upper, ignore_errors=True)
    upper.parent.mkdir(parents=True, exist_ok=True)
    handover.rename(upper)
    return True
