"""The local stack: a moto server standing in for AWS, and its seed data.

``up`` starts ``python -m moto.server`` in the background on a free loopback
port (pid file and log under ``<state>/local/``), waits until it answers, and
seeds what the local environment needs: a VPC with two subnets and the base
Debian AMI (whose contents are the cached root file system). ``up`` is
idempotent; ``down`` stops the server and forgets its images.

The server enforces IAM from its first request (``toolkit.local.auth``):
Rodeo's clients, Packer and the seeding sign as the stack's admin user, whose
key is ``toolkit.local.auth.LOCAL_CREDENTIALS``. ``toolkit.local.environment`` makes
the stack an environment (``toolkit.environment.connect``).

A ``Stack(live=True)`` runs the server under ``unshare`` with ``--live``: it
also boots instances and serves the load balancers through HAProxy
(``toolkit.local.controller``); ``status`` then has ``load_balancer_url``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from toolkit.errors import StackError
from toolkit.local import cgroups, seed, zones
from toolkit.local.store import ImageStore

START_TIMEOUT = 30.0
START_TRIES = 3  # ports tried: another program may take the free one first
STOP_TIMEOUT = 20.0  # a live stack powers its instances off first
LIVE_TOOLS = {
    "haproxy": "haproxy",
    "systemd-nspawn": "systemd-container",
    "socat": "socat",
    "ip": "iproute2",
    "unshare": "util-linux",
}


@dataclass(frozen=True)
class Stack:
    """Where one local stack keeps its state (pid, port, log, images)."""

    state_dir: Path
    cache_dir: Path
    live: bool = False  # boot instances and run HAProxy (toolkit.local.controller)

    @property
    def dir(self) -> Path:
        return self.state_dir / "local"

    @property
    def store(self) -> ImageStore:
        return ImageStore(self.dir / "images")

    @property
    def rootfs(self) -> Path:
        """The cached Debian root file system every local image starts from."""
        from toolkit.hosts.sandbox import rootfs_path

        return rootfs_path(self.cache_dir)

    @property
    def log_path(self) -> Path:
        return self.dir / "moto.log"

    @property
    def run_dir(self) -> Path:
        """The live stack's socket folder: short (a socket path has at most 107 bytes), one per stack, private to it."""
        return Path("/run") / f"rodeo-{hashlib.sha256(str(self.dir.resolve()).encode()).hexdigest()[:10]}"

    @property
    def live_dir(self) -> Path:
        """The live stack's instances, HAProxy config and logs."""
        return self.dir / "live"


def status(stack: Stack) -> dict:
    """What is running: ``{"running", "endpoint", "pid", "log", "images", "live", "load_balancers",
    "load_balancers_by_region", "load_balancer_url"}``.

    ``load_balancers_by_region`` is ``{region: {name: {listener port: url}}}`` on a live stack (ALBs' HTTP
    listeners and Classic ELBs' alike); ``load_balancers`` the same as ``{name: {listener port: url}}``, a name
    that stands in several regions written ``name (region)``; ``load_balancer_url`` the first of them (None when
    there is none).
    """
    info = _read_state(stack)
    pid = info.get("pid")
    running = bool(pid) and _alive(pid) and _answers(info.get("endpoint", ""))
    images = sorted(p.stem for p in stack.store.root.glob("ami-*.json")) if running else []
    by_region = _load_balancers(stack) if running and info.get("live") else {}
    lbs = labelled(by_region)
    first = next((lbs[name][port] for name in sorted(lbs) for port in sorted(lbs[name], key=int)), None)
    return {
        "running": running,
        "endpoint": info.get("endpoint") if running else None,
        "pid": pid if running else None,
        "log": str(stack.log_path),
        "images": images,
        "live": bool(running and info.get("live")),
        "load_balancers": lbs,
        "load_balancers_by_region": by_region,
        "load_balancer_url": first,
    }


