"""The local stack: a moto server standing in for AWS, and its seed data.

``up`` starts ``python -m moto.server`` in the background on a free loopback
port (pid file and log under ``<state>/local/``), waits until it answers, and
seeds what the local environment needs: a VPC with two subnets and the base
Debian AMI (whose contents are the cached root file system). ``up`` is
idempotent; ``down`` stops the server and forgets its images.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from toolkit.errors import StackError
from toolkit.local import seed
from toolkit.local.store import ImageStore

START_TIMEOUT = 30.0


@dataclass(frozen=True)
class Stack:
    """Where one local stack keeps its state (pid, port, log, images)."""

    state_dir: Path
    cache_dir: Path

    @property
    def dir(self) -> Path:
        return self.state_dir / "local"

    @property
    def store(self) -> ImageStore:
        return ImageStore(self.dir / "images")

    @property
    def rootfs(self) -> Path:
        """The cached Debian root file system every local image starts from."""
        return self.cache_dir / "rootfs-bookworm"

    @property
    def log_path(self) -> Path:
        return self.dir / "moto.log"


def status(stack: Stack) -> dict:
    """What is running: ``{"running", "endpoint", "pid", "log", "images"}``."""
    info = _read_state(stack)
    pid = info.get("pid")
    running = bool(pid) and _alive(pid) and _answers(info.get("endpoint", ""))
    images = sorted(p.stem for p in stack.store.root.glob("ami-*.json")) if running else []
    return {
        "running": running,
        "endpoint": info.get("endpoint") if running else None,
        "pid": pid if running else None,
        "log": str(stack.log_path),
        "images": images,
    }


def connect(config: Any, state_dir: Path, cache_dir: Path, seed_release: bool = True, reseed: bool = False, start: bool = True) -> tuple[Any, "Stack | None"]:
    """AWS clients for ``config``'s environment, and its local stack or None.

    On a local environment the stack is started (unless ``start`` is False:
    then a StackError says it is not running) and seeded, the release side
    too unless ``seed_release`` is False. Elsewhere: the account boto3 finds.
    """
    from toolkit.aws import for_config

    if not config.is_local:
        return for_config(config), None
    stack = Stack(state_dir=state_dir, cache_dir=cache_dir)
    if not start:
        url = endpoint(stack)
        if url is None:
            raise StackError("the local stack is not running, and this command changes nothing, so it does not start it",
                             "start it with 'invoke local.up', then run the command again")
        return for_config(config, endpoint=url), stack
    seeders = (seed.seed_release(config),) if seed_release and config.release else ()
    url = up(stack, config.region, seeders=seeders, reseed=reseed)
    return for_config(config, endpoint=url), stack


def endpoint(stack: Stack) -> str | None:
    """The running server's URL, or None."""
    return status(stack)["endpoint"]


def up(stack: Stack, region: str, seeders: tuple = (), reseed: bool = False) -> str:
    """Start the moto server unless it runs, seed it, and return its endpoint.

    ``seeders`` are extra ``fn(aws)`` callables (such as the release slots)
    run after the base seed; each must be idempotent. One with a ``seed_key``
    runs once per server unless ``reseed``.
    """
    with _locked(stack):
        url = endpoint(stack)
        if url is None:
            lost = _read_state(stack).get("pid")
            stack.store.clear()
            url = _start(stack)
            if lost and not _alive(lost):
                print(f"warning: the local stack had stopped (pid {lost}); started a new, empty one: its AMIs, releases and local images are gone",
                      file=sys.stderr)
        from toolkit.aws import Aws

        aws = Aws(region=region, endpoint=url, local=True)
        # Seeding is idempotent but costs a dozen calls: a seeder with a
        # ``seed_key`` runs once per server (the server's state lives as long as it).
        state = _read_state(stack)
        done = set(state.get("seeded", []))
        for seeder in (seed.base_seeder(stack, region), *seeders):
            key = getattr(seeder, "seed_key", None)
            if reseed or key is None or key not in done:
                seeder(aws)
                if key:
                    done.add(key)
        if done != set(state.get("seeded", [])):
            _write_state(stack, dict(state, seeded=sorted(done)))
        return url


def down(stack: Stack) -> bool:
    """Stop the server (if running) and forget its images. True if one was stopped."""
    with _locked(stack):
        pid = _read_state(stack).get("pid")
        stopped = False
        if pid and _alive(pid):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
            stopped = True
        (stack.dir / "stack.json").unlink(missing_ok=True)
        stack.store.clear()
        return stopped


def _start(stack: Stack) -> str:
    stack.dir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with open(stack.log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "toolkit.local.motoserver", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
    deadline = time.monotonic() + START_TIMEOUT
    while not _answers(url):
        if proc.poll() is not None or time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            raise StackError(f"the moto server did not start (see {stack.log_path})", "check that 'moto[server]' is installed: make setup")
        time.sleep(0.1)
    _write_state(stack, {"pid": proc.pid, "endpoint": url, "port": port})
    return url


def _write_state(stack: Stack, state: dict) -> None:
    tmp = stack.dir / "stack.json.tmp"
    tmp.write_text(json.dumps(state) + "\n")
    tmp.replace(stack.dir / "stack.json")


def _read_state(stack: Stack) -> dict:
    try:
        return json.loads((stack.dir / "stack.json").read_text())
    except (OSError, ValueError):
        return {}


@contextlib.contextmanager
def _locked(stack: Stack) -> Iterator[None]:
    stack.dir.mkdir(parents=True, exist_ok=True)
    with open(stack.dir / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours still "exists"; treat it as gone.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[-1][:1] != "Z"
    except OSError:
        return True


def _answers(url: str) -> bool:
    if not url:
        return False
    try:
        with urllib.request.urlopen(f"{url}/moto-api/", timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
