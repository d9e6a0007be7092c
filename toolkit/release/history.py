"""``invoke releases``: every release and rollback of an environment, numbered, newest first (Heroku's ``releases``).

``read`` gathers the ledger (``toolkit.release.ledger.every``); ``History``
is built from the entries by a pure function (``history``, a table in the
tests): per run its number, what it put in front of the traffic (AMI, app
version and commit, config version), who ran it, when, how long it took, the
outcome and the reason, and in ``--json`` each judged step's canary analysis. ``find`` picks release vN for ``invoke rollback --to``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from toolkit.config import Config
from toolkit.errors import ConfigError, ReleaseError
from toolkit.release import ledger

# Outcomes of a run that put its AMI and config in front of all the traffic: a rollback --to may restore it.
SERVED = ("released", "restored")
WORDS = {
    "released": "released",
    "restored": "rolled back",
    "rolled_back": "failed, undone",
    "interrupted": "interrupted",
    "in_progress": "in progress",
}


@dataclass(frozen=True)
class Run:
    """One ledger entry as ``invoke releases`` shows it."""

    number: int | None  # None: recorded before releases were numbered
    kind: str  # release or rollback
    outcome: str  # released, restored (a rollback), rolled_back (a failed gate undid it), interrupted, in_progress
    ami: str | None
    config_version: int
    from_ami: str | None = None
    from_config_version: int | None = None
    app_version: str | None = None
    app_commit: str | None = None
    git_sha: str | None = None
    restores: int | None = None  # the release number a ``rollback --to`` restored
    by: str | None = None  # user@host
    aws_caller: str | None = None
    git_author: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    seconds: float | None = None
    reason: str | None = None
    promoted_from: dict | None = None  # invoke promote: where it came from (toolkit.promote.plan.Origin)
    # Its release phase (toolkit.release.phase): status, command, exit_code and seconds; None without one.
    release_phase: dict | None = field(default=None, hash=False)
    # The canary analysis of each judged step (``toolkit.release.judging``): window, verdict, decision, figures.
    analysis: tuple[dict, ...] = field(default=(), hash=False)

    @property
    def name(self) -> str:
        return f"v{self.number}" if self.number else "-"

    def line(self) -> str:
        """ "v7  2026-12-05 10:02:11  rolled back  ami-1 (app 1.2.0, config v3)  41s  by arn... (Ann <ann@x>): why"."""
        what = f"{self.ami}" + (
            f" (app {self.app_version}, config v{self.config_version})"
            if self.app_version
            else f" (config v{self.config_version})"
        )
        to = f" to v{self.restores}" if self.restores else ""
        what += promoted_words(self.promoted_from)
        took = f"  {self.seconds:.0f}s" if self.seconds is not None else ""
        when = (self.started_at or "?").replace("T", " ")[:19]
        who = self.aws_caller or self.by or "?"
        who += f" ({self.git_author})" if self.git_author else ""
        reason = f": {self.reason}" if self.reason else ""
        return f"{self.name:>5}  {when}  {WORDS.get(self.outcome, self.outcome) + to:16} {what}{took}  by {who}{reason}"


@dataclass(frozen=True)
class History:
    """``invoke releases``: ``to_dict`` is its ``--json``."""

    app: str
    env: str
    runs: tuple[Run, ...]

    def to_dict(self) -> dict:
        return {"app": self.app, "env": self.env, "releases": [dataclasses.asdict(r) for r in self.runs]}

    def lines(self) -> list[str]:
        if not self.runs:
            return [f"no releases of {self.app}/{self.env} yet: 'invoke deploy' makes v1"]
        return [f"releases of {self.app}/{self.env}, newest first"] + [r.line() for r in self.runs]


def run_of(entry: dict) -> Run:
    """The Run of one ledger entry (older entries lack the newer fields)."""
    return Run(
        number=entry.get("number"),
        kind=entry.get("kind", "release"),
        outcome=entry.get("outcome", "?"),
        ami=entry.get("to_ami") or entry.get("ami"),
        config_version=int(entry.get("config_version") or 0),
        from_ami=entry.get("from_ami"),
        from_config_version=entry.get("from_config_version"),
        app_version=entry.get("app_version"),
        app_commit=entry.get("app_commit"),
        git_sha=entry.get("git_sha"),
        restores=entry.get("restores"),
        by=entry.get("by"),
        aws_caller=entry.get("aws_caller"),
        git_author=entry.get("git_author"),
        started_at=entry.get("started_at"),
        ended_at=entry.get("ended_at"),
        seconds=seconds(entry.get("started_at"), entry.get("ended_at")),
        reason=entry.get("reason"),
        promoted_from=entry.get("promoted_from"),
        release_phase=entry.get("release_phase"),
        analysis=tuple(entry.get("analysis") or ()),
    )


def promoted_words(origin: dict | None) -> str:
    """ " promoted from staging v7 (ami-1 in eu-west-1)", or "" for a release that was not promoted."""
    return f" promoted from {origin_words(origin)}" if origin else ""


def origin_words(origin: dict) -> str:
    """ "staging v7 (ami-1 in eu-west-1)": a promotion's source release."""
    number = f" v{origin['number']}" if origin.get("number") else ""
    return f"{origin.get('env')}{number} ({origin.get('ami')} in {origin.get('region')})"


def history(app: str, env: str, entries: list[dict]) -> History:
    """The History of ``entries`` (the ledger's, newest first)."""
    return History(app, env, tuple(run_of(e) for e in entries))


def seconds(started: str | None, ended: str | None) -> float | None:
    """Seconds between two ledger times (ISO 8601), or None when either is missing."""
    if not started or not ended:
        return None
    return round((datetime.fromisoformat(ended) - datetime.fromisoformat(started)).total_seconds(), 1)


def find(entries: list[dict], number: int) -> dict:
    """The entry of release ``number`` that served (released or restored); ReleaseError naming the ones that may be restored."""
    found = next((e for e in entries if e.get("number") == number), None)
    served = [f"v{e['number']}" for e in entries if e.get("number") and e.get("outcome") in SERVED]
    hint = f"these served and may be restored: {', '.join(served[:12])}" if served else "no release has served yet"
    if found is None:
        raise ReleaseError(f"no release v{number} is recorded", hint + " ('invoke releases' lists them)")
    if found.get("outcome") not in SERVED:
        raise ReleaseError(
            f"release v{number} never served all the traffic (it ended {WORDS.get(found.get('outcome'), found.get('outcome'))}), "
            "so there is nothing known-good to restore",
            hint,
        )
    return found


def number(word: str, flag: str = "--to") -> int:
    """``v7`` (or ``7``) -> 7; ConfigError naming the form (and the ``flag`` it was given to) otherwise."""
    digits = word.strip().lower().removeprefix("v")
    if not digits.isdigit() or int(digits) == 0:
        raise ConfigError(f"{flag} {word!r} is not a release number", "write it like v7 ('invoke releases' lists them)")
    return int(digits)


def read(config: Config, aws: Any) -> History:
    """Every release and rollback of ``config``'s environment, newest first."""
    return history(config.app, config.env, ledger.every(config, aws))
