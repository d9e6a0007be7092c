"""What a release or a rollback did: the typed result and the plain words for it.

``ReleaseResult.to_dict`` is the ``--json`` record, with the internal
outcome names (``released``, ``restored``, ``unchanged``, ``planned``,
``rolled_back``).
The words a person reads say, once, what was tried, what serves now and why,
and never use those names: ``lines()`` for a run that ended, and
``rolled_back_tail()`` for the error of one that was rolled back (whose
``lines()`` are then empty, so the error is the one place that says it).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ReleaseResult:
    """What ``invoke release`` or ``invoke rollback`` did; ``to_dict`` is its ``--json``."""

    outcome: str  # released, restored (a rollback that came to serve), unchanged, planned, rolled_back (a failed gate undid it),
    # stopped (the release phase failed: nothing moved)
    kind: str  # release or rollback
    ami: str  # what the run put (or tried to put) in front of the traffic
    git_sha: str | None
    active_slot: str  # the slot holding the traffic when the run ended
    app_version: str | None = None  # of an AMI baked from an app source (rodeo:app-version)
    app_commit: str | None = None
    previous_slot: str | None = None
    from_ami: str | None = None  # what held the traffic when the run began
    steps: list[int] = field(default_factory=list)
    seconds: float | None = None
    reason: str | None = None
    plan: dict | None = None
    config_version: int | None = None  # the config version released with the AMI (0: none)
    from_config: int | None = None  # the config version released with from_ami
    number: int | None = None  # its release number in the ledger (v1, v2, ...)
    promoted_from: dict | None = None  # invoke promote: the source environment's release (toolkit.promote.plan.Origin)
    report: str | None = None  # the path of its picture (toolkit.release.report), when one was drawn

    def to_dict(self) -> dict:
        """Plain data (keys without a value are left out)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    def lines(self) -> list[str]:
        """The result as a person reads it: one line; none for a rolled-back run (its error says it)."""
        if self.outcome in ("rolled_back", "stopped"):
            return []  # the error says it
        verb = "roll back" if self.kind == "rollback" else "release"
        if self.outcome == "planned":
            return [f"planned only: nothing was changed (run without --plan to {verb})"]
        tried = named(self.ami, self.app_version, self.config_version)
        if self.outcome == "unchanged":
            return [f"nothing to {verb}: {tried} already serves from {self.active_slot}"]
        took = f" in {self.seconds:.0f}s" if self.seconds is not None else ""
        took += f" as v{self.number}" if self.number else ""
        replaced = self.from_ami and (self.from_ami, self.from_config) != (self.ami, self.config_version)
        instead = f", in place of {named(self.from_ami, None, self.from_config)}" if replaced else ""
        pictured = [f"its picture: {self.report}"] if self.report else []
        if self.kind == "rollback":
            return [f"rolled back to {tried}{took}: {self.active_slot} serves it again{instead}", *pictured]
        return [f"released {tried}{took}: {self.active_slot} serves it now{instead}", *pictured]

    def rolled_back_tail(self) -> str:
        """ "after 17s at 10% of traffic: <why>; blue serves ami-1 (config v2), as before": how long, how far, why, what serves."""
        reached = f"at {max(self.steps)}% of traffic" if self.steps else "before it took any traffic"
        took = f"after {self.seconds:.0f}s " if self.seconds is not None else ""
        serving = (
            f"{self.active_slot} serves {named(self.from_ami, None, self.from_config)}, as before"
            if self.from_ami
            else "nothing served before it, and nothing serves now"
        )
        return f"{took}{reached}: {self.reason}; {serving}"

    def rolled_back_message(self) -> str:
        """The one sentence of a rolled-back run: "release of ami-2 (config v3) rolled back after ...; blue serves ami-1 ..."."""
        what = "rollback to" if self.kind == "rollback" else "release of"
        undone = "was undone" if self.kind == "rollback" else "rolled back"
        return f"{what} {named(self.ami, self.app_version, self.config_version)} {undone} {self.rolled_back_tail()}"


def named(ami: str | None, app_version: str | None = None, config: int | None = None) -> str:
    """ "ami-1 (app 1.2.0, config v3)": an AMI with what is known of it."""
    about = [f"app {app_version}"] if app_version else []
    about += [f"config v{config}"] if config is not None else []
    return f"{ami or 'nothing'}" + (f" ({', '.join(about)})" if about else "")
