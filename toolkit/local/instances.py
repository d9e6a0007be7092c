"""Instances of the live local stack: an AMI's layers booted by systemd-nspawn.

Each instance gets a network namespace of its own (loopback only), an overlay
of its AMI's layers under a fresh upper layer, and ``systemd-nspawn --boot``
on that overlay inside the namespace. nspawn tells us when the container's
systemd has finished starting up (``--notify-ready=yes`` plus a notify socket
of ours), so ``Booted.poll`` can say pending, running or failed.

These functions run in the live stack's own mount and PID namespaces (see
``toolkit.local.motoserver``): the mounts and processes they make vanish with
that process, whatever happens; ``stop`` is the orderly path.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from toolkit import procs
from toolkit.local import cgroups

BOOT_TIMEOUT = 120.0
AWS_PORT = 4566  # inside an instance, the AWS endpoint is http://127.0.0.1:AWS_PORT
POWEROFF_TIMEOUT = 8.0
_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
# socat's listen() backlog (its own default is 5). A connection to a unix socket whose backlog is full fails at once
# (EAGAIN): HAProxy answered 503 in a burst of requests to a busy machine's forwarder. On AWS the load balancer's
# connection waits in the instance's TCP backlog, sized by net.core.somaxconn (4096 since Linux 5.4), as here.
BACKLOG = 4096


def listening(address: str) -> str:
    """socat's listening ``address`` with the backlog of an instance's own sockets (``BACKLOG``)."""
    return f"{address},backlog={BACKLOG}"


# Each booted instance's systemd, journald and logind hold about 8 inotify instances; the kernel's default of 128 per user
# stops the 16th instance's systemd ("Failed to allocate manager object"). 1024, as LXD's production setup advises.
INOTIFY_INSTANCES = 1024
INOTIFY_LIMIT = Path("/proc/sys/fs/inotify/max_user_instances")


def raise_inotify_limit(path: Path = INOTIFY_LIMIT, wanted: int = INOTIFY_INSTANCES) -> tuple[int, int] | None:
    """Raise the host's inotify instances per user to ``wanted`` when lower; ``(old, new)`` when raised, else None."""
    try:
        old = int(path.read_text())
        if old >= wanted:
            return None
        path.write_text(f"{wanted}\n")
    except (OSError, ValueError):
        return None  # not Linux, or not root: instances boot until the limit, and say so when they fail
    return old, wanted


def run(*cmd: str) -> subprocess.CompletedProcess:
    """Run a short command; raise ``RuntimeError`` with its output on failure."""
    done = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env={"PATH": _PATH, "LANG": "C.UTF-8"},
        timeout=30,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {(done.stderr or done.stdout).strip()}")
    return done


def spawn(cmd: list[str], log: Path, env: dict | None = None, cgroup: list[Path] | None = None) -> subprocess.Popen:
    """Start a long-running helper (nspawn, socat, haproxy) logging to ``log``; in the ``cgroup`` folders if given."""

    def prepare() -> None:
        procs.die_with_parent()
        if cgroup:
            cgroups.enter(cgroup)

    with open(log, "ab") as out:
        return subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={"PATH": _PATH, "LANG": "C.UTF-8", **(env or {})},
            preexec_fn=prepare,
        )


