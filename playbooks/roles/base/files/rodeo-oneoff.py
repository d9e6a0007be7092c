#!/usr/bin/python3
"""Rodeo's one-off runner: the command of a one-off instance (``invoke run``, the release phase).

Runs once at boot (rodeo-oneoff.service), after the config loader, with the
config vars in its environment (the unit's EnvironmentFile). It reads the
instance's user data (IMDSv2); an instance whose user data names no one-off
command (``{"rodeo": {"oneoff": {"id": ..., "argv": [...], "timeout": N}}}``:
every slot instance) has nothing to run and exits 0 at once.

The command's stdout and stderr go to the journal as this unit's lines
(priority info and err), so the log shipper sends them to CloudWatch Logs, and Rodeo reads them back from the instance's stream. Its end
is one line of this unit's own: ``rodeo-oneoff <id>: exit <code>`` (or
``timed out after <N>s``), which Rodeo waits for. A timeout stops the
command's process group (TERM, then KILL after 10 s). The command runs at
most once per instance: a marker in the unit's state folder keeps a reboot
from running it again.

Only the standard library.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

IMDS = "http://169.254.169.254"
WAIT_SECONDS = 60
GRACE_SECONDS = 10  # between TERM and KILL when the command outlives its timeout
TIMED_OUT = 124  # the exit code of a command stopped by its timeout (as timeout(1))


def spec(user_data: bytes | None) -> dict | None:
    """``{"id", "argv", "timeout"}`` of the one-off command in ``user_data``, or None when it names none."""
    try:
        doc = json.loads(user_data or b"")
    except ValueError:
        return None
    rodeo = doc.get("rodeo") if isinstance(doc, dict) else None
    oneoff = rodeo.get("oneoff") if isinstance(rodeo, dict) else None
    if not isinstance(oneoff, dict):
        return None
    argv, run_id, timeout = oneoff.get("argv"), oneoff.get("id"), oneoff.get("timeout")
    if not (
        isinstance(argv, list)
        and argv
        and all(isinstance(a, str) for a in argv)
        and isinstance(run_id, str)
        and isinstance(timeout, int)
        and timeout > 0
    ):
        raise ValueError(
            "user data names a malformed one-off command (want id, a non-empty argv of strings, a positive timeout)"
        )
    return {"id": run_id, "argv": argv, "timeout": timeout}


def end_line(run_id: str, code: int | None, timeout: int) -> str:
    """The last line of a one-off run, the one Rodeo waits for."""
    if code is None:
        return f"rodeo-oneoff {run_id}: timed out after {timeout}s"
    return f"rodeo-oneoff {run_id}: exit {code}"


def _imds(path: str, token: str | None, method: str = "GET") -> bytes | None:
    headers = (
        {"X-aws-ec2-metadata-token-ttl-seconds": "300"}
        if method == "PUT"
        else {"X-aws-ec2-metadata-token": token or ""}
    )
    try:
        with urllib.request.urlopen(
            urllib.request.Request(IMDS + path, method=method, headers=headers), timeout=2
        ) as answer:
            return answer.read()
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def user_data() -> bytes | None:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        try:
            token = _imds("/latest/api/token", None, "PUT").decode()
            return _imds("/latest/user-data", token)
        except OSError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(1)


def _relay(pipe, level: int, lock: threading.Lock) -> None:
    """Each line of ``pipe`` to this unit's stdout with a ``<level>`` prefix: the journal's priority for it (6 info, 3 err)."""
    for raw in iter(pipe.readline, b""):
        with lock:
            sys.stdout.write(f"<{level}>" + raw.decode("utf-8", errors="replace").rstrip("\n") + "\n")
            sys.stdout.flush()
    pipe.close()


def run(argv: list[str], timeout: int) -> int | None:
    """Run ``argv``, its output in the journal as this unit's (stdout info, stderr err); its exit code (128+N for signal N), None when it timed out.

    The lines go through this unit's own stdout (journald's stream for the unit, with ``SyslogLevelPrefix``), so the
    journal files them under rodeo-oneoff.service wherever the unit's cgroup cannot be read (a container).
    """
    try:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
        )
    except OSError as exc:
        print(f"<3>rodeo-oneoff: cannot start {argv[0]!r}: {exc}", flush=True)
        return 127
    lock = threading.Lock()
    relays = [
        threading.Thread(target=_relay, args=(pipe, level, lock), daemon=True)
        for pipe, level in ((proc.stdout, 6), (proc.stderr, 3))
    ]
    for relay in relays:
        relay.start()
    signal.signal(
        signal.SIGTERM, lambda signum, frame: os.killpg(proc.pid, signal.SIGTERM)
    )  # the instance is going away: so is the command
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        code = None
    for relay in relays:
        relay.join(timeout=GRACE_SECONDS)  # the last lines, unless a child the command left keeps a pipe open
    if code is None:
        return None
    return 128 - code if code < 0 else code


def main() -> int:
    try:
        found = spec(user_data())
    except (OSError, ValueError) as exc:
        print(f"rodeo-oneoff: no command run: {exc}", flush=True)
        return 1
    if found is None:
        print("rodeo-oneoff: the user data names no one-off command: nothing to run", flush=True)
        return 0
    marker = Path(os.environ.get("STATE_DIRECTORY", "/var/lib/rodeo-oneoff").split(":")[0]) / found["id"]
    if marker.exists():
        print(f"rodeo-oneoff {found['id']}: ran at an earlier boot of this instance; not again", flush=True)
        return 0
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()
    print(f"rodeo-oneoff {found['id']}: running {' '.join(found['argv'])} (timeout {found['timeout']}s)", flush=True)
    code = run(found["argv"], found["timeout"])
    print(end_line(found["id"], code, found["timeout"]), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
