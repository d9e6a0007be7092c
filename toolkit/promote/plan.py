"""What ``invoke promote`` must do, from gathered facts (pure: no AWS).

``plan(facts)`` picks the source environment's live release (from its slots
and ledger), refuses what must not be promoted, and says how the AMI reaches
the target environment:

- ``use``: the same account and region: the AMI itself;
- ``reuse``: an earlier promotion's copy, or the bake's own copy in that
  region (Packer's ``copy_to_regions``: the same build), is already there;
- ``copy``: the same account, another region: CopyImage in the target region;
- ``share_copy``: another account: the source account grants the target's a
  launch permission on the AMI and ``createVolumePermission`` on its
  snapshots, then the target account copies it into its own region. The copy
  is the target's own (a source account's prune cannot pull it from under
  the target's slots), and carries the lineage tags, which a shared AMI's
  tags never show to the other account.

CopyImage copies no tags: the copy gets the source's ``rodeo:*`` tags (so
the target's release finds it verified, of its app and image) and
``rodeo:copied-from`` (``account/region/ami``), by which a rerun finds it.

Refusals (``PromoteError.reason``): ``same_env``, ``nothing_released``,
``in_progress``, ``gone``, ``unverified``, ``rolled_back``, ``other_app``,
``encrypted``. See ``source_release`` and ``rolled_back`` for the ledger's part.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from toolkit.errors import ImageError, PromoteError
from toolkit.lineage import lineage, require_owner
from toolkit.release.history import SERVED, origin_words

COPIED_FROM = "rodeo:copied-from"  # account/region/ami of the AMI a promotion copied
ACTIONS = ("use", "reuse", "copy", "share_copy")
# AMI names allow these characters only (CopyImage refuses others), at most 128 of them.
NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789()[] ./-'@_")


@dataclass(frozen=True)
class Snapshot:
    """One snapshot of the source AMI, as DescribeSnapshots gives it."""

    id: str
    encrypted: bool = False
    kms_key: str | None = None


@dataclass(frozen=True)
class SourceFacts:
    """The source environment: where it is, what serves there, its ledger and the live AMI."""

    env: str
    region: str
    account: str | None
    load_balancer: str
    live_ami: str | None = None
    live_config: int = 0
    split: bool = False  # traffic on both slots: a release is between steps
    entries: tuple[dict, ...] = ()  # the ledger, newest first
    image: dict | None = None  # the live AMI (DescribeImages, with "tags" as a dict); None when it is gone
    snapshots: tuple[Snapshot, ...] = ()


@dataclass(frozen=True)
class TargetFacts:
    """The target environment: where it is, what it releases, and a copy of the source AMI already there."""

    env: str
    region: str
    account: str | None
    app: str
    image: str  # release.image
    load_balancer: str
    existing: dict | None = None  # {"ImageId", "State", "why"}: an earlier copy, or the bake's copy in that region


@dataclass(frozen=True)
class Facts:
    """Both environments of a promotion, as ``toolkit.promote.facts.gather`` read them."""

    source: SourceFacts
    target: TargetFacts


@dataclass(frozen=True)
class Origin:
    """Where a promoted release came from: what the target's ledger entry records as ``promoted_from``."""

    env: str
    region: str
    account: str | None
    ami: str
    number: int | None
    config_version: int

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def key(self) -> str:
        """The value of a copy's ``rodeo:copied-from`` tag: ``account/region/ami``."""
        return f"{self.account or '-'}/{self.region}/{self.ami}"


