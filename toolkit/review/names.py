"""A review app's name, and the names of its resources: pure.

The name comes from ``--name`` or from the ref (a branch name: lowercase,
every run of other characters one ``-``, at most ``NAME_MAX`` characters: a
longer one is cut and ends in a hash of the whole ref, so two long branches
never share a name). It must fit everything named after it:

- its host, ``<name>.<review.domain>``: one DNS label (at most 63) in an ALB
  host-header value (at most 128, letters only after the last ``.``);
- its target group, ``rv-<name>-<hash of app and environment>``: ELBv2 allows
  32 characters, letters, digits and single hyphens, none at either end
  (https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_CreateTargetGroup.html);
  target group names are unique per account and region, hence the hash;
- its Auto Scaling group and launch template, ``rodeo-<app>-<env>-review-<name>``
  (255 and 128 characters at most; app and environment are at most 39 each);
- its config overrides, the SSM parameters under ``/rodeo/<app>/<env>/review/<name>/``
  (inside the parent's path, so the instance role of ``invoke iam-policy --for instance`` reads them);
- its listener rule's priority: unique on the listener, from ``PRIORITIES``
  (1 to 50000 is AWS's range; review apps keep to the top so a team's own
  rules, numbered from 1, are tried first), chosen from a hash of the name so
  it rarely moves, the next free one when taken.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from toolkit.config import Config
from toolkit.errors import ConfigError, ReviewError

NAME_MAX = 20
NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){0,19}$")  # no hyphen at either end, none doubled
PRIORITIES = range(40000, 50000)
REF_PREFIXES = ("refs/heads/", "refs/tags/", "refs/remotes/origin/", "origin/")


def name_for(ref: str) -> str:
    """The review app name of ``ref``: ``feature/Login_page`` -> ``feature-login-page``."""
    for prefix in REF_PREFIXES:
        if ref.startswith(prefix):
            ref = ref[len(prefix) :]
            break
    name = re.sub(r"[^a-z0-9]+", "-", ref.lower()).strip("-")
    if not name:
        raise ConfigError(f"--ref {ref!r} gives no review app name", "give one with --name (letters, digits, '-')")
    if len(name) > NAME_MAX:
        digest = hashlib.sha256(ref.encode()).hexdigest()[:6]
        name = f"{name[: NAME_MAX - 7].rstrip('-')}-{digest}"
    return name


def check_name(name: str) -> str:
    """``name`` when it is a valid review app name, else a ConfigError saying what one is."""
    if not NAME_RE.match(name):
        raise ConfigError(
            f"{name!r} is not a review app name",
            f"use 1 to {NAME_MAX} lowercase letters, digits and single '-', not at either end (like pr-42)",
        )
    return name


@dataclass(frozen=True)
class Names:
    """Everything named after one review app of ``app`` in environment ``env``."""

    app: str
    env: str
    name: str
    domain: str

    @property
    def host(self) -> str:
        """The host name it answers on."""
        return f"{self.name}.{self.domain}"

    @property
    def target_group(self) -> str:
        scope = hashlib.sha256(f"{self.app}/{self.env}".encode()).hexdigest()[:6]
        return f"rv-{self.name}-{scope}"

    @property
    def group(self) -> str:
        """Its Auto Scaling group, and its launch template (one name for both)."""
        return f"rodeo-{self.app}-{self.env}-review-{self.name}"

    @property
    def parameter_path(self) -> str:
        """The SSM path of its config overrides."""
        return f"/rodeo/{self.app}/{self.env}/review/{self.name}/"

    @property
    def owner(self) -> str:
        """The ``rodeo:review-of`` tag value of its resources: whose review app it is."""
        return f"{self.app}/{self.env}"

    @property
    def lock(self) -> dict:
        """Its lock in the app's table: one ``up`` or ``down`` of it at a time."""
        return {"pk": {"S": f"{self.env}#review-lock"}, "sk": {"S": self.name}}


def names_of(config: Config, name: str) -> Names:
    """The Names of review app ``name`` of ``config``'s environment (a ConfigError without ``review:``)."""
    return Names(config.app, config.env, check_name(name), review_of(config).domain)


def review_of(config: Config):
    """rodeo.yml's ``review:`` section, or a ConfigError saying how to add it."""
    if config.review is None:
        raise ConfigError(
            f"{config.shown_path}: no 'review:' section, so review apps have no domain",
            "add review: {domain: review.example.com} (a wildcard DNS record *.review.example.com -> the load balancer); "
            "inventories/local/rodeo.yml has one",
        )
    return config.review


def priority_for(name: str, taken: set[int] | frozenset[int]) -> int:
    """The listener rule priority for ``name``: its hash's place in ``PRIORITIES``, or the next free one after it."""
    start = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) % len(PRIORITIES)
    for i in range(len(PRIORITIES)):
        candidate = PRIORITIES[(start + i) % len(PRIORITIES)]
        if candidate not in taken:
            return candidate
    raise ReviewError(
        f"every listener rule priority from {PRIORITIES[0]} to {PRIORITIES[-1]} is taken",
        "remove review apps ('invoke review.prune --idle-days N')",
    )
