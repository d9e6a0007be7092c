"""The bake's steps, started before Packer and handed the build host when Packer reaches it.

A bake's steps (``toolkit.bake.ssh_steps``: provision, image tests, seal) used to
start only when Packer's ``shell-local`` provisioner ran, after the build
instance answered SSH: their Python start and imports (ansible-runner,
pytest, testinfra, the toolkit) then came on top of the boot. Now the bake
starts them with Packer (``start``): they bind a unix socket in the bake's
folder, import what they need while the instance boots, and wait. Packer's
provisioner is a small client (``python -m toolkit.bake.handoff --bake-dir
DIR --host HOST --port PORT --user USER``) that sends the host Packer reached
and relays the steps' output (their progress events, as before) to Packer;
its exit code is the steps'. Nothing in this depends on where the instance
runs: on EC2 the host is the instance's address, which only Packer knows.

The socket and the exit code live in the bake's folder (``steps.sock``,
``steps.rc``). A bake folder's path may be longer than a socket address
allows (107 bytes), so both ends name the socket through an open descriptor
of the folder (``/proc/self/fd/N/steps.sock``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

SOCKET = "steps.sock"
EXIT_CODE = "steps.rc"
LOG = "steps.log"
WAIT_FOR_PACKER = (
    3600.0  # seconds the steps wait for Packer to reach the host (Packer's own SSH timeout ends a bake sooner)
)
CONNECT_TIMEOUT = 120.0  # seconds the client waits for the steps' socket (they bind it first thing)


@contextlib.contextmanager
def _address(folder: Path) -> Iterator[str]:
    """The socket's address in ``folder``, short whatever the folder's path (through a descriptor of it)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{SOCKET}"
    finally:
        os.close(fd)


def start(bake_dir: Path, argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen:
    """Start the steps for the bake in ``bake_dir`` (``argv``: their flags but the host's), waiting for Packer's provisioner.

    Their output before the hand-off (a failed import, say) goes to ``steps.log`` in the bake's folder. A session
    of their own, as under Packer: a terminal's Ctrl-C reaches them through the bake (``stop``), not directly. If
    the bake dies (kill -9) they end while they wait; once running they end with the build host, as they did
    as Packer's provisioner (killing them then would orphan Ansible's own processes).
    """
    for name in (SOCKET, EXIT_CODE):
        (bake_dir / name).unlink(missing_ok=True)
    with open(bake_dir / LOG, "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "toolkit.bake.handoff", "serve", "--parent", str(os.getpid()), *argv],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """End the steps if they are still waiting or running (Packer failed before its provisioner, or was stopped)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def serve(argv: list[str], run: Callable[[list[str]], int] | None = None, wait: float = WAIT_FOR_PACKER) -> int:
    """The steps' side: bind, import the steps, wait (``wait`` seconds at most) for the host, run them with the output going to Packer's client.

    ``run`` runs the steps with their flags, the host's included (default: ``toolkit.bake.ssh_steps.main``, imported
    while Packer boots the instance).
    """
    parser = argparse.ArgumentParser(prog="python -m toolkit.bake.handoff serve")
    parser.add_argument("--bake-dir", required=True, type=Path)
    parser.add_argument("--parent", type=int, help="the bake's pid: the steps stop waiting when it is gone")
    known, argv = parser.parse_known_args(argv)
    argv += ["--bake-dir", str(known.bake_dir)]
    bake_dir = known.bake_dir
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with _address(bake_dir) as address:
        old = os.umask(0o077)  # only this user may hand the steps a host
        try:
            server.bind(address)
        finally:
            os.umask(old)
    server.listen(1)
    if run is None:
        # The imports the boot hides: ansible-runner, pytest, testinfra (via the steps' modules).
        from toolkit.bake import ssh_steps

        ssh_steps.prepare()
        run = ssh_steps.main
    conn = _accept(server, wait, known.parent)
    server.close()
    (bake_dir / SOCKET).unlink(missing_ok=True)
    if conn is None:
        print(f"no build host came within {wait:.0f}s, or the bake is gone", file=sys.stderr)
        return 1
    conn.settimeout(None)
    with conn:
        host = json.loads(conn.makefile("r").readline())
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(conn.fileno(), 1)  # what Packer's shell-local gave the steps: their output, their subprocesses' too
        os.dup2(conn.fileno(), 2)
        done = threading.Event()
        threading.Thread(target=_stop_when_packer_leaves, args=(conn, done), daemon=True).start()
        code = run(argv + ["--host", host["host"], "--port", str(host["port"]), "--user", host["user"]])
        done.set()
        sys.stdout.flush()
        sys.stderr.flush()
        (bake_dir / EXIT_CODE).write_text(f"{code}\n")
    return code


def _stop_when_packer_leaves(conn: socket.socket, done: threading.Event) -> None:
    """SIGTERM to the steps once Packer's provisioner is gone (Packer killed): the provision step then stops Ansible,
    as it does when Rodeo stops it, instead of leaving Ansible's processes behind."""
    try:
        while conn.recv(1):  # the provisioner sends nothing after the host
            pass
    except OSError:
        pass
    if not done.is_set():
        os.kill(os.getpid(), signal.SIGTERM)


def _accept(server: socket.socket, wait: float, parent: int | None) -> socket.socket | None:
    """Packer's client once it connects; None after ``wait`` seconds or once ``parent`` (the bake) is no longer ours."""
    deadline = time.monotonic() + wait
    server.settimeout(min(1.0, wait))
    while time.monotonic() < deadline and parent in (None, os.getppid()):
        try:
            return server.accept()[0]
        except TimeoutError:
            continue
    return None


def client(bake_dir: Path, host: str, port: int, user: str, timeout: float = CONNECT_TIMEOUT) -> int:
    """Packer's side: hand the steps the host, relay their output to ours, and exit with their code."""
    deadline = time.monotonic() + timeout
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with _address(bake_dir) as address:
        while True:
            try:
                conn.connect(address)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    print(f"the bake's steps are not waiting in {bake_dir} (see {bake_dir / LOG})", file=sys.stderr)
                    return 1
                time.sleep(0.05)
    with conn:
        conn.sendall((json.dumps({"host": host, "port": port, "user": user}) + "\n").encode())
        while data := conn.recv(65536):  # each event as it comes
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
    try:
        return int((bake_dir / EXIT_CODE).read_text())
    except (OSError, ValueError):
        print(f"the bake's steps ended without an exit code (see {bake_dir / LOG})", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    """``python -m toolkit.bake.handoff --bake-dir DIR --host H --port P --user U`` (Packer's), or ``serve FLAGS`` (the bake's)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        return serve(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m toolkit.bake.handoff")
    parser.add_argument("--bake-dir", required=True, type=Path)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument("--user", required=True)
    args = parser.parse_args(argv)
    return client(args.bake_dir, args.host, args.port, args.user)


if __name__ == "__main__":
    sys.exit(main())
