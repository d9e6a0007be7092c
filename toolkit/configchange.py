"""``invoke config.set``, ``config.unset`` and ``config.list``: a config change is a release.

A change is checked first (keys, values, what the newest config version
holds), so bad input changes nothing. Then each new value becomes a new
version of its SSM parameter, the next config version is recorded (a
conditional write: a change that loses the race for its number is applied
on top of the winner), and, unless ``release=False`` (``--no-release``), that
config version is released with the live AMI through the release's gates,
under the release lock taken before anything was written. A bad value
rolls back like a bad AMI: the instances of the new slot fail to start or
to pass health, and traffic stays on the old ones.

Values never appear in a result, a progress line, an error or the ledger:
only keys, versions and whether a key is a secret.
"""

from __future__ import annotations

import dataclasses
import getpass
import json
from dataclasses import dataclass, field
from typing import Any, Callable, TextIO

from toolkit import lock, notify
from toolkit.config import Config
from toolkit.configvars import store
from toolkit.configvars.versions import ConfigVersion, Diff, apply, diff_set, diff_unset
from toolkit.errors import ReleaseError, RodeoError
from toolkit.release import ledger, rollout, slots, waves
from toolkit.release.result import ReleaseResult
from toolkit.release.waves import WavesResult
from toolkit.ui import Reporter

RACE_RETRIES = 5  # conditional writes lost to other changes before giving up


@dataclass(frozen=True)
class ConfigResult:
    """What a config change did; ``to_dict`` is its ``--json`` (keys only, never values)."""

    outcome: str  # released, staged (--no-release), unchanged, rolled_back, not_released
    app: str
    env: str
    version: int  # the config version made (or, unchanged, the newest)
    previous: int
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)  # of ``changed``, the secret ones
    release: ReleaseResult | WavesResult | None = None

    def to_dict(self) -> dict:
        """Plain data; the release's own record inside."""
        out = dataclasses.asdict(self)
        out["release"] = self.release.to_dict() if self.release else None
        return out

    def lines(self) -> list[str]:
        """The change as a person reads it."""
        what = "; ".join(x for x in (_names("set", self.changed, self.secrets), _names("unset", self.removed, [])) if x)
        if self.outcome == "unchanged":
            return [
                f"unchanged: config version {self.version} of {self.app}/{self.env} already holds {', '.join(self.unchanged)} with those values"
            ]
        head = f"config version {self.version} of {self.app}/{self.env} (was {self.previous}): {what}"
        if self.outcome == "staged":
            return [
                head,
                "  staged, not released: release it with 'invoke release --config-only' (or with the next 'invoke release')",
            ]
        if self.outcome == "rolled_back":
            return [head]  # the error says how its release ended and what serves
        if self.outcome == "not_released":
            return [head, f"  not released: the instances still serve config version {self.previous}"]
        return [head] + [f"  {line}" for line in (self.release.lines() if self.release else [])]


@dataclass(frozen=True)
class ListResult:
    """The config vars of one config version; a secret's value only when asked (``show_secrets``)."""

    app: str
    env: str
    version: int
    live: int | None  # the config version holding the traffic now (None: no release section, or nothing live)
    vars: dict[str, dict] = field(
        default_factory=dict
    )  # key -> {"value": str | None, "secret": bool, "parameter_version": int}
    by: str = ""
    at: str = ""
    restores: int = 0  # made by a rollback: a copy of this config version

    def to_dict(self) -> dict:
        """Plain data (a hidden secret's value is None)."""
        return dataclasses.asdict(self)

    def lines(self) -> list[str]:
        """``KEY=value`` lines, a hidden secret as ``(secret)``."""
        live = (
            ""
            if self.live is None
            else (
                " (live)"
                if self.live == self.version
                else f" (live: config version {self.live}; 'invoke release --config-only' releases {self.version})"
            )
        )
        made = f", made {self.at} by {self.by}" if self.at else ""
        made += f" (a rollback's copy of config version {self.restores})" if self.restores else ""
        out = [f"config version {self.version} of {self.app}/{self.env}{live}{made}"]
        if not self.vars:
            out.append("  no config vars (set one with 'invoke config.set KEY=VALUE')")
        for key, var in sorted(self.vars.items()):
            out.append(f"  {key}={_shown(var['value']) if var['value'] is not None else '(secret)'}")
        return out


def read_value(stream: TextIO, key: str) -> str:
    """A secret's value from ``stream``: a hidden prompt on a terminal, else everything it holds (one final newline dropped)."""
    if stream.isatty():
        return getpass.getpass(f"value of {key} (hidden): ")
    value = stream.read()
    return value[:-2] if value.endswith("\r\n") else value[:-1] if value.endswith("\n") else value


def set_vars(
    config: Config,
    aws: Any,
    values: dict[str, str],
    secret: bool = False,
    release: bool = True,
    break_lock: bool = False,
    reporter: Reporter | None = None,
) -> ConfigResult:
    """Give the keys of ``values`` those values (secrets with ``secret``) in a new config version, then release it.

    ``values`` come checked (``plan.parse_pairs``). A key set to the plain
    value it holds is left alone; when nothing changes, no version is made
    and nothing is released.
    """

    def make_diff(current: ConfigVersion) -> Diff:
        plain = [k for k in values if k in current.vars and not current.vars[k].secret and not secret]
        return diff_set(current, values, secret, store.values(config, aws, current, keys=plain))

    return _change(config, aws, make_diff, values, release, break_lock, reporter)


