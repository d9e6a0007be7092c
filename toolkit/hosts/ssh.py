"""Reaching a host over SSH: its address, a fresh key, a client config, a command.

Every build host (the local sandbox, an EC2 instance Packer launched, an
instance ``invoke verify --ami`` booted) is reached the same way: an
``SshHost`` with the user and the key of this bake or check.

One connection per bake: the bake's steps (Ansible, testinfra, the seal's
commands) all use the client config ``client_config`` writes in the bake's
folder, whose ``ControlPath`` names one master connection. ``open_master``
starts it once; every later ``ssh`` with that config (Ansible's and
Mitogen's included, through ``-F``) is a session on it, with no new TCP
connection, key exchange or authentication. ``close_master`` ends it.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from toolkit.errors import VerifyError


@dataclass(frozen=True)
class SshHost:
    """How to reach a host over SSH."""

    host: str
    port: int
    user: str
    key: Path

    @property
    def url(self) -> str:
        """The host as testinfra names it: ``ssh://user@host:port``."""
        return f"ssh://{self.user}@{self.host}:{self.port}"


def new_key(folder: Path, comment: str) -> Path:
    """A fresh ed25519 key pair ``folder/ssh_key`` (+ ``.pub``) to reach one host."""
    key = folder / "ssh_key"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(key)], check=True, timeout=30
    )
    return key


def forget_key(key: Path) -> None:
    """Remove a key pair made by ``new_key``."""
    for path in (key, key.with_suffix(".pub")):
        path.unlink(missing_ok=True)


# How long an idle master outlives its last session: enough for Packer to start the next step,
# short enough that a master a killed bake left behind goes away by itself.
PERSIST_SECONDS = 120


def control_path(path: Path) -> str:
    """The master's socket for the config at ``path``: one per config folder (a bake, a check).

    In /tmp, not in the folder: a unix socket's path has at most ~107 bytes.
    """
    token = hashlib.sha256(str(path.resolve().parent).encode()).hexdigest()[:10]
    return f"/tmp/rodeo-ssh-{token}-%C"


def client_config(path: Path, host: SshHost) -> Path:
    """An SSH client config for ``host``: its key, no known-hosts pinning, one shared connection."""
    path.write_text(
        f"Host {host.host}\n"
        f"  Port {host.port}\n"
        f"  User {host.user}\n"
        f"  IdentityFile {host.key}\n"
        "  IdentitiesOnly yes\n"
        "  StrictHostKeyChecking no\n"
        "  UserKnownHostsFile /dev/null\n"
        "  GlobalKnownHostsFile /dev/null\n"
        "  LogLevel ERROR\n"
        "  ControlMaster auto\n"
        f"  ControlPath {control_path(path)}\n"
        f"  ControlPersist {PERSIST_SECONDS}s\n"
        "  ServerAliveInterval 15\n"
    )
    return path


def _ssh(host: SshHost, cfg_file: Path, *args: str) -> list[str]:
    return ["ssh", "-F", str(cfg_file), "-p", str(host.port), *args, f"{host.user}@{host.host}"]


def run(
    host: SshHost, cfg_file: Path, command: str, stdin: str = "", timeout: float = 600
) -> subprocess.CompletedProcess:
    """Run ``command`` on ``host`` (stdin as text); the completed process, whatever its exit code."""
    return subprocess.run(
        [*_ssh(host, cfg_file), command], input=stdin, capture_output=True, text=True, timeout=timeout
    )


def master_running(host: SshHost, cfg_file: Path) -> bool:
    """True when the master connection of ``cfg_file`` answers (``ssh -O check``)."""
    proc = subprocess.run(_ssh(host, cfg_file, "-O", "check"), capture_output=True, text=True, timeout=10)
    return proc.returncode == 0


def open_master(host: SshHost, cfg_file: Path, timeout: float = 60) -> bool:
    """Start the master connection of ``cfg_file`` unless it runs; True when one runs afterwards.

    ``ssh -f -N`` returns once it has authenticated and put the master in the
    background. When it cannot (a host that refuses multiplexing), every
    client still connects on its own: slower, not wrong.
    """
    if master_running(host, cfg_file):
        return True
    cmd = _ssh(host, cfg_file, "-o", "ControlMaster=yes", "-o", f"ConnectTimeout={min(int(timeout), 30)}", "-f", "-N")
    with contextlib.suppress(subprocess.TimeoutExpired):
        subprocess.run(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout
        )
    return master_running(host, cfg_file)


def open_master_when_ready(host: SshHost, cfg_file: Path, timeout: float = 30) -> bool:
    """``open_master``, tried again for ``timeout`` seconds: sshd can answer before the login works.

    An instance's sshd may start while cloud-init is still making its user
    and key, as Packer knows (it retries its login until ``ssh_timeout``).
    """
    deadline = time.monotonic() + timeout
    while True:
        if open_master(host, cfg_file, timeout=max(min(deadline - time.monotonic(), 30), 5)):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(1)


def close_master(host: SshHost, cfg_file: Path) -> None:
    """End the master connection of ``cfg_file``, if any (``ssh -O exit``)."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        subprocess.run(_ssh(host, cfg_file, "-O", "exit"), capture_output=True, timeout=10)


@contextlib.contextmanager
def master_closed_on_error(host: SshHost, cfg_file: Path) -> Iterator[None]:
    """Close the master connection when the body fails: a failed step ends the bake, so nothing reuses it.

    Otherwise it would idle until its ``ControlPersist`` or until the bake's
    reaper ends it, which first gives the bake's processes 10 s to go.
    """
    try:
        yield
    except BaseException:
        close_master(host, cfg_file)
        raise


def wait_for_ssh(address: str, port: int, timeout: float, instance_id: str = "", allowed: str = "") -> None:
    """Return once ``address:port`` sends an SSH banner; VerifyError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            with socket.create_connection((address, port), timeout=min(5.0, left)) as sock:
                sock.settimeout(min(5.0, max(left, 0.1)))
                if sock.recv(64).startswith(b"SSH-"):
                    return
                last = "not an SSH server"
        except OSError as exc:
            last = str(exc) or type(exc).__name__
        time.sleep(min(2.0, max(deadline - time.monotonic(), 0)))
    raise VerifyError(
        f"{instance_id or address} did not answer SSH on {address}:{port} within {timeout:.0f}s ({last}); no test ran",
        f"SSH is allowed from {allowed or 'the caller'} only: check that this is your address, that the subnet routes to the internet "
        "(or set subnet_id in rodeo.yml), and that the AMI starts sshd",
    )
