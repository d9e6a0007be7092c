"""Config vars, the pure part: checking input, config versions, and what a change does to one.

Nothing here talks to AWS. ``store`` reads the newest ``ConfigVersion``;
``diff_set``/``diff_unset`` say which parameters a change writes (or drops);
``apply`` makes the next version from them. A key is an environment variable
name (``^[A-Z_][A-Z0-9_]*$``); a value is what SSM's standard tier holds
(1 to 4096 bytes); ``AWS_*`` and ``RODEO_*`` are reserved.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Iterable

from toolkit.errors import ConfigError

KEY_RE = re.compile(r"^[A-Z_][A-Z0-9_]*$")
# Every key's parameter name and version go into the release's user data, which EC2 caps at
# 16 KB: 100 keys of 64 characters under /rodeo/<app>/<env>/ stay well below it.
MAX_KEY_LENGTH = 64
MAX_VARS = 100
# SSM's standard tier holds 4 KB a value; counted in UTF-8 bytes, the stricter reading.
MAX_VALUE_BYTES = 4096
RESERVED = {
    "AWS_": "AWS_* variables steer the AWS SDKs on the instance (endpoint, region, credentials)",
    "RODEO_": "RODEO_* variables are Rodeo's own",
}
KEY_HINT = "a config key is an environment variable name: capital letters, digits and _, not starting with a digit (^[A-Z_][A-Z0-9_]*$)"


@dataclass(frozen=True)
class Var:
    """One key of a config version: the SSM parameter version it holds, and whether it is a secret.

    ``name`` is the SSM parameter holding it when that is not the key's usual
    one (``parameter_name``): SSM refuses to change a parameter's type, so a
    key that turned from plain to secret (or back) lives on under
    ``type_parameter_name`` while the older versions stay where they were.
    """

    version: int
    secret: bool = False
    name: str = ""


@dataclass(frozen=True)
class ConfigVersion:
    """Config version ``number``: every key and its parameter version; who made it, when, and which keys it changed."""

    number: int
    vars: dict[str, Var] = field(default_factory=dict, hash=False)
    changed: tuple[str, ...] = ()  # keys given a new value by the change that made this version
    removed: tuple[str, ...] = ()  # keys it dropped
    by: str = ""
    at: str = ""
    restores: int = 0  # made by a rollback: a copy of config version ``restores``

    def to_dict(self) -> dict:
        """Plain data (names, versions and flags: never a value)."""
        return {
            "number": self.number,
            "vars": {
                k: {"version": v.version, "secret": v.secret, **({"name": v.name} if v.name else {})}
                for k, v in sorted(self.vars.items())
            },
            "changed": list(self.changed),
            "removed": list(self.removed),
            "by": self.by,
            "at": self.at,
            **({"restores": self.restores} if self.restores else {}),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "ConfigVersion":
        """The version ``to_dict`` wrote."""
        return cls(
            int(data["number"]),
            {
                k: Var(int(v["version"]), bool(v.get("secret")), v.get("name", ""))
                for k, v in data.get("vars", {}).items()
            },
            tuple(data.get("changed", ())),
            tuple(data.get("removed", ())),
            data.get("by", ""),
            data.get("at", ""),
            int(data.get("restores", 0)),
        )

    @property
    def secrets(self) -> list[str]:
        return sorted(k for k, v in self.vars.items() if v.secret)


EMPTY = ConfigVersion(0)  # before the first `config.set`: no keys (a slot launched without config holds it)


@dataclass(frozen=True)
class Diff:
    """What a change writes: ``put`` (key -> secret) gets a new parameter version; ``removed`` leaves the config."""

    put: dict[str, bool] = field(default_factory=dict, hash=False)
    removed: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()  # keys given the value they already hold

    @property
    def empty(self) -> bool:
        return not self.put and not self.removed


def parameter_path(app: str, env: str) -> str:
    """The SSM path holding an environment's config vars."""
    return f"/rodeo/{app}/{env}/"


