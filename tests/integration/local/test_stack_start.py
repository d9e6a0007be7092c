"""The stack's server starts even when another program takes the port it found free (the race every free-port
pick has): that server exits, the next try takes another port."""

from __future__ import annotations

import socket
import threading

import pytest

from toolkit.local import stack

pytestmark = pytest.mark.integration


def test_a_port_taken_by_another_program_is_passed_over(tmp_path, monkeypatch):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    stop = threading.Event()

    def banner() -> None:  # an sshd's answer: not HTTP
        taken.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = taken.accept()
            except OSError:
                continue
            with conn:
                conn.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10\r\n")

    threading.Thread(target=banner, daemon=True).start()
    picks = [taken.getsockname()[1]]
    real = stack._free_port
    monkeypatch.setattr(stack, "_free_port", lambda: picks.pop(0) if picks else real())
    st = stack.Stack(state_dir=tmp_path, cache_dir=tmp_path)
    try:
        url = stack.up(st, "us-east-1")
        assert picks == [] and url != f"http://127.0.0.1:{taken.getsockname()[1]}"
        assert stack.status(st)["running"] is True
    finally:
        stack.down(st)
        stop.set()
        taken.close()


def test_a_seeder_that_fails_stops_the_server_it_started(tmp_path):
    """A stack whose seeding fails ends with no server: nobody holds its endpoint to stop it."""
    st = stack.Stack(state_dir=tmp_path, cache_dir=tmp_path)
    pids = []

    def broken(aws) -> None:
        pids.append(stack._read_state(st)["pid"])  # the server up() started for this stack
        raise RuntimeError("seeding failed")

    with pytest.raises(RuntimeError, match="seeding failed"):
        stack.up(st, "us-east-1", seeders=(broken,))
    assert len(pids) == 1 and not stack._alive(pids[0])
    assert stack.status(st)["running"] is False