def end(proc: subprocess.Popen | None, timeout: float = 2.0, sig: int = signal.SIGTERM) -> None:
    """Signal ``proc``, wait up to ``timeout``, then kill it."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait()


@dataclass
class Booted:
    """One instance's namespace, overlay and container (while it exists)."""

    instance_id: str
    dir: Path
    netns: str
    proc: subprocess.Popen
    notify: socket.socket
    notify_path: Path
    started: float = field(default_factory=time.monotonic)
    ready: bool = False
    forwarders: dict = field(default_factory=dict)  # port -> Popen of socat
    cgroups: list = field(default_factory=list)  # its own cgroup folders (toolkit.local.cgroups), removed once stopped

    @property
    def merged(self) -> Path:
        return self.dir / "merged"

    @property
    def log(self) -> Path:
        return self.dir / "console.log"

    def poll(self) -> str:
        """``pending``, ``running`` or ``failed``: the container's state now."""
        if self.proc.poll() is not None:
            return "failed"
        if not self.ready:
            with contextlib.suppress(BlockingIOError, OSError):
                while True:
                    if b"READY=1" in self.notify.recv(4096):
                        self.ready = True
            if not self.ready and time.monotonic() - self.started > BOOT_TIMEOUT:
                return "failed"
        return "running" if self.ready else "pending"

    def failure(self) -> str:
        """Why the boot failed: the exit status and the console's last lines."""
        why = (
            f"systemd-nspawn exited with {self.proc.returncode}"
            if self.proc.poll() is not None
            else f"not booted after {BOOT_TIMEOUT:.0f}s"
        )
        try:
            tail = [ln for ln in self.log.read_text(errors="replace").splitlines() if ln.strip()][-3:]
        except OSError:
            tail = []
        return "; ".join([why, *tail])[:400]

    def forward(self, port: int, sock: Path) -> Path:
        """Serve ``sock`` (a unix socket on this side) from 127.0.0.1:``port`` inside the instance."""
        proc = self.forwarders.get(port)
        if proc is not None and proc.poll() is None and sock.exists():
            return sock
        end(proc)
        sock.unlink(missing_ok=True)
        self.forwarders[port] = spawn(
            self._socat(f"UNIX-LISTEN:{sock},fork,mode=600", f"TCP:127.0.0.1:{port}"), self.dir / "forwarders.log"
        )
        deadline = time.monotonic() + 3
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        return sock

    def metadata(self, imds_sock: Path, aws_sock: Path | None) -> None:
        """Inside the instance: the metadata service on 169.254.169.254:80 and the AWS endpoint on 127.0.0.1:AWS_PORT.

        Both are forwarders to unix sockets served on this side (``imds_sock``
        by the stack's metadata service, ``aws_sock`` by its AWS endpoint, ``toolkit.local.netproxy``).
        """
        with contextlib.suppress(RuntimeError):  # already there (an instance started again)
            run("ip", "-n", self.netns, "addr", "add", "169.254.169.254/32", "dev", "lo")
        pairs = [("imds", "TCP-LISTEN:80,bind=169.254.169.254", imds_sock)]
        if aws_sock is not None:
            pairs.append(("aws", f"TCP-LISTEN:{AWS_PORT},bind=127.0.0.1", aws_sock))
        for name, listen, sock in pairs:
            end(self.forwarders.get(name))
            cmd = self._socat(f"{listen},fork,reuseaddr", f"UNIX-CONNECT:{sock}")
            self.forwarders[name] = spawn(cmd, self.dir / "forwarders.log")

    def outbound(self, name: str, port: int, sock: Path) -> None:
        """Inside the instance, 127.0.0.1:``port`` reaches ``sock``, a unix socket served on this side (the build instance's egress)."""
        end(self.forwarders.get(name))
        cmd = self._socat(f"TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr", f"UNIX-CONNECT:{sock}")
        self.forwarders[name] = spawn(cmd, self.dir / "forwarders.log")

    def _socat(self, listen: str, connect: str) -> list[str]:
        """socat inside the instance's namespace: listening on ``listen`` (with ``BACKLOG``), each connection to ``connect``."""
        return ["ip", "netns", "exec", self.netns, "socat", listening(listen), connect]


def aws_configuration(region: str) -> dict[str, str]:
    """Files the stack puts on an instance's disk at launch so its software finds the local AWS endpoint.

    A systemd manager drop-in gives every service ``AWS_ENDPOINT_URL`` (and
    login shells get it from profile.d); the region and credentials come from
    the metadata service, as on EC2. On AWS none of this is needed.
    """
    endpoint = f"http://127.0.0.1:{AWS_PORT}"
    return {
        "etc/systemd/system.conf.d/rodeo-local-aws.conf": f"[Manager]\nDefaultEnvironment=AWS_ENDPOINT_URL={endpoint}\n",
        "etc/profile.d/rodeo-local-aws.sh": f"export AWS_ENDPOINT_URL={endpoint}\n",
    }


