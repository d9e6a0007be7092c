"""The local build instance: sshd in a chroot on an overlay of image layers.

``ensure_rootfs`` makes (once) the Debian root file system every local image
starts from. ``build_instance`` mounts an overlay of an image's layers with a
fresh upper layer and runs ``sshd`` in a chroot on a free loopback port, so
Packer and Ansible reach it over real SSH like an EC2 instance.

Everything runs in one ``unshare --mount --pid`` process: every mount lives
in its private mount namespace and every process in its PID namespace, so the
kernel drops them all when that process ends, whatever happened in Python.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from toolkit import procs
from toolkit.errors import SandboxError
from toolkit.hosts import cloudimage

SUITE = "bookworm"
# As on Debian's and Ubuntu's cloud images: python3-apt too (unattended-upgrades needs it there), which
# Ansible's apt module imports; without it the module installs it first (apt-get update: network, seconds).
# python3-boto3 and python3-systemd are what the base role installs for the instance agents (config loader,
# log shipper): on EC2 the role installs them; here they come with the root file system, so a local base
# bake does not run apt-get update.
# cloud-init: as in Debian's cloud images, it makes the user, its keys and the host keys at first boot (hosts/cloudimage.py);
# dbus, as there too: with systemd running, systemctl as a user (testinfra's service checks) needs the system bus.
PACKAGES = (
    "openssh-server,python3,python3-apt,sudo,systemd,systemd-sysv,systemd-timesyncd,ca-certificates,curl,"
    "python3-boto3,python3-systemd,cloud-init,dbus"
)
START_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0
_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
_PORTS_LOCK = threading.Lock()
_PORTS_GIVEN: set[int] = set()

# Runs as pid 1 inside the namespaces (its own hostname too, so sudo resolves
# it); arguments are positional so nothing needs quoting. Ends waiting for
# sshd. One ed25519 host key, not `ssh-keygen -A`: an RSA
# key takes 1-4 s of CPU to make, for a host whose keys the seal removes.
_SCRIPT = r"""
set -e
hostname localhost
lower=$1 upper=$2 work=$3 merged=$4 port=$5 user=$6 key=$7
mount -t overlay overlay -o "lowerdir=$lower,upperdir=$upper,workdir=$work" "$merged"
mount -t proc proc "$merged/proc"
mount -t sysfs -o ro sysfs "$merged/sys"
mount --rbind /dev "$merged/dev"
mount -t tmpfs -o mode=755 tmpfs "$merged/run"
mkdir -p "$merged/run/sshd"
chroot "$merged" /bin/sh -ec '
  if ! id "$1" >/dev/null 2>&1; then  # what cloud-init makes at first boot
    useradd -m -s /bin/bash -G sudo "$1"
    printf "%s ALL=(ALL) NOPASSWD:ALL\n" "$1" > /etc/sudoers.d/90-cloud-init-users
    chmod 440 /etc/sudoers.d/90-cloud-init-users
  fi
  home=$(getent passwd "$1" | cut -d: -f6)
  install -d -m 700 -o "$1" -g "$(id -g "$1")" "$home/.ssh"
  printf "%s\n" "$2" >> "$home/.ssh/authorized_keys"
  chown "$1:$(id -g "$1")" "$home/.ssh/authorized_keys"
  chmod 600 "$home/.ssh/authorized_keys"
  [ -f /etc/ssh/ssh_host_ed25519_key ] || ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key
' sh "$user" "$key"
# sshd is not pid 1: it rewrites its title over its environment, and cloud-init (the seal's "cloud-init clean")
# reads pid 1's environment to tell a container. This shell stays pid 1 and ends when sshd does.
chroot "$merged" /usr/sbin/sshd -D -e -p "$port" -o ListenAddress=127.0.0.1 \
  -o PasswordAuthentication=no -o UseDNS=no -h /etc/ssh/ssh_host_ed25519_key &
