"""``invoke run -- CMD ...``: a one-off command on a fresh instance of the live release (Heroku's ``heroku run``).

The instance runs the live slot's AMI with its config version (or ``--ami``,
``--config-version``), in the live slot group's subnet with rodeo.yml's
security groups and instance profile, so the command sees what the app
sees. How the command gets there and back (user data, the journal shipped
to CloudWatch Logs, no SSH, no inbound port) is ``toolkit.oneoff``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

from toolkit.config import Config
from toolkit.configvars import pin
from toolkit.errors import ConfigError, ImageError, ReleaseError
from toolkit.lineage import find_ami, require_owner
from toolkit.logs.view import LogLine
from toolkit.oneoff import instance, spec
from toolkit.release import phase, slots, userdata
from toolkit.ui import Reporter

DEFAULT_TIMEOUT = 3600


@dataclass(frozen=True)
class RunResult:
    """How a one-off command ended: its exit code is Rodeo's."""

    exit_code: int
    ami: str
    config_version: int
    run_id: str
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


def run(
    config: Config,
    aws: Any,
    argv: list[str],
    size: str | None = None,
    ami: str | None = None,
    config_version: int | None = None,
    timeout: int = DEFAULT_TIMEOUT,
    reporter: Reporter | None = None,
    out: Callable[[LogLine], None] | None = None,
) -> RunResult:
    """Run ``argv`` on a one-off instance and return its exit code (the instance is terminated on every way out)."""
    if not argv:
        raise ConfigError("no command to run", "give it after --, like: invoke run -- bin/rails db:migrate:status")
    if timeout < 1:
        raise ConfigError(f"--timeout {timeout}: must be at least 1", "give a number of seconds")
    rel = slots.release_of(config)
    reporter = reporter or Reporter(stderr=True)
    env = slots.resolve(config, aws)
    state = slots.read(env, aws)
    live = state.active
    if ami is None and live.ami is None:
        raise ReleaseError(
            "nothing is live yet, so there is no AMI to run on", "release one first ('invoke release'), or pass --ami"
        )
    chosen = ami or live.ami
    found = find_ami(aws, chosen)
    if found is None:
        raise ImageError(
            f"{chosen} does not exist in {config.region}", "check the id ('invoke status' shows the live one)"
        )
    require_owner(found, config.app)
    number = live.config if config_version is None else config_version
    if number:
        pin.check(config, aws, number)
    oneoff = spec.OneOff(
        run_id=spec.new_id(),
        argv=tuple(argv),
        ami=chosen,
        config_version=number,
        timeout=timeout,
        instance_type=size or rel.instance_type,
        subnet=phase.subnet(config, aws, live.name),
        security_groups=rel.security_groups,
        instance_profile=rel.instance_profile,
        purpose="run",
    )
    base = userdata.document(config, **pin.user_data(config, aws, number))
    started = time.monotonic()
    code = instance.run(config, aws, oneoff, base, out or phase.print_line, reporter)
    if code == spec.TIMED_OUT:
        reporter.warn(f"the command may have timed out after {timeout}s (exit {spec.TIMED_OUT})")
    return RunResult(
        exit_code=code,
        ami=chosen,
        config_version=number,
        run_id=oneoff.run_id,
        seconds=round(time.monotonic() - started, 1),
    )
