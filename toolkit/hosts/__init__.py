"""The build-host connector: where a bake's build instance and a check's test instance run.

One interface, two connectors (as pyinfra's ``connectors/``):

- ``LocalHosts`` (``local/hosts.py``, with the local stack): the instance Packer
  launches, booted by the live stack under systemd-nspawn with cloud-init
  (``local/buildinstances.py``), reached through a 127.0.0.1 relay
  (``hosts/instance.py``); its disk becomes the new AMI's local image.
- ``Ec2Hosts`` (``hosts/ec2.py``): on AWS, the instance Packer launches, and a
  temporary instance for ``invoke verify --ami``.

The environment hands out its own (``toolkit.environment``'s ``hosts()``);
nothing else in Rodeo asks which.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from toolkit.hosts.ssh import SshHost

if TYPE_CHECKING:  # the bake's steps import toolkit.hosts.ssh: without config and ui (rich), they start faster
    from toolkit.config import Config
    from toolkit.ui import Reporter


# Folders of a bake's folder that hold the build host's own disk (the local sandbox's upper layer and its
# overlay work folders), not Rodeo's artifacts: the seal step scans the host itself for secrets.
HOST_DIRS = ("layer", ".layer.work", ".layer.merged")


@dataclass(frozen=True)
class BuildTarget:
    """Where Packer should SSH: an empty ``host`` means "the instance Packer launches"."""

    host: str = ""
    port: int = 22
    ssh_source_cidrs: tuple[str, ...] = ()
    pid: int = 0  # the local build instance's process, if any (a bake's reaper spares it)
    layers: tuple[Path, ...] = field(default=(), compare=False)
    upper: Path | None = None


class Hosts(Protocol):
    """What a bake and a check need from wherever their hosts run."""

    name: str

    def check(self) -> None:
        """Raise a RodeoError when this machine cannot run the hosts."""

    def has_image(self, ami: str) -> bool:
        """True when ``ami`` can be booted here (always on AWS)."""

    def build_host(
        self, source_ami: str, bake_dir: Path, public_key: str, user: str, reporter: Reporter
    ) -> contextlib.AbstractContextManager[BuildTarget]:
        """A build host from ``source_ami`` that ``public_key`` may log in to as ``user``."""

    def keep_image(self, target: BuildTarget, bake_id: str, amis: dict[str, str]) -> None:
        """Keep what the build host became as the image of ``amis`` (after the host is gone)."""

    def test_host(
        self, config: Config, found: dict, image: str, run_dir: Path, reporter: Reporter
    ) -> contextlib.AbstractContextManager[SshHost]:
        """A throw-away host booted from the AMI ``found``, reachable over SSH."""

    def keep_host(self, target: BuildTarget, bake_id: str, public_key: str, user: str) -> dict | None:
        """Leave a failed bake's host up (``--keep-on-failure``): ``{"connector", "host", "port", ...}`` for a ``KeptHost``, or None."""

    def discard(self, kept: Any) -> str:
        """Remove a kept host (a ``hosts.kept.KeptHost``) on this connector's side; returns what was done."""