def boot(
    instance_id: str,
    layers: list[Path],
    root: Path,
    run_dir: Path,
    netns_prefix: str = "rodeo-",
    files: dict[str, str] | None = None,
) -> Booted:
    """Start booting ``instance_id`` from ``layers`` (bottom first) under ``root/<id>``.

    ``run_dir`` is a short folder for sockets (a unix socket path has at most 107 bytes).
    Keeps an existing upper layer (a stopped instance starting again).
    ``files`` (path in the instance -> text) are written into the upper layer first.
    Returns at once; ``Booted.poll`` says when it is up.
    """
    base = root / instance_id
    upper, work, merged = base / "upper", base / "work", base / "merged"
    for d in (upper, merged):
        d.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    netns = f"{netns_prefix}{instance_id}"
    if not Path(f"/run/netns/{netns}").exists():
        run("ip", "netns", "add", netns)
    run("ip", "-n", netns, "link", "set", "lo", "up")
    if not os.path.ismount(merged):
        for name, text in (files or {}).items():
            (upper / name).parent.mkdir(parents=True, exist_ok=True)
            (upper / name).write_text(text)
        lower = ":".join(str(Path(p).resolve()) for p in reversed(layers))
        run("mount", "-t", "overlay", "overlay", "-o", f"lowerdir={lower},upperdir={upper},workdir={work}", str(merged))
    notify_path = run_dir / f"{instance_id}.notify"
    notify_path.unlink(missing_ok=True)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    notify.setblocking(False)
    cmd = [
        "systemd-nspawn",
        "-q",
        "--register=no",
        "--keep-unit",
        "--link-journal=no",
        "--notify-ready=yes",
        "--console=read-only",
        "-D",
        str(merged),
        f"--network-namespace-path=/run/netns/{netns}",
        "-b",
        "-M",
        instance_id,
    ]
    folders = cgroups.folders_for(
        f"{run_dir.name.removeprefix(cgroups.PREFIX)}-{instance_id}"
    )  # the stack's, then its own
    proc = spawn(cmd, base / "console.log", env={"NOTIFY_SOCKET": str(notify_path)}, cgroup=folders)
    return Booted(instance_id, base, netns, proc, notify, notify_path, cgroups=folders)


def stop(booted: Booted, keep_disk: bool) -> None:
    """Power the instance off (SIGTERM makes nspawn shut the container down), then kill it.

    Ends its forwarders, unmounts the overlay and deletes the namespace;
    removes its folder unless ``keep_disk`` (a stopped instance keeps its upper layer).
    """
    for proc in booted.forwarders.values():
        end(proc, timeout=1)
    booted.forwarders.clear()
    end(booted.proc, timeout=POWEROFF_TIMEOUT)
    cgroups.remove(booted.cgroups)
    booted.notify.close()
    booted.notify_path.unlink(missing_ok=True)
    unmount(booted.dir, booted.netns, keep_disk)


def unmount(base: Path, netns: str, keep_disk: bool) -> None:
    """Unmount ``base/merged``, delete ``netns``, and remove ``base`` unless ``keep_disk``."""
    merged = base / "merged"
    for _ in range(3):
        if not os.path.ismount(merged):
            break
        with contextlib.suppress(RuntimeError):
            run("umount", str(merged))
            continue
        with contextlib.suppress(RuntimeError):
            run("umount", "-l", str(merged))
    with contextlib.suppress(RuntimeError):
        run("ip", "netns", "del", netns)
    shutil.rmtree(base / "work", ignore_errors=True)
    if not keep_disk:
        shutil.rmtree(base, ignore_errors=True)