@dataclass(frozen=True)
class PromotePlan:
    """How the source's live AMI reaches the target environment, then is released there with the target's config."""

    origin: Origin
    target_env: str
    target_region: str
    target_account: str | None
    action: str  # one of ACTIONS
    target_ami: str | None  # None until a new copy is made
    share_with: str | None = None  # the account granted launch and createVolume permissions
    snapshots: tuple[str, ...] = ()
    encrypted: bool = False
    name: str = ""
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)  # the copy's: the source's lineage and rodeo:copied-from
    app_version: str | None = None
    pending: bool = False  # the AMI to release is not available yet: wait for it
    found: str = ""  # with action reuse: what the copy is (an earlier promotion's, the bake's)

    def to_dict(self) -> dict:
        return dict(dataclasses.asdict(self), origin=self.origin.to_dict())

    def lines(self) -> list[str]:
        """The plan as ``--plan`` prints it."""
        o, where = (
            self.origin,
            f"{self.target_region}"
            + (f" of account {self.target_account}" if self.target_account != self.origin.account else ""),
        )
        out = [f"promote {o.ami} from {origin_words(o.to_dict())} to {self.target_env}:"]
        if self.action == "use":
            out.append(f"  the same account and region: {self.target_env} releases {o.ami} itself")
        elif self.action == "reuse":
            out.append(f"  {self.target_ami} in {where} is a copy of it already ({self.found}): no copy")
        else:
            if self.action == "share_copy":
                out.append(
                    f"  share it with account {self.share_with}: launch permission on {o.ami}, "
                    f"createVolumePermission on {', '.join(self.snapshots) or 'its snapshots'}"
                )
            out.append(
                f"  copy it to {where} (CopyImage{', encrypted' if self.encrypted else ''}), "
                f"tagged with its {len(self.tags) - 1} lineage tags and {COPIED_FROM}={o.key}"
            )
        if self.pending or self.action in ("copy", "share_copy"):
            out.append("  wait until the AMI is available (a copy takes minutes on AWS)")
        out.append(
            f"  then release it in {self.target_env} with {self.target_env}'s newest config version, "
            "through its canary steps and gates (invoke release)"
        )
        return out


def check_envs(source: str, target: str) -> None:
    """PromoteError when the target is the source (before anything connects)."""
    if source == target:
        raise PromoteError(
            f"--from and --to are both {source!r}: a promotion goes from one environment to another",
            "to release the live AMI again with the newest config: invoke release --config-only",
            reason="same_env",
        )


def plan(facts: Facts) -> PromotePlan:
    """The promotion of the source's live AMI to the target; PromoteError (or ImageError) for what is refused."""
    src, dst = facts.source, facts.target
    check_envs(src.env, dst.env)
    if (src.account, src.region, src.load_balancer) == (dst.account, dst.region, dst.load_balancer):
        raise PromoteError(
            f"{src.env} and {dst.env} name the same load balancer {src.load_balancer!r} in {src.region}: one environment",
            "give each environment its own release.load_balancer and slots in its rodeo.yml",
            reason="same_env",
        )
    entry = source_release(src)
    ami = src.live_ami
    assert ami is not None  # source_release refuses otherwise
    if src.image is None:
        raise PromoteError(
            f"{ami}, live in {src.env}, no longer exists in {src.region}",
            f"release a verified AMI in {src.env} first ('invoke release --env {src.env}'), then promote it",
            reason="gone",
        )
    tags = src.image.get("tags", {})
    if tags.get("rodeo:verified") != "true":
        raise PromoteError(
            f"{ami}, live in {src.env}, is not verified (rodeo:verified={tags.get('rodeo:verified', 'absent')})",
            f"verify it ('invoke verify --ami {ami} --env {src.env}'), or release a verified AMI in {src.env} first",
            reason="unverified",
        )
    undone = rolled_back(src.entries, ami)
    if undone is not None:
        raise PromoteError(
            f"{ami} was rolled back in {src.env}: {_run_words(undone, ami)}",
            f"promote what {src.env} released after fixing it; 'invoke releases --env {src.env}' shows its runs",
            reason="rolled_back",
        )
    try:
        require_owner(src.image, dst.app, dst.image)
    except ImageError as exc:
        raise PromoteError(
            f"{dst.env} cannot release it: {exc.message}",
            f"promote between environments of the same app and release.image ({dst.app}, {dst.image})",
            reason="other_app",
        ) from None
    origin = Origin(src.env, src.region, src.account, ami, entry.get("number"), src.live_config)
    same_account = src.account == dst.account and (src.image.get("OwnerId") in (None, dst.account))
    encrypted = any(s.encrypted for s in src.snapshots)
    base = PromotePlan(
        origin=origin,
        target_env=dst.env,
        target_region=dst.region,
        target_account=dst.account,
        action="use",
        target_ami=ami,
        app_version=tags.get("rodeo:app-version"),
    )
    if same_account and src.region == dst.region:
        return base
    if dst.existing is not None:
        return dataclasses.replace(
            base,
            action="reuse",
            target_ami=dst.existing["ImageId"],
            pending=dst.existing.get("State") != "available",
            found=dst.existing.get("why", ""),
        )
    if not same_account and encrypted:
        raise PromoteError(
            f"{ami}'s snapshots are encrypted ({_keys(src.snapshots)}), and Rodeo does not share KMS keys across accounts",
            "an AMI encrypted with the AWS managed key aws/ebs cannot be shared at all; with a customer managed key, "
            f"give account {dst.account} kms:DescribeKey, kms:CreateGrant, kms:Decrypt and kms:ReEncrypt* on it "
            "(its key policy), share the AMI by hand, or bake unencrypted images (encrypt_boot: false) for promotion",
            reason="encrypted",
        )
    return dataclasses.replace(
        base,
        action="copy" if same_account else "share_copy",
        target_ami=None,
        share_with=None if same_account else dst.account,
        snapshots=() if same_account else tuple(s.id for s in src.snapshots),
        encrypted=encrypted,
        name=copy_name(src.image.get("Name") or ami, ami),
        description=f"{ami} of {src.env} ({src.region}), promoted to {dst.env} by Rodeo"[:255],
        tags={**lineage(tags), COPIED_FROM: origin.key},
    )


