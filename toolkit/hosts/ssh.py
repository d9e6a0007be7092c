"""Reaching a host over SSH: its address, a fresh key, a client config, a command.

Every build host (the local sandbox, an EC2 instance Packer launched, an
instance ``invoke verify --ami`` booted) is reached the same way: an
``SshHost`` with the user and the key of this bake or check.
"""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

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
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(key)], check=True)
    return key


def forget_key(key: Path) -> None:
    """Remove a key pair made by ``new_key``."""
    for path in (key, key.with_suffix(".pub")):
        path.unlink(missing_ok=True)


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
        "  LogLevel ERROR\n"
        "  ControlMaster auto\n"
        "  ControlPath /tmp/rodeo-ssh-%C\n"  # unix sockets allow ~100 chars: keep it short
        "  ControlPersist 30s\n"
    )
    return path


def run(host: SshHost, cfg_file: Path, command: str, stdin: str = "", timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``command`` on ``host`` (stdin as text); the completed process, whatever its exit code."""
    return subprocess.run(
        ["ssh", "-F", str(cfg_file), "-p", str(host.port), f"{host.user}@{host.host}", command],
        input=stdin, capture_output=True, text=True, timeout=timeout,
    )


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