def parameter_name(app: str, env: str, key: str) -> str:
    """The SSM parameter of ``key``."""
    return parameter_path(app, env) + key


def type_parameter_name(app: str, env: str, key: str, secret: bool) -> str:
    """Where ``key`` lives when its usual parameter holds the other type: ``/rodeo/<app>/<env>/<secret|plain>/<KEY>``.

    Never a key's own name (keys have no ``/`` and no lower case), and always of one type.
    """
    return f"{parameter_path(app, env)}{'secret' if secret else 'plain'}/{key}"


def parameter_of(app: str, env: str, key: str, var: Var) -> str:
    """The SSM parameter holding ``key`` as ``var`` records it."""
    return var.name or parameter_name(app, env, key)


def references(version: ConfigVersion, app: str, env: str) -> list[str]:
    """``/rodeo/<app>/<env>/<KEY>:<parameter version>`` for every key: what the instances fetch (names and versions only)."""
    return [f"{parameter_of(app, env, k, v)}:{v.version}" for k, v in sorted(version.vars.items())]


def check_key(key: str) -> None:
    """ConfigError unless ``key`` is a valid, unreserved environment variable name."""
    if not KEY_RE.match(key) or len(key) > MAX_KEY_LENGTH:
        what = (
            f"is longer than {MAX_KEY_LENGTH} characters"
            if KEY_RE.match(key)
            else "is not a valid environment variable name"
        )
        raise ConfigError(f"config key {key!r} {what}", KEY_HINT)
    for prefix, why in RESERVED.items():
        if key.startswith(prefix):
            raise ConfigError(
                f"config key {key!r} starts with {prefix}, which is reserved: {why}", "choose another name"
            )


def check_value(key: str, value: str) -> None:
    """ConfigError unless SSM's standard tier can hold ``value`` and an environment variable can carry it.

    The message never shows the value (it may be a secret).
    """
    if value == "":
        raise ConfigError(
            f"config key {key}: the value is empty (SSM stores no empty value)",
            f"remove the key instead: 'invoke config.unset {key}'",
        )
    if "\0" in value:
        raise ConfigError(
            f"config key {key}: the value holds a NUL character, which no environment variable can",
            "remove it from the value",
        )
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise ConfigError(f"config key {key}: the value is not valid UTF-8", "give the value as UTF-8 text") from None
    if size > MAX_VALUE_BYTES:
        raise ConfigError(
            f"config key {key}: the value is {size} bytes, over SSM's limit of {MAX_VALUE_BYTES} (standard tier)",
            "keep a config value under 4 KB: put larger data in S3 and its location in a config var",
        )


def parse_pairs(pairs: Iterable[str], secret: bool, read_value: Callable[[str], str]) -> dict[str, str]:
    """``KEY=VALUE`` arguments -> {key: value}, every key and value checked.

    With ``secret``, one argument may be a bare ``KEY``: its value comes from
    ``read_value(KEY)`` (stdin), so it never lands in shell history.
    """
    out: dict[str, str] = {}
    from_stdin: list[str] = []
    seen: set[str] = set()
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep and not secret:
            raise ConfigError(
                f"{pair!r} is not KEY=VALUE",
                f"write {pair}=VALUE; a secret's value can come from stdin instead: 'invoke config.set {pair} --secret'",
            )
        check_key(key)
        if key in seen:
            raise ConfigError(f"config key {key} is given twice", "give each key once")
        seen.add(key)
        if sep:
            check_value(key, value)
            out[key] = value
        else:
            from_stdin.append(key)
    if len(from_stdin) > 1:
        raise ConfigError(
            f"only one value can come from stdin, and {len(from_stdin)} keys have none ({', '.join(from_stdin)})",
            "give the others as KEY=VALUE, or set them one command at a time (--no-release, then 'invoke release --config-only')",
        )
    if not out and not from_stdin:
        raise ConfigError("no config var given", "write 'invoke config.set KEY=VALUE' (more with --and KEY=VALUE)")
    for key in from_stdin:
        value = read_value(key)
        check_value(key, value)
        out[key] = value
    return out


