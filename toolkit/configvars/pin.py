"""What a release pins of the config: a config version, checked, and the user data that names it.

``invoke release`` takes the newest config version; ``invoke rollback`` the
one its ledger entry names. Before either changes anything, ``check`` makes
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
from toolkit.configvars.plan import references


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
    return {"config_version": number, "config_parameters": references(store.get(config, aws, number), config.app, config.env)}