wait $!
"""

# _SCRIPT as pid 1 of new mount, pid and UTS namespaces (killed with this process); its arguments follow.
_UNSHARED_SCRIPT = (
    "unshare",
    "--mount",
    "--pid",
    "--uts",
    "--fork",
    "--kill-child",
    "--propagation",
    "private",
    "sh",
    "-c",
    _SCRIPT,
    "sh",
)


@dataclass(frozen=True)
class Instance:
    """Where a running build instance answers SSH."""

    host: str
    port: int
    user: str
    pid: int


def check_host() -> None:
    """Raise ``SandboxError`` unless this machine can run a build instance."""
    if not sys.platform.startswith("linux"):
        raise SandboxError(
            "the local build instance needs Linux (overlay mounts, namespaces)",
            hint="use --env with an AWS stack on this machine",
        )
    if os.geteuid() != 0:
        raise SandboxError(
            "the local build instance needs root (mounts and chroot)", hint="run as root, e.g. sudo make bake"
        )
    if shutil.which("unshare") is None:
        raise SandboxError("unshare is not installed", hint="apt-get install util-linux")


def rootfs_path(cache_dir: Path) -> Path:
    """Where the root file system of this ``SUITE``, ``PACKAGES`` and cloud-init config is cached: another is another folder."""
    digest = hashlib.sha256(f"{SUITE} {PACKAGES} {cloudimage.CONFIG} {cloudimage.DATASOURCE}".encode()).hexdigest()[:8]
    return Path(cache_dir) / f"rootfs-{SUITE}-{digest}"


def ensure_rootfs(path: Path, reporter=None) -> Path:
    """Return ``path``, building the Debian root file system there if missing.

    Built with mmdebstrap into a sibling temp dir, made a cloud image
    (``hosts/cloudimage.py``: cloud-init makes the ``admin`` user at first
    boot, as in a Debian cloud image), then renamed into place, so
    ``path`` is either absent or complete. A file lock keeps concurrent bakes
    from building it twice.
    """
    path = Path(path)
    if path.is_dir():
        return path
    check_host()
    if shutil.which("mmdebstrap") is None:
        raise SandboxError("mmdebstrap is not installed", hint="make setup (or apt-get install mmdebstrap)")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.is_dir():
            return path
        if reporter is not None:
            reporter.info(f"building the local Debian root file system in {path} (once, about 30 s)")
        tmp = path.parent / f".{path.name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            _debootstrap(tmp, path.parent / f"{path.name}.log")
            cloudimage.prepare(tmp)
            tmp.rename(path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return path


ROOTFS_TIMEOUT = 900  # seconds: about 30 s here; a stalled mirror must not hang the bake


def _debootstrap(target: Path, log_path: Path) -> None:
    cmd = ["mmdebstrap", "--variant=apt", f"--include={PACKAGES}", SUITE, str(target)]
    with open(log_path, "wb") as log:
        try:
            rc = subprocess.run(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=ROOTFS_TIMEOUT
            ).returncode
        except subprocess.TimeoutExpired:
            raise SandboxError(
                f"mmdebstrap did not end within {ROOTFS_TIMEOUT // 60} minutes (see {log_path})",
                hint="check network access to deb.debian.org, then retry",
            ) from None
    if rc != 0:
        raise SandboxError(
            f"mmdebstrap failed with exit code {rc} (see {log_path})",
            hint="check network access to deb.debian.org, then retry",
        )


@contextlib.contextmanager
def build_instance(
    layers: list[Path], upper: Path, public_key: str, user: str = "admin", log: Path | None = None
) -> Iterator[Instance]:
    """Run a build instance on ``layers`` (bottom first), writing into ``upper``.

    Yields an ``Instance`` once sshd answers; ``public_key`` may log in as
    ``user``. On exit (normal, exception or Ctrl-C) the instance is stopped,
    which drops every mount, and the key and host keys are removed from
    ``upper`` so ``upper`` can be kept as the new image's layer. ``log`` keeps
    sshd's log (each login is an ``Accepted publickey`` line).
    """
    check_host()
    upper = Path(upper).resolve()
    work, merged = _work_dir(upper), _merged_dir(upper)
    upper.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    merged.mkdir(exist_ok=True)
    key = public_key.strip()
    port = _free_port()
    lower = ":".join(str(Path(p).resolve()) for p in reversed(layers))
    args = [lower, str(upper), str(work), str(merged), str(port), user, key]
    with open(log, "w+b") if log is not None else tempfile.TemporaryFile() as out:
        proc = None
        try:
            proc = subprocess.Popen(
                [*_UNSHARED_SCRIPT, *args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={"PATH": _PATH, "LANG": "C.UTF-8"},
                start_new_session=True,
                preexec_fn=procs.die_with_parent,
            )
            _wait_for_ssh(proc, port, out)
            yield Instance(host="127.0.0.1", port=port, user=user, pid=proc.pid)
        finally:
            if proc is not None:
                _stop(proc)
            shutil.rmtree(work, ignore_errors=True)
            with contextlib.suppress(OSError):
                merged.rmdir()
            _scrub(upper, [Path(p) for p in layers], user, key)


def start_kept(layers: list[Path], upper: Path, public_key: str, user: str = "admin") -> Instance:
    """Boot a build instance again on a failed bake's ``layers`` and ``upper``, detached: it outlives this process.

    For ``invoke bake --keep-on-failure``: the host is left running for a
    person to look at, until ``stop_kept`` (``invoke bake --cleanup``, ``invoke local.down``).
    """
    check_host()
    upper = Path(upper).resolve()
    work, merged = _work_dir(upper), _merged_dir(upper)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    merged.mkdir(exist_ok=True)
    port = _free_port()
    lower = ":".join(str(Path(p).resolve()) for p in reversed(layers))
    log = open(upper.parent / "kept-host.log", "wb")
    with log:
        proc = subprocess.Popen(
            [
                *_UNSHARED_SCRIPT,
                lower,
                str(upper),
                str(work),
                str(merged),
                str(port),
                user,
                public_key.strip(),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={"PATH": _PATH, "LANG": "C.UTF-8"},
            start_new_session=True,
        )
    with open(upper.parent / "kept-host.log", "rb") as out:
        try:
            _wait_for_ssh(proc, port, out)
        except SandboxError:
            stop_kept(proc.pid, upper)
            raise
    return Instance(host="127.0.0.1", port=port, user=user, pid=proc.pid)


def stop_kept(pid: int | None, upper: Path) -> None:
    """Stop a kept build instance (its whole namespace; ``None``: it has ended) and remove its overlay folders; the layer stays."""
    for sig in (signal.SIGTERM, signal.SIGKILL) if pid and pid > 1 else ():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, sig)
        deadline = time.monotonic() + STOP_TIMEOUT
        while procs.alive(pid) and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.1)
        if not procs.alive(pid):
            break
    upper = Path(upper).resolve()
    shutil.rmtree(_work_dir(upper), ignore_errors=True)
    with contextlib.suppress(OSError):
        _merged_dir(upper).rmdir()


def leftovers(upper: Path) -> dict:
    """Mounts and processes still referring to ``upper`` (empty after teardown).

    ``{"mounts": [mountinfo lines], "processes": [pids]}``, as this (the host)
    mount namespace sees them.
    """
    upper = Path(upper).resolve()
    needles = (str(upper), str(_merged_dir(upper)), str(_work_dir(upper)))
    # The root folder finds sshd, whose command line does not name the path.
    found = [pid for pid, cmdline, root in procs.processes() if any(n in f"{cmdline} {root}" for n in needles)]
    return {"mounts": procs.mounts(needles), "processes": sorted(found)}


def _work_dir(upper: Path) -> Path:
    return upper.parent / f".{upper.name}.work"


def _merged_dir(upper: Path) -> Path:
    return upper.parent / f".{upper.name}.merged"


def _free_port() -> int:
    # The port is free when asked, and sshd binds it a moment later: sandboxes this process starts at
    # once (parallel bakes) must not be handed the same one, or one's banner would answer for the other.
    with _PORTS_LOCK:
        while True:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
            if port not in _PORTS_GIVEN:
                _PORTS_GIVEN.add(port)
                return port


def _wait_for_ssh(proc: subprocess.Popen, port: int, out) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            if sock.recv(64).startswith(b"SSH-"):
                return
        time.sleep(0.1)
    out.seek(0)
    tail = out.read().decode(errors="replace").strip().splitlines()[-15:]
    state = f"exited with {proc.returncode}" if proc.poll() is not None else f"no SSH banner after {START_TIMEOUT:.0f}s"
    raise SandboxError(
        f"the build instance's sshd did not start ({state}):\n" + "\n".join(tail),
        hint="is overlayfs available and the root file system complete? remove it to rebuild",
    )


def _stop(proc: subprocess.Popen) -> None:
    # unshare blocks SIGTERM while it waits, so signal the group: sshd (the
    # namespace's pid 1) exits, and the kernel kills the rest of the namespace.
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
            return
        except subprocess.TimeoutExpired:
            continue
    proc.wait()


def _scrub(upper: Path, layers: list[Path], user: str, key: str) -> None:
    """Remove the bake key and the generated host keys from ``upper``."""
    for host_key in (upper / "etc/ssh").glob("ssh_host_*"):
        host_key.unlink()
    home = _home([*layers, upper], user)
    if home is None:
        return
    rel = Path(home.lstrip("/")) / ".ssh/authorized_keys"
    path = upper / rel
    if not path.is_file():
        return
    kept = [line for line in path.read_text().splitlines() if line.strip() != key]
    if kept or any((layer / rel).is_file() for layer in layers):
        path.write_text("".join(f"{line}\n" for line in kept))
    else:
        path.unlink()


def _home(layers: list[Path], user: str) -> str | None:
    """``user``'s home per the topmost layer's /etc/passwd."""
    for layer in reversed(layers):
        passwd = layer / "etc/passwd"
        if passwd.is_file():
            for line in passwd.read_text().splitlines():
                fields = line.split(":")
                if len(fields) >= 6 and fields[0] == user:
                    return fields[5]
            return None
    return None
