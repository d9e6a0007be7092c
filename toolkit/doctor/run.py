"""``invoke doctor``: gather the facts, run every check, and the result to print."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from toolkit import regions
from toolkit.config import Config
from toolkit.doctor import checks, network
from toolkit.doctor.checks import FAIL, WARN, Check
from toolkit.doctor.facts import Facts, gather, gather_region

MARKS = {checks.OK: "✓", WARN: "!", FAIL: "✗"}


@dataclass(frozen=True)
class DoctorResult:
    """Every check's verdict, in the order they ran."""

    env: str
    checks: tuple[Check, ...]

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.status == FAIL]

    @property
    def warned(self) -> list[Check]:
        return [c for c in self.checks if c.status == WARN]

    def check(self, name: str) -> Check:
        """The check called ``name`` (KeyError when there is none)."""
        found = next((c for c in self.checks if c.name == name), None)
        if found is None:
            raise KeyError(name)
        return found

    def lines(self) -> list[str]:
        """One line per check, then the tally."""
        width = max((len(c.name) for c in self.checks), default=0)
        out = [f"{MARKS[c.status]} {c.name:<{width}}  {c.line}" for c in self.checks]
        passed = len(self.checks) - len(self.failed) - len(self.warned)
        out.append(
            f"doctor --env {self.env}: {len(self.failed)} failed, {len(self.warned)} warning(s), {passed} passed"
        )
        return out

    def to_dict(self) -> dict:
        return {"env": self.env, "ok": not self.failed, "checks": [c.to_dict() for c in self.checks]}


def check_all(facts: Facts) -> DoctorResult:
    """Every check on ``facts`` (pure)."""
    found = [
        checks.identity(facts),
        checks.iam_rights(facts),
        *checks.source_amis(facts),
        checks.packer_credentials(facts),
    ]
    found += _release_checks(facts)
    found += [checks.ebs_key(facts), checks.table(facts)]
    return DoctorResult(facts.env, tuple(found))


def doctor(
    config: Config,
    aws: Any,
    environ: Mapping[str, str] = os.environ,
    packer_version: Callable[[], tuple[int, ...]] | None = None,
) -> DoctorResult:
    """Read the account (read calls only) and check what would break the first bake or release; with
    ``release.regions``, each other region's release side too (its checks named ``name (region)``)."""
    result = check_all(gather(config, aws, environ, packer_version))
    for here, env in regions.each(config, aws):
        if here.region != config.region:
            result = DoctorResult(result.env, result.checks + check_region(gather_region(here, env)))
    return result


def check_region(facts: Facts) -> tuple[Check, ...]:
    """The checks of one more region of a release in waves (pure), each named ``name (region)``."""
    found = [*_release_checks(facts), checks.ebs_key(facts), checks.table(facts)]
    return tuple(dataclasses.replace(c, name=f"{c.name} ({facts.region})") for c in found)


def _release_checks(facts: Facts) -> list[Check]:
    if facts.release is None:
        return []
    return [
        network.instance_network(facts),
        network.lb_zones(facts),
        network.lb_to_instances(facts),
        checks.listener_actions(facts),
        checks.smoke_port(facts),
        checks.alarm_timing(facts),
        checks.analysis(facts),
        checks.stickiness(facts),
    ]