def labelled(by_region: dict) -> dict:
    """``{region: {name: urls}}`` as ``{label: urls}``: the name, or ``name (region)`` for a name several regions have."""
    names = [name for lbs in by_region.values() for name in lbs]
    return {
        name if names.count(name) == 1 else f"{name} ({region})": urls
        for region, lbs in sorted(by_region.items())
        for name, urls in lbs.items()
    }


def _forget_live(stack: Stack) -> None:
    """Remove a stopped live stack's files (its mounts and processes ended with it)."""
    shutil.rmtree(stack.live_dir, ignore_errors=True)
    with contextlib.suppress(OSError):
        stack.run_dir.rmdir()  # the empty mount point its private tmpfs was on


def listener_urls(stack: Stack, load_balancer: str, region: str | None = None) -> dict[int, str]:
    """Listener port -> the URL where the live stack's HAProxy serves it, for one load balancer (ALB or Classic ELB)
    of ``region``. Without ``region``: the one region that has a load balancer of that name (StackError when several do).
    """
    by_region = _load_balancers(stack)
    if region is None:
        found = sorted(r for r, lbs in by_region.items() if load_balancer in lbs)
        if len(found) > 1:
            raise StackError(f"load balancers named {load_balancer} stand in {', '.join(found)}", "name the region too")
        region = found[0] if found else ""
    return {int(port): url for port, url in by_region.get(region, {}).get(load_balancer, {}).items()}


def _load_balancers(stack: Stack) -> dict:
    """``{region: {name: {listener port: url}}}`` (``toolkit.local.controller`` writes it)."""
    try:
        return json.loads((stack.live_dir / "load_balancers.json").read_text())
    except (OSError, ValueError):
        return {}


def endpoint(stack: Stack) -> str | None:
    """The running server's URL, or None."""
    return status(stack)["endpoint"]


def up(stack: Stack, region: str, seeders: tuple = (), reseed: bool = False) -> str:
    """Start the moto server unless it runs, seed it, and return its endpoint.

    ``seeders`` are extra ``fn(aws)`` callables (such as the release slots)
    run after the base seed; each must be idempotent. One with a ``seed_key``
    runs once per server unless ``reseed``.
    """
    if stack.live:  # every local AMI boots from it, the seed app's first: before a server can launch one
        _ensure_rootfs(stack)
    with _locked(stack):
        url = endpoint(stack)
        started = url is None
        if started:
            lost = _read_state(stack).get("pid")
            stack.store.clear()
            _forget_live(stack)
            cgroups.sweep(stack.run_dir.name)
            url = _start(stack)
            if lost and not _alive(lost):
                print(
                    f"warning: the local stack had stopped (pid {lost}); started a new, empty one: its AMIs, releases and local images are gone",
                    file=sys.stderr,
                )
        try:
            return _seed(stack, region, url, seeders, reseed)
        except BaseException:
            if started:  # a server this call started and could not seed is nobody's: stop it
                _stop(stack)
            raise


def _ensure_rootfs(stack: Stack) -> None:
    """Build the cached Debian root file system unless it is there (once per machine; says so on stderr)."""
    from toolkit.hosts import sandbox
    from toolkit.ui import Reporter

    sandbox.ensure_rootfs(stack.rootfs, Reporter(stderr=True))


def _seed(stack: Stack, region: str, url: str, seeders: tuple, reseed: bool) -> str:
    """Run the base seed and ``seeders`` (each with a ``seed_key`` once per server); the endpoint."""
    from toolkit.local.environment import LocalEnvironment  # it builds on this module

    aws = LocalEnvironment(region=region, endpoint=url, stack=stack)
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
        return _stop(stack)


def _stop(stack: Stack) -> bool:
    """``down`` with the stack's lock held."""
    pid = _read_state(stack).get("pid")
    stopped = False
    if pid and _alive(pid):
        # The whole group: a live stack's unshare ignores SIGTERM, the
        # server under it powers its instances off on SIGTERM.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            while _alive(pid) and time.monotonic() < deadline + 5:
                time.sleep(0.1)
        stopped = True
    (stack.dir / "stack.json").unlink(missing_ok=True)
    cgroups.sweep(stack.run_dir.name)  # a killed server's instances left theirs
    _discard_kept(stack)
    stack.store.clear()
    _forget_live(stack)
    return stopped


