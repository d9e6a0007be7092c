"""The local stack as an environment: ``toolkit.environment``'s interface on a moto server and this machine.

``LocalEnvironment`` signs as the stack's admin (``auth.LOCAL_CREDENTIALS``,
never a developer's profile), boots Packer's build instances on the live stack
(``toolkit.local.hosts``), serves listeners through the live stack's HAProxy
on loopback ports, and gives Packer the stack's endpoint with AWS's region,
metadata and credential checks off (a custom endpoint has none of them).
``open_environment`` is what ``toolkit.environment.connect`` calls for
``stack: local``: it starts and seeds the stack, in every region of
``release.regions``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolkit import regions
from toolkit.environment import Environment
from toolkit.errors import StackError
from toolkit.local import seed
from toolkit.local.auth import LOCAL_CREDENTIALS
from toolkit.local.stack import Stack, endpoint, listener_urls, up

if TYPE_CHECKING:
    from toolkit.config import Config
    from toolkit.hosts import Hosts


@dataclass
class LocalEnvironment(Environment):
    """The local stack at ``endpoint``; ``stack`` is where it keeps its state (None: clients only, no hosts or HAProxy)."""

    credentials: dict | None = field(default_factory=lambda: dict(LOCAL_CREDENTIALS))
    stack: Stack | None = None

    def __post_init__(self) -> None:
        if self.state_dir is None and self.stack is not None:
            self.state_dir = self.stack.state_dir  # the stack's folder is the project's state folder (tasks.py)

    def hosts(self) -> Hosts:
        """Build instances the live stack boots on this machine, from the stack's image layers."""
        from toolkit.local.hosts import LocalHosts

        if self.stack is None:
            raise StackError(
                "this local environment was made without its stack, so it has no build hosts",
                "connect with toolkit.environment.connect",
            )
        return LocalHosts(self.stack, self)

    def listener_url(self, load_balancer: str, port: int) -> str | None:
        """On a live stack, HAProxy's loopback address for the listener of the load balancer of that name in this
        environment's region (None until it serves it); else moto's DNS name."""
        if self.stack is not None and self.stack.live:
            return listener_urls(self.stack, load_balancer, self.region).get(port)
        return super().listener_url(load_balancer, port)

    def packer_variables(self) -> dict[str, Any]:
        """The stack's endpoint for Packer's EC2 calls; no region, metadata or credential checks (moto has no STS account or region list)."""
        return {
            "endpoint": self.endpoint or "",
            "skip_region_validation": True,
            "skip_metadata_api_check": True,
            "skip_credential_validation": True,
        }


def open_environment(
    config: Config,
    state_dir: Path,
    cache_dir: Path,
    live: bool = True,
    start: bool = True,
    seed_release: bool = True,
    reseed: bool = False,
) -> LocalEnvironment:
    """The local stack of ``config``'s environment, started and seeded (the release side too unless ``seed_release`` is False).

    With ``start`` False it is neither: a StackError says when it is not running.
    """
    stack = Stack(state_dir=state_dir, cache_dir=cache_dir, live=live)
    if not start:
        url = endpoint(stack)
        if url is None:
            raise StackError(
                "the local stack is not running, and this command changes nothing, so it does not start it",
                "start it with 'invoke local.up', then run the command again",
            )
        return LocalEnvironment(region=config.region, endpoint=url, stack=stack)
    # Every region of a release in waves has its network and AMIs, as a team's infrastructure code makes them.
    bases = tuple(seed.base_seeder(stack, w.region) for w in regions.waves(config) if w.region != config.region)
    seeders = bases + ((seed.seed_release(config),) if seed_release and config.release else ())
    url = up(stack, config.region, seeders=seeders, reseed=reseed)
    return LocalEnvironment(region=config.region, endpoint=url, stack=stack)
