"""What a release pins of the config: a config version, checked, and the user data that names it.

``invoke release`` takes the newest config version; ``invoke rollback`` the
one its ledger entry names, made the newest first (``restore``: a copy), so
the next release keeps what the rollback restored. Before either changes anything, ``check`` makes
sure SSM still holds every parameter version that config version names (SSM
keeps a parameter's last 100), so instances never boot into a config that
cannot load. ``user_data`` is what the release's launch template version
carries: the config version and each key's parameter name and version,
never a value.
"""

from __future__ import annotations

from typing import Any

from toolkit.config import Config
from toolkit.configvars import store
from toolkit.configvars.versions import references
from toolkit.configvars.versions import restore as restored_copy
from toolkit.errors import ReleaseError

RACE_RETRIES = 5  # copies lost to concurrent config changes before giving up


def newest(config: Config, aws: Any) -> int:
    """The newest config version's number (0: none yet), checked as ``check`` does."""
    version = store.newest(config, aws)
    store.require(config, aws, version)
    return version.number


def check(config: Config, aws: Any, number: int) -> None:
    """ReleaseError when config version ``number`` is not recorded or names a parameter version SSM lost."""
    store.require(config, aws, store.get(config, aws, number))


def user_data(config: Config, aws: Any, number: int) -> dict:
    """``{"config_version": N, "config_parameters": ["/rodeo/<app>/<env>/<KEY>:<version>", ...]}`` for the release's user data."""
    return {
        "config_version": number,
        "config_parameters": references(store.get(config, aws, number), config.app, config.env),
    }


def restore(config: Config, aws: Any, number: int, by: str, at: str, write: bool = True) -> int:
    """Make config version ``number``'s keys the newest config and return the version holding them.

    ``number`` itself when it is the newest; the newest when it holds the same
    keys and parameter versions (a copy an earlier, killed run made: a rerun
    makes no second one); else a new version copied from it (a conditional
    write, retried on top of a change that took its number first). Without
    ``write`` (``--plan``), the number such a copy would get; nothing is written.
    """
    old = store.get(config, aws, number)
    store.require(config, aws, old)
    for _ in range(RACE_RETRIES):
        newest = store.newest(config, aws)
        made = restored_copy(newest, old, by, at)
        if made is None:
            return newest.number
        if not write:
            return made.number
        if store.record(config, aws, made):
            return made.number
    raise ReleaseError(
        f"config version {newest.number + 1} was taken by other changes {RACE_RETRIES} times in a row",
        "run the rollback again",
    )