def _discard_kept(stack: Stack) -> None:
    """Stop the build hosts ``invoke bake --keep-on-failure`` left on this machine (their AMIs' records go with the server)."""
    from toolkit.hosts.kept import all_kept
    from toolkit.local.hosts import LocalHosts

    for path, kept in all_kept(stack.state_dir, "local"):
        LocalHosts(stack).discard(kept)
        path.unlink(missing_ok=True)


def fail_zone(stack: Stack, region: str, zone: str, back: bool = False) -> frozenset[str]:
    """Lose ``zone`` of ``region`` on the running live stack (or get it back, ``back``): a drill; the zones lost now.

    Its instances freeze and no group launches there (``toolkit.local.zones``); an
    Auto Scaling group with ELB health checks replaces them in its other zones.
    StackError when no live stack runs or the region has no such zone.
    """
    from toolkit.local.environment import LocalEnvironment  # it builds on this module

    running = status(stack)
    if not running["live"]:
        raise StackError("no live local stack runs: there is no zone to lose", "invoke local.up (RODEO_LOCAL_LIVE=1)")
    ec2 = LocalEnvironment(region=region, endpoint=running["endpoint"], stack=stack).client("ec2")
    known = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]]
    if zone not in known:
        raise StackError(f"{region} has no zone {zone!r}", f"choose one of: {', '.join(known)}")
    return zones.lose(stack.live_dir, zone, lost=not back)


def check_live_host() -> None:
    """Raise ``StackError`` unless this machine can run the live stack (Linux, root, the tools)."""
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        raise StackError(
            "the live local stack needs Linux and root (namespaces, mounts, systemd-nspawn)",
            "run as root, or without the live stack",
        )
    missing = sorted({pkg for tool, pkg in LIVE_TOOLS.items() if shutil.which(tool) is None})
    if missing:
        raise StackError(
            f"the live local stack needs {', '.join(missing)}", f"make setup (or apt-get install {' '.join(missing)})"
        )


def _command(stack: Stack, port: int) -> list[str]:
    server = [sys.executable, "-m", "toolkit.local.motoserver", "-H", "127.0.0.1", "-p", str(port)]
    if not stack.live:
        return server
    check_live_host()
    # Its own mount and PID namespaces: whatever it mounts or starts ends with it.
    unshare = ["unshare", "--mount", "--pid", "--fork", "--kill-child", "--propagation", "private", "--mount-proc"]
    return [
        *unshare,
        *server,
        "--live",
        str(stack.live_dir),
        "--images",
        str(stack.store.root),
        "--run-dir",
        str(stack.run_dir),
    ]


def _start(stack: Stack) -> str:
    stack.dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + START_TIMEOUT
    # A port found free can be taken by another program before the server binds it: the server then exits at once,
    # and the next try takes another port.
    for _ in range(START_TRIES):
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        with open(stack.log_path, "ab") as log:
            # Without moto's catalogue of public AMIs (and their snapshots): the stack seeds the one it needs, and
            # listing snapshots or images no longer walks thousands of records (1.2 s a DescribeSnapshots call).
            proc = subprocess.Popen(
                _command(stack, port),
                env=dict(os.environ, MOTO_EC2_LOAD_DEFAULT_AMIS="false"),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        while not _answers(url) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        if proc.poll() is None and _answers(url):
            _write_state(stack, {"pid": proc.pid, "endpoint": url, "port": port, "live": stack.live})
            return url
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(timeout=STOP_TIMEOUT)
        if time.monotonic() >= deadline:
            break
    raise StackError(
        f"the moto server did not start (see {stack.log_path})", "check that 'moto[server]' is installed: make setup"
    )


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
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError):
        return False  # nothing there yet, or another program's (an sshd answers with its banner)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
