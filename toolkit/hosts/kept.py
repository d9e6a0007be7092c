"""Build hosts kept after a failed bake (``invoke bake --keep-on-failure``), and their removal.

A kept host is written down as ``<state-dir>/kept/<bake-id>.json``: how to
reach it (SSH), how to run only the image tests against it, and what its
connector needs to remove it (a local sandbox's process, an EC2 instance).
``invoke bake --cleanup`` removes every kept host; ``invoke local.down``
removes the local ones.
"""

from __future__ import annotations

import json
import shlex
import sys
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class KeptHost:
    """A failed bake's build host, left up to look at."""

    bake_id: str
    image: str
    env: str
    connector: str  # "local" (a sandbox on this machine) or "ec2"
    host: str
    port: int
    user: str
    key: str  # the bake's private key
    bake_dir: str
    tests: str = ""  # the image's tests, relative to the project
    ssh_config: str = ""  # an SSH client config for it (testinfra's --ssh-config)
    pid: int = 0  # local: the sandbox's process
    pid_started: str = ""  # local: its start time (a reused pid is not it)
    upper: str = ""  # local: the bake's upper layer
    instance_id: str = ""  # ec2
    region: str = ""  # ec2

    @property
    def ssh(self) -> str:
        """The command that logs in to it."""
        return (
            f"ssh -i {shlex.quote(self.key)} -p {self.port} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
            f"{self.user}@{self.host}"
        )

    @property
    def retest(self) -> str:
        """The command (run in the project) that runs only the image's tests against it, as the bake's verify step does."""
        return (
            f"{shlex.quote(sys.executable)} -m pytest {shlex.quote(self.tests)} --hosts=ssh://{self.user}@{self.host}:{self.port} "
            f"--ssh-config={shlex.quote(self.ssh_config)} -p no:cacheprovider"
        )

    def lines(self) -> list[str]:
        """What a person needs to use it, and to remove it."""
        where = f"instance {self.instance_id} ({self.region})" if self.instance_id else f"sandbox pid {self.pid}"
        return [
            f"kept the build host of {self.bake_id} for you to look at: {where}",
            f"  log in:        {self.ssh}",
            f"  test again:    {self.retest}",
            f"  remove it:     invoke bake --cleanup --env {self.env}",
        ]


def folder(state_dir: Path) -> Path:
    """Where kept hosts are written down."""
    return state_dir / "kept"


def save(state_dir: Path, kept: KeptHost) -> Path:
    """Write ``kept`` down; returns its file."""
    path = folder(state_dir) / f"{kept.bake_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(kept), indent=1, sort_keys=True) + "\n")
    return path


def all_kept(state_dir: Path, connector: str | None = None) -> list[tuple[Path, KeptHost]]:
    """Every kept host written down (of one connector, if given), oldest first."""
    out = []
    for path in sorted(folder(state_dir).glob("*.json")):
        try:
            kept = KeptHost(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue
        if connector is None or kept.connector == connector:
            out.append((path, kept))
    return out
