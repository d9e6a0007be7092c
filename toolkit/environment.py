"""The environment a command works in: one ``connect(config)``, two implementations.

An ``Environment`` is all Rodeo asks of where it runs: AWS clients (it is an
``Aws``), the build-host connector (``hosts()``), the URL where a load
balancer's listener answers (``listener_url``), the variables Packer needs
besides the template's AWS defaults (``packer_variables``) and the folder
where this machine keeps Rodeo's files for it (``state_dir``). This module is
AWS's implementation; the local stack's is ``toolkit.local.environment``,
found through ``IMPLEMENTATIONS`` by the config's ``stack:`` and imported only
then. Nothing else in Rodeo asks which of the two it holds.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolkit.aws import Aws, error_code

if TYPE_CHECKING:
    from toolkit.config import Config
    from toolkit.hosts import Hosts

# rodeo.yml's ``stack:`` -> the module whose ``open_environment(config, ...)`` connects to it.
IMPLEMENTATIONS = {"aws": "toolkit.environment", "local": "toolkit.local.environment"}


@dataclass
class Environment(Aws):
    """An AWS account: the clients boto3's chain finds, EC2 build hosts, listeners by their DNS names."""

    # Where this machine keeps Rodeo's files for it (``.rodeo``, or RODEO_STATE_DIR): each release's picture goes under
    # it (``toolkit.release.report``). None: nothing is kept.
    state_dir: Path | None = None

    def hosts(self) -> Hosts:
        """The build-host connector: the instance Packer launches, a temporary one for a check."""
        from toolkit.hosts.ec2 import Ec2Hosts

        return Ec2Hosts(self)

    def listener_url(self, load_balancer: str, port: int) -> str | None:
        """Where ``load_balancer``'s listener on ``port`` answers: its DNS name, ``https`` for an HTTPS listener.

        None when there is no such load balancer. A Classic ELB of that name is found too (its own API).
        """
        import botocore.exceptions  # here: a bake's cache hit imports this module, and not botocore

        elbv2 = self.client("elbv2")
        try:
            found = elbv2.describe_load_balancers(Names=[load_balancer])["LoadBalancers"]
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) != "LoadBalancerNotFound":
                raise
            return self._classic_url(load_balancer, port)
        listeners = elbv2.describe_listeners(LoadBalancerArn=found[0]["LoadBalancerArn"])["Listeners"]
        protocol = next((item["Protocol"] for item in listeners if item["Port"] == port), "HTTP")
        return url_for(protocol, found[0]["DNSName"], port)

    def _classic_url(self, load_balancer: str, port: int) -> str | None:
        import botocore.exceptions

        try:
            lb = self.client("elb").describe_load_balancers(LoadBalancerNames=[load_balancer])
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) != "LoadBalancerNotFound":
                raise
            return None
        found = lb["LoadBalancerDescriptions"][0]
        listeners = [d["Listener"] for d in found["ListenerDescriptions"]]
        protocol = next((item["Protocol"] for item in listeners if item["LoadBalancerPort"] == port), "HTTP")
        return url_for(protocol, found["DNSName"], port)

    def packer_variables(self) -> dict[str, Any]:
        """Template variables to set besides the bake's own: none on AWS (the template's defaults are AWS's)."""
        return {}


def url_for(protocol: str, host: str, port: int) -> str:
    """``scheme://host[:port]`` for a listener of ``protocol`` (HTTPS or HTTP) on ``port``; the scheme's own port is left out."""
    scheme = "https" if protocol == "HTTPS" else "http"
    default = {"https": 443, "http": 80}[scheme]
    return f"{scheme}://{host}" + ("" if port == default else f":{port}")


def connect(
    config: Config,
    state_dir: Path,
    cache_dir: Path,
    live: bool = True,
    start: bool = True,
    seed_release: bool = True,
    reseed: bool = False,
) -> Environment:
    """The environment of ``config``: its ``stack:``'s implementation, connected.

    ``start`` False is for commands that change nothing: a local stack must
    already run (a StackError says so), it is not started or seeded. The
    other arguments matter only to the local stack: where it keeps its state
    and cache, whether it boots instances (``live``), whether it seeds the
    release side too (``seed_release``) and seeds again (``reseed``). An AWS
    account is always there: they change nothing for it.
    """
    module = importlib.import_module(IMPLEMENTATIONS[config.stack])
    return module.open_environment(
        config,
        state_dir=state_dir,
        cache_dir=cache_dir,
        live=live,
        start=start,
        seed_release=seed_release,
        reseed=reseed,
    )


def open_environment(config: Config, state_dir: Path | None = None, **_: Any) -> Environment:
    """AWS's implementation of ``connect``: the account boto3 finds (``AWS_PROFILE`` or rodeo.yml's ``profile:``, ``AWS_ENDPOINT_URL``...)."""
    return Environment(region=config.region, profile=config.profile, state_dir=state_dir)
