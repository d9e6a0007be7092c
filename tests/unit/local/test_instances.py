"""The live stack's host limits: enough inotify instances for every booted instance's systemd, and a forwarder's backlog."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time

from toolkit.local import instances


def test_the_inotify_limit_is_raised_only_when_lower(tmp_path):
    limit = tmp_path / "max_user_instances"
    limit.write_text("128\n")
    assert instances.raise_inotify_limit(limit, 1024) == (128, 1024) and limit.read_text() == "1024\n"
    assert instances.raise_inotify_limit(limit, 1024) is None and limit.read_text() == "1024\n"
    limit.write_text("4096\n")
    assert instances.raise_inotify_limit(limit, 1024) is None and limit.read_text() == "4096\n"
    assert instances.raise_inotify_limit(tmp_path / "missing", 1024) is None


def test_a_reason_holds_no_control_character():
    from toolkit.local.controller import printable

    assert (
        printable("nspawn exited with 255; [\x1b[0;1;31m!!!!!!\x1b[0m] Failed\tto allocate\x07")
        == "nspawn exited with 255; [!!!!!!] Failedto allocate"
    )


def listens(sock) -> bool:
    """True once a unix socket at ``sock`` listens (/proc/net/unix: flag __SO_ACCEPTCON, 0x10000)."""
    rows = [line.split() for line in open("/proc/net/unix").read().splitlines()[1:]]
    return any(len(row) == 8 and row[7] == str(sock) and int(row[3], 16) & 0x10000 for row in rows)


def refused_of_a_burst(address: str, sock, count: int = 50) -> int:
    """How many of ``count`` connections at once to a socat listening on ``address`` fail while it accepts none."""
    sock.unlink(missing_ok=True)
    proc = subprocess.Popen(["socat", address, "TCP:127.0.0.1:9"], stderr=subprocess.DEVNULL)
    clients = []
    try:
        deadline = time.monotonic() + 5
        while not listens(sock):
            assert time.monotonic() < deadline, "socat does not listen"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGSTOP)  # a busy machine: the forwarder accepts nothing for a moment
        refused = 0
        for _ in range(count):
            client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            client.setblocking(False)  # as HAProxy connects
            clients.append(client)
            try:
                client.connect(str(sock))
            except BlockingIOError:  # EAGAIN: the socket's queue is full
                refused += 1
        return refused
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGCONT)
        proc.kill()
        proc.wait(timeout=5)
        for client in clients:
            client.close()


def test_a_burst_of_connections_to_a_forwarder_waits_in_its_backlog_as_in_an_instances(tmp_path):
    """A full unix socket refuses at once (HAProxy answers 503); on AWS the connection waits in the TCP backlog."""
    sock = tmp_path / "target.sock"
    assert refused_of_a_burst(instances.listening(f"UNIX-LISTEN:{sock},fork"), sock) == 0
    # socat's own default backlog is 5, and a unix socket queues one more than its backlog (af_unix.c: ">").
    assert refused_of_a_burst(f"UNIX-LISTEN:{sock},fork", sock) == 50 - 6