def source_release(src: SourceFacts) -> dict:
    """The ledger entry of the release that serves in the source (its live AMI and config version).

    PromoteError when nothing serves, when a release is between steps, or
    when no release recorded the live AMI (the local stack's placeholder,
    an AMI someone put in the slots by hand).
    """
    if src.live_ami is None:
        raise PromoteError(
            f"nothing is released in {src.env}, so there is nothing to promote",
            f"release there first: invoke deploy --env {src.env}",
            reason="nothing_released",
        )
    if src.split:
        raise PromoteError(
            f"a release is under way in {src.env} (traffic on both slots), so what serves there is not settled",
            f"let it end, or end it ('invoke release --env {src.env}' finishes it, 'invoke rollback --env {src.env}' undoes it)",
            reason="in_progress",
        )
    ours = [e for e in src.entries if (e.get("to_ami") or e.get("ami")) == src.live_ami and e.get("outcome") in SERVED]
    exact = [e for e in ours if int(e.get("config_version") or 0) == src.live_config]
    if not (exact or ours):
        raise PromoteError(
            f"{src.live_ami} serves in {src.env}, but no release recorded it: it was never released there",
            f"release there first: invoke deploy --env {src.env}",
            reason="nothing_released",
        )
    return (exact or ours)[0]


def rolled_back(entries: tuple[dict, ...] | list[dict], ami: str) -> dict | None:
    """The run that undid ``ami``, when its newest settled run did: a release of it that a gate rolled back, or a
    rollback away from it. None when its newest run served it (a rollback *to* it too: that is the known-good one).

    Runs a crash left unfinished say nothing either way and are skipped.
    """
    for entry in entries:  # newest first
        to = entry.get("to_ami") or entry.get("ami")
        away = entry.get("kind") == "rollback" and entry.get("from_ami") == ami and to != ami
        if to != ami and not away:
            continue
        if entry.get("outcome") in ("in_progress", "interrupted"):
            continue
        if away or entry.get("outcome") == "rolled_back":
            return entry
        if entry.get("outcome") in SERVED:
            return None
    return None


def copy_name(name: str, ami: str) -> str:
    """The copy's AMI name: the source's and its id (a name is unique per account and region, and the bake's own copy
    there, Packer's ``copy_to_regions``, has the source's name), in the characters CopyImage takes."""
    suffix = f" from {ami}"
    return "".join(c if c in NAME_CHARS else "-" for c in name)[: 128 - len(suffix)] + suffix


def _run_words(entry: dict, ami: str) -> str:
    """ "its release v7 failed a gate and was rolled back (why)", "v8 rolled back from it to ami-1"."""
    number = f"v{entry['number']} " if entry.get("number") else ""
    why = f" ({entry['reason']})" if entry.get("reason") else ""
    if entry.get("kind") != "rollback":
        return f"its release {number}failed a gate and was rolled back{why}"
    if (entry.get("to_ami") or entry.get("ami")) == ami:
        return f"a rollback {number}to it failed a gate and was undone{why}"
    undone = "" if entry.get("outcome") in SERVED else " (a gate undid that rollback, so it serves still)"
    return f"{number}rolled back from it to {entry.get('to_ami') or entry.get('ami')}{undone}"


def _keys(snapshots: tuple[Snapshot, ...]) -> str:
    keys = sorted({s.kms_key or "the default key" for s in snapshots if s.encrypted})
    return ", ".join(keys)
