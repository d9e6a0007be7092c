"""The regions of a release in waves (``release.regions``), and the environment's config as it is in each.

A release in waves releases one region after another (``toolkit.release.waves``);
in each, the ordinary release runs on ``in_region``'s copy of the config: that
region as ``region:``, its own subnets, security groups and alarms (ids differ
per region), and ``home_region`` still naming ``region:``, where the bakes and
the config vars live (instances in every region read their config from there).
Without ``release.regions`` there is one wave: ``region:`` as rodeo.yml has it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from toolkit.config import Config, RegionWave
from toolkit.errors import ConfigError


def waves(config: Config) -> list[RegionWave]:
    """The regions in the order they are released (one: ``region:``, when ``release.regions`` is empty)."""
    rel = config.release
    given = rel.regions if rel and rel.regions else (config.region,)
    return [RegionWave(w) if isinstance(w, str) else w for w in given]


def in_region(config: Config, wave: RegionWave, first: bool = True) -> Config:
    """``config`` as a release sees it in ``wave``'s region; ``first``: the first wave (the one-box's, if any).

    ``region:``'s own wave keeps release's subnets and security groups unless
    the wave gives its own; another region has only its wave's (empty: its
    load balancer's subnets and its VPC's default group, as a release without
    them). Alarms are the wave's, else release's names.
    """
    rel = config.release
    if rel is None:
        return config
    home = wave.region == config.config_region
    here = dataclasses.replace(
        rel,
        subnets=wave.subnets or (rel.subnets if home else ()),
        security_groups=wave.security_groups or (rel.security_groups if home else ()),
        alarms=rel.alarms if wave.alarms is None else wave.alarms,
        regions=(),
        one_box=rel.one_box and first,
    )
    return dataclasses.replace(config, region=wave.region, home_region=config.config_region, release=here)


def environment_in(aws: Any, region: str) -> Any:
    """``aws`` (an environment: ``toolkit.environment``) in ``region``: the same account, endpoint and clients' cache."""
    return aws if aws.region == region else dataclasses.replace(aws, region=region)


def each(config: Config, aws: Any) -> list[tuple[Config, Any]]:
    """(config, environment) of every region of the waves, in order (one pair, ``config`` and ``aws``, without waves)."""
    return [(in_region(config, w, first=i == 0), environment_in(aws, w.region)) for i, w in enumerate(waves(config))]


def one(config: Config, aws: Any, region: str | None) -> tuple[Config, Any]:
    """(config, environment) of ``region`` (None: ``region:``); ConfigError naming the choices when it is not one of
    the waves' regions."""
    chosen = region or config.region
    for here, env in each(config, aws):
        if here.region == chosen:
            return here, env
    raise ConfigError(
        f"--region {chosen}: not a region this environment releases in",
        f"choose one of: {', '.join(w.region for w in waves(config))} (release.regions in {config.shown_path})",
    )