def parse_keys(keys: Iterable[str]) -> list[str]:
    """Keys to unset, checked; ConfigError on none, a duplicate, or a malformed one."""
    out: list[str] = []
    for key in keys:
        check_key(key)
        if key in out:
            raise ConfigError(f"config key {key} is given twice", "give each key once")
        out.append(key)
    if not out:
        raise ConfigError("no config key given", "write 'invoke config.unset KEY' (more with --and KEY)")
    return out


def diff_set(current: ConfigVersion, values: dict[str, str], secret: bool, current_values: dict[str, str]) -> Diff:
    """What setting ``values`` does to ``current``.

    ``current_values`` holds the plain (non-secret) values ``current`` has now,
    so a key set to the value it holds is left alone. A secret is always
    written (comparing it would mean decrypting it). A secret key set without
    ``secret`` is refused: a secret never turns plain by accident.
    """
    put: dict[str, bool] = {}
    same = []
    for key, value in values.items():
        held = current.vars.get(key)
        if held is not None and held.secret and not secret:
            raise ConfigError(
                f"config key {key} is a secret: setting it without --secret would store its value in plain text",
                f"add --secret; to make it plain, 'invoke config.unset {key}' first",
            )
        if held is not None and not held.secret and not secret and current_values.get(key) == value:
            same.append(key)
        else:
            put[key] = secret
    if len(set(current.vars) | set(put)) > MAX_VARS:
        raise ConfigError(
            f"{len(set(current.vars) | set(put))} config vars would exceed the limit of {MAX_VARS}",
            "unset keys the app no longer reads",
        )
    return Diff(put=put, unchanged=tuple(sorted(same)))


def diff_unset(current: ConfigVersion, keys: list[str]) -> Diff:
    """What unsetting ``keys`` does to ``current``; ConfigError naming a key it does not hold."""
    absent = [k for k in keys if k not in current.vars]
    if absent:
        held = ", ".join(sorted(current.vars)) or "none"
        raise ConfigError(
            f"config key {absent[0]} is not set (config version {current.number} holds: {held})",
            "see 'invoke config.list'",
        )
    return Diff(removed=tuple(keys))


def apply(base: ConfigVersion, diff: Diff, versions: dict[str, int | Var], by: str, at: str) -> ConfigVersion:
    """The version after ``base``: ``diff`` applied, ``versions`` the parameter versions SSM gave the keys written
    (a ``Var`` when the key was written to another parameter than its usual one).

    ``base`` may be newer than the version ``diff`` was made from (another
    change won the race for its number): the change is applied on top of it.
    """
    keys = {k: v for k, v in base.vars.items() if k not in diff.removed}
    for key, secret in diff.put.items():
        written = versions[key]
        keys[key] = written if isinstance(written, Var) else Var(written, secret)
    return ConfigVersion(
        base.number + 1, keys, tuple(sorted(diff.put)), tuple(sorted(k for k in diff.removed if k in base.vars)), by, at
    )


def restore(newest: ConfigVersion, old: ConfigVersion, by: str, at: str) -> ConfigVersion | None:
    """The version after ``newest`` holding exactly ``old``'s keys and parameter versions (a rollback's copy, so later
    changes and releases build on what it restored), or None when ``newest`` already holds them (no copy needed).

    ``changed`` and ``removed`` say what the copy changes against ``newest``.
    """
    if newest.vars == old.vars:
        return None
    changed = tuple(sorted(k for k, v in old.vars.items() if newest.vars.get(k) != v))
    removed = tuple(sorted(k for k in newest.vars if k not in old.vars))
    return ConfigVersion(newest.number + 1, dict(old.vars), changed, removed, by, at, restores=old.number)