def unset_vars(
    config: Config,
    aws: Any,
    keys: list[str],
    release: bool = True,
    break_lock: bool = False,
    reporter: Reporter | None = None,
) -> ConfigResult:
    """Remove ``keys`` in a new config version, then release it.

    Their SSM parameters stay (a rollback may need their old versions).
    """
    return _change(config, aws, lambda current: diff_unset(current, keys), {}, release, break_lock, reporter)


def list_vars(config: Config, aws: Any, show_secrets: bool = False) -> ListResult:
    """The newest config version's keys and values (secrets decrypted only with ``show_secrets``), and the live one."""
    version = store.newest(config, aws)
    found = store.values(config, aws, version, decrypt=show_secrets)
    shown = {
        k: {"value": found.get(k), "secret": v.secret, "parameter_version": v.version} for k, v in version.vars.items()
    }
    return ListResult(
        config.app, config.env, version.number, _live(config, aws), shown, version.by, version.at, version.restores
    )


def _change(
    config: Config,
    aws: Any,
    make_diff: Callable[[ConfigVersion], Diff],
    values: dict[str, str],
    release: bool,
    break_lock: bool,
    reporter: Reporter | None,
) -> ConfigResult:
    reporter = reporter or Reporter()
    if release:
        slots.release_of(config)  # no release: section, no release: say so before anything is written
    held = lock.acquire(config, aws, "config change", break_lock, reporter) if release else None
    try:
        current = store.newest(config, aws)
        diff = make_diff(current)
        if diff.empty:
            return ConfigResult(
                "unchanged", config.app, config.env, current.number, current.number, unchanged=list(diff.unchanged)
            )
        versions = store.put_values(config, aws, values, diff.put)
        made = _record(config, aws, current, diff, versions)
        result = ConfigResult(
            "staged",
            config.app,
            config.env,
            made.number,
            made.number - 1,
            list(made.changed),
            list(made.removed),
            list(diff.unchanged),
            sorted(k for k in made.changed if made.vars[k].secret),
        )
        notify.send(
            config,
            aws,
            notify.event(
                config,
                "config.changed",
                f"config v{made.number}: {_summary(made)}"
                + ("" if release else " (staged: 'invoke release --config-only' releases it)"),
                version=made.number,
                changed=list(made.changed),
                removed=list(made.removed),
                by=made.by,
            ),
            reporter,
        )
        if not release:
            return result
        reporter.ok(result.lines()[0])  # then the release's own progress lines
        return _release(config, aws, result, held, reporter)
    finally:
        if held is not None:
            rollout.free_lock(aws, held, reporter)


def _record(config: Config, aws: Any, current: ConfigVersion, diff: Diff, versions: dict[str, int]) -> ConfigVersion:
    """Record the version after ``current``; on a lost race, apply ``diff`` on top of the newer one and try again."""
    base = current
    for _ in range(RACE_RETRIES):
        made = apply(base, diff, versions, lock.whoami(), ledger.now())
        if store.record(config, aws, made):
            return made
        base = store.newest(config, aws)
    raise ReleaseError(
        f"config version {base.number + 1} was taken by other changes {RACE_RETRIES} times in a row",
        "run the command again (the values are stored in SSM; only the config version is missing)",
    )


def _release(config: Config, aws: Any, result: ConfigResult, held: lock.Lock, reporter: Reporter) -> ConfigResult:
    """Release ``result``'s config version with the live AMI; a failure says what serves and what to do."""
    try:
        released = waves.release(config, aws, config_only=True, held=held, reporter=reporter)
    except RodeoError as exc:
        rolled_back = getattr(exc.result, "outcome", None) == "rolled_back"
        failed = dataclasses.replace(
            result, outcome="rolled_back" if rolled_back else "not_released", release=exc.result
        )
        hint = (
            f"config version {result.version} stays the newest, so the next release would take it again: fix it with "
            "'invoke config.set' or 'invoke config.unset' (a new version)"
            if rolled_back
            else exc.hint or ""
        )
        message = (
            f"config version {result.version} was recorded but rolled back {exc.result.rolled_back_tail()}"
            if rolled_back
            else f"config version {result.version} was recorded but not released: {exc.message}"
        )
        raise type(exc)(message, hint, result=failed) from exc
    return dataclasses.replace(
        result, outcome="released" if released.outcome == "released" else released.outcome, release=released
    )


def _summary(made: ConfigVersion) -> str:
    """ "GREETING, DB_PASSWORD set; OLD_FLAG unset": key names only, never a value."""
    parts = [
        f"{', '.join(made.changed)} set" if made.changed else "",
        f"{', '.join(made.removed)} unset" if made.removed else "",
    ]
    return "; ".join(p for p in parts if p)


def _live(config: Config, aws: Any) -> int | None:
    """The config version of the slot holding the traffic, or None without a release section or a live slot."""
    if config.release is None:
        return None
    try:
        state = slots.read(slots.resolve(config, aws), aws)
    except ReleaseError:
        return None
    return state.active.config if state.active.ami else None


def _names(verb: str, keys: list[str], secrets: list[str]) -> str:
    return f"{verb} " + ", ".join(f"{k} (secret)" if k in secrets else k for k in keys) if keys else ""


def _shown(value: str) -> str:
    """A value as-is when it reads plainly on one line, else JSON-quoted (newlines, edge spaces, quotes)."""
    plain = value.isprintable() and value == value.strip() and '"' not in value
    return value if plain else json.dumps(value, ensure_ascii=False)
