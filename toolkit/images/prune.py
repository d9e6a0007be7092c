"""Prune old AMIs of an image: a pure plan, then deregister and delete snapshots.

``plan_prune`` decides from a list of AMIs (every configured region) and the
AMIs in use which go and why each of the others stays. AMIs of one bake share
``rodeo:inputs-hash`` and ``rodeo:built-at`` in every region (Packer copies the
tags), so they are one *build*: a build stays or goes as a whole, and a copy is
protected whenever its twin in another region is.

``in_use`` reads what must never go: any version of the launch template
``rodeo-<app>``, the AMI each slot group and each review app's group is pinned
to, the last releases in the ledger, and the parent (``rodeo:source-ami``) of
every AMI of the app.
``prune`` lists every region before it deletes anything, so a region that is
not enabled stops the run with nothing half-deleted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import botocore.exceptions

from toolkit.aws import SETTLE_SECONDS, error_code, once_settled
from toolkit.config import Config
from toolkit.errors import AwsError, ConfigError, TableMissing
from toolkit.lineage import tags_of
from toolkit.release import ledger, slots
from toolkit.ui import Reporter, Silent

LEDGER_DEPTH = 10
# Codes AWS answers with for a region the account has not enabled (or cannot use).
REGION_REFUSED = ("OptInRequired", "UnauthorizedOperation", "AuthFailure", "InvalidClientTokenId")
GONE = ("InvalidAMIID.NotFound", "InvalidAMIID.Unavailable", "InvalidSnapshot.NotFound")
# How long a snapshot of an AMI just deregistered may stay "in use" (EC2 is eventually consistent) before it is left behind.
SNAPSHOT_SETTLE_SECONDS = SETTLE_SECONDS


@dataclass(frozen=True)
class Entry:
    """One AMI in one region, and (when it stays) why."""

    ami: str
    region: str
    built_at: str
    created: str
    snapshots: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class PrunePlan:
    """What a prune deletes and what it keeps; newest first in both lists."""

    keep_newest: int
    delete: tuple[Entry, ...]
    keep: tuple[Entry, ...]

    def as_dict(self) -> dict:
        """Plain JSON-ready values: ``{"keep_newest", "delete": [...], "keep": [...]}``."""
        return {
            "keep_newest": self.keep_newest,
            "delete": [_plain(e) for e in self.delete],
            "keep": [_plain(e) for e in self.keep],
        }


@dataclass(frozen=True)
class PruneResult:
    """What ``invoke prune`` deleted (or, planned only, would delete) and kept."""

    image: str
    regions: list[str]
    plan: bool  # True: planned only, nothing changed
    planned: PrunePlan
    deleted: list[dict]

    def to_dict(self) -> dict:
        """``{"image", "regions", "plan", "keep_newest", "delete", "keep", "deleted"}``."""
        return {
            "image": self.image,
            "regions": self.regions,
            "plan": self.plan,
            **self.planned.as_dict(),
            "deleted": self.deleted,
        }

    def lines(self) -> list[str]:
        """A readable table: what goes (or went), and why the rest stays."""
        return describe(self.to_dict())


def _plain(entry: Entry) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(entry).items()}


def check_keep(keep: int | str) -> int:
    """``keep`` as a number of at least 1; ConfigError otherwise (keeping none would delete the image)."""
    hint = "give how many of the newest AMIs to keep, at least 1 (e.g. --keep 3)"
    if isinstance(keep, str):
        if not keep.strip().lstrip("-").isdigit():
            raise ConfigError(f"--keep {keep!r} is not a number", hint)
        keep = int(keep)
    if not isinstance(keep, int) or isinstance(keep, bool) or keep < 1:
        raise ConfigError(f"--keep {keep} would keep no AMI of the image", hint)
    return keep


def plan_prune(images: list[dict], keep: int, in_use: dict[str, str]) -> PrunePlan:
    """Keep the newest ``keep`` builds, every build in use, and the parents of kept ones.

    ``images`` are EC2 image dicts (``ImageId``, ``Tags``, ``CreationDate``,
    ``State``, ``BlockDeviceMappings``) with a ``Region`` key added.
    ``in_use`` maps an AMI id to why it is in use. A pending AMI always stays;
    only available builds count towards the newest ``keep``.
    """
    check_keep(keep)
    builds = _builds(images)
    reasons: list[list[tuple[dict | None, str]]] = [[] for _ in builds]
    counted = 0
    for i, build in enumerate(builds):
        if any(img.get("State", "available") == "available" for img in build) and counted < keep:
            counted += 1
            reasons[i].append((None, f"newest {keep}"))
        reasons[i] += [(img, in_use[img["ImageId"]]) for img in build if img["ImageId"] in in_use]
    _protect_parents(builds, reasons)
    delete, kept = [], []
    for build, why in zip(builds, reasons):
        for img in build:
            own = [_reason_for(img, src, text) for src, text in why]
            if img.get("State", "available") == "pending":
                own.append("pending (still being made)")
            (kept if own else delete).append(_entry(img, own))
    return PrunePlan(keep, tuple(delete), tuple(kept))


def _builds(images: list[dict]) -> list[list[dict]]:
    """Group the AMIs of one bake (same inputs-hash and built-at), newest build first."""
    groups: dict[tuple, list[dict]] = {}
    for img in images:
        tags = _tags(img)
        key = (tags.get("rodeo:inputs-hash"), tags.get("rodeo:built-at"))
        groups.setdefault(key if all(key) else ("ami", img["ImageId"]), []).append(img)

    def age(build: list[dict]) -> tuple:
        return (
            _tags(build[0]).get("rodeo:built-at", ""),
            max(i.get("CreationDate", "") for i in build),
            min(i["ImageId"] for i in build),
        )

    return [
        sorted(b, key=lambda i: (i.get("Region", ""), i["ImageId"]))
        for b in sorted(groups.values(), key=age, reverse=True)
    ]


def _protect_parents(builds: list[list[dict]], reasons: list[list]) -> None:
    """Keep the build holding the parent of any kept AMI, until nothing changes."""
    where = {img["ImageId"]: (i, img) for i, build in enumerate(builds) for img in build}
    changed = True
    while changed:
        changed = False
        for i, build in enumerate(builds):
            if not reasons[i]:
                continue
            for img in build:
                found = where.get(_tags(img).get("rodeo:source-ami", ""))
                text = f"parent of {img['ImageId']}"
                if found and not any(t == text for _, t in reasons[found[0]]):
                    changed = changed or not reasons[found[0]]
                    reasons[found[0]].append((found[1], text))


def _reason_for(img: dict, source: dict | None, text: str) -> str:
    if source is None or source["ImageId"] == img["ImageId"]:
        return text
    return f"{text} (as its twin {source['ImageId']} in {source.get('Region', '?')})"


def _entry(img: dict, reasons: list[str]) -> Entry:
    tags = _tags(img)
    snaps = tuple(
        m["Ebs"]["SnapshotId"] for m in img.get("BlockDeviceMappings", []) if m.get("Ebs", {}).get("SnapshotId")
    )
    return Entry(
        img["ImageId"],
        img.get("Region", ""),
        tags.get("rodeo:built-at", ""),
        img.get("CreationDate", ""),
        snaps,
        tuple(dict.fromkeys(reasons)),
    )


def _tags(img: dict) -> dict[str, str]:
    return img["tags"] if isinstance(img.get("tags"), dict) else tags_of(img)


# --- reading AWS -----------------------------------------------------------------------


def regions_of(config: Config) -> list[str]:
    """The environment's region, then every ``copy_to_regions`` one."""
    return list(dict.fromkeys((config.region, *config.copy_to_regions)))


def app_images(config: Config, aws: Any, region: str) -> list[dict]:
    """Every AMI of the app (all images) owned by this account in ``region``, with ``Region`` set."""
    filters = [{"Name": "tag:rodeo:app", "Values": [config.app]}]
    found = _call(region, lambda: aws.client("ec2", region).describe_images(Owners=["self"], Filters=filters)["Images"])
    return [dict(i, Region=region) for i in found]


def in_use(config: Config, aws: Any, images: list[dict] | None = None) -> dict[str, str]:
    """AMI id -> why it must stay: launch template versions, slot groups, ledger, parents.

    ``images`` are the app's AMIs in every region (listed when not given);
    each one's ``rodeo:source-ami`` is in use as its parent.
    """
    found: dict[str, list[str]] = {}

    def add(ami: str | None, reason: str) -> None:
        if ami and reason not in found.setdefault(ami, []):
            found[ami].append(reason)

    for region in regions_of(config):
        for ami, reason in (
            _template_amis(config, aws, region) + _group_amis(config, aws, region) + _review_amis(config, aws, region)
        ):
            add(ami, reason)
    for ami, reason in _ledger_amis(config, aws):
        add(ami, reason)
    if images is None:
        images = [i for r in regions_of(config) for i in app_images(config, aws, r)]
    for img in images:
        tags = _tags(img)
        add(tags.get("rodeo:source-ami"), f"parent of {img['ImageId']} ({tags.get('rodeo:image', '?')})")
    return {ami: "; ".join(reasons) for ami, reasons in found.items()}


def _template_amis(config: Config, aws: Any, region: str) -> list[tuple[str, str]]:
    """(AMI, "in launch template vN") for every version of ``rodeo-<app>``; none if it does not exist."""
    name = slots.template_name(config)
    ec2 = aws.client("ec2", region)
    try:
        versions = _call(
            region,
            lambda: [
                v
                for page in ec2.get_paginator("describe_launch_template_versions").paginate(LaunchTemplateName=name)
                for v in page["LaunchTemplateVersions"]
            ],
        )
    except botocore.exceptions.ClientError as exc:
        if "NotFound" in error_code(exc) or error_code(exc) == "InvalidLaunchTemplateName.MalformedException":
            return []
        raise
    where = "" if region == config.region else f" in {region}"
    return [
        (v["LaunchTemplateData"].get("ImageId"), f"in launch template v{v['VersionNumber']}{where}") for v in versions
    ]


def _group_amis(config: Config, aws: Any, region: str) -> list[tuple[str, str]]:
    """(AMI, "pinned by slot group G") for each slot Auto Scaling group that exists."""
    if config.release is None:
        return []
    names = sorted(config.release.slots.values())
    groups = _call(
        region,
        lambda: aws.client("autoscaling", region).describe_auto_scaling_groups(AutoScalingGroupNames=names)[
            "AutoScalingGroups"
        ],
    )
    out = []
    for group in groups:
        spec = group.get("LaunchTemplate") or group.get("MixedInstancesPolicy", {}).get("LaunchTemplate", {}).get(
            "LaunchTemplateSpecification"
        )
        if spec:
            ami = _version_ami(aws, region, spec)
        elif group.get("LaunchConfigurationName"):
            configs = aws.client("autoscaling", region).describe_launch_configurations(
                LaunchConfigurationNames=[group["LaunchConfigurationName"]]
            )["LaunchConfigurations"]
            ami = configs[0]["ImageId"] if configs else None
        else:
            ami = None
        out.append((ami, f"pinned by slot group {group['AutoScalingGroupName']}"))
    return out


def _review_amis(config: Config, aws: Any, region: str) -> list[tuple[str, str]]:
    """(AMI, "run by review app G") for the group of each review app of the app, in any environment (``toolkit.review``)."""
    pages = (
        aws.client("autoscaling", region)
        .get_paginator("describe_auto_scaling_groups")
        .paginate(Filters=[{"Name": "tag-key", "Values": ["rodeo:review-of"]}])  # toolkit.review.facts.OWNER_TAG
    )
    groups = _call(region, lambda: [g for page in pages for g in page["AutoScalingGroups"]])
    out = []
    for group in groups:
        owner = next((t["Value"] for t in group.get("Tags", []) if t["Key"] == "rodeo:review-of"), "")
        if owner.split("/")[0] == config.app and group.get("LaunchTemplate"):
            out.append(
                (
                    _version_ami(aws, region, group["LaunchTemplate"]),
                    f"run by review app {group['AutoScalingGroupName']}",
                )
            )
    return out


def _version_ami(aws: Any, region: str, spec: dict) -> str | None:
    ref = (
        {"LaunchTemplateId": spec["LaunchTemplateId"]}
        if spec.get("LaunchTemplateId")
        else {"LaunchTemplateName": spec["LaunchTemplateName"]}
    )
    try:
        versions = aws.client("ec2", region).describe_launch_template_versions(
            Versions=[str(spec.get("Version") or "$Default")], **ref
        )["LaunchTemplateVersions"]
    except botocore.exceptions.ClientError as exc:
        if "NotFound" in error_code(exc):
            return None
        raise
    return versions[0]["LaunchTemplateData"].get("ImageId") if versions else None


def _ledger_amis(config: Config, aws: Any) -> list[tuple[str, str]]:
    """(AMI, "in release ledger ...") for the to/from AMI of the last releases; none without a table."""
    try:
        entries = _call(config.region, lambda: ledger.recent(config, aws, LEDGER_DEPTH))
    except TableMissing:  # the table does not exist yet: nothing was released
        return []
    out = []
    for entry in entries:
        when = str(entry.get("started_at", ""))[:19]
        out += [
            (entry.get(k), f"in release ledger ({entry.get('kind', 'release')} {when})")
            for k in ("to_ami", "from_ami", "ami")
        ]
    return out


def _call(region: str, fn: Any) -> Any:
    """Run ``fn``; a region the account cannot use becomes one clear AwsError."""
    try:
        return fn()
    except botocore.exceptions.ClientError as exc:
        code = error_code(exc)
        if code in REGION_REFUSED:
            raise AwsError(
                f"region {region} is not usable with these credentials ({code}); nothing was deleted",
                "enable the region for the account (or remove it from copy_to_regions in rodeo.yml), then run again",
            ) from None
        raise


# --- carrying it out -------------------------------------------------------------------


def prune(
    config: Config, aws: Any, image: str, keep: int, plan_only: bool = False, reporter: Reporter | None = None
) -> PruneResult:
    """Deregister the AMIs of ``image`` beyond the newest ``keep`` in every region, and their snapshots.

    Every region is listed (and so checked reachable) before anything is
    deleted. With ``plan_only`` nothing changes and ``deleted`` is empty.
    """
    reporter = reporter or Silent()
    config.image(image)
    check_keep(keep)
    regions = regions_of(config)
    everything = [img for region in regions for img in app_images(config, aws, region)]
    protected = in_use(config, aws, everything)
    mine = [img for img in everything if _tags(img).get("rodeo:image") == image]
    p = plan_prune(mine, keep, protected)
    result = PruneResult(image=image, regions=regions, plan=plan_only, planned=p, deleted=[])
    if plan_only:
        return result
    for entry in p.delete:
        with reporter.step(
            f"deregistering {entry.ami} in {entry.region} (built {entry.built_at or entry.created})"
        ) as box:
            gone = delete(aws, entry, reporter)
            left = len(entry.snapshots) - len(gone)
            box["result"] = f"deregistered {entry.ami} in {entry.region}, deleted {len(gone)} snapshot(s)" + (
                f", left {left} behind" if left else ""
            )
        result.deleted.append(
            {
                "ami": entry.ami,
                "region": entry.region,
                "snapshots": gone,
                "left_behind": [s for s in entry.snapshots if s not in gone],
            }
        )
    return result


def delete(aws: Any, entry: Entry, reporter: Reporter) -> list[str]:
    """Deregister the AMI, then delete its snapshots; anything already gone is fine.

    A snapshot another AMI uses stays (a warning says which). Right after
    DeregisterImage, AWS may still answer ``InvalidSnapshot.InUse`` for a
    while: that is retried for ``SNAPSHOT_SETTLE_SECONDS``, then the snapshot
    is left behind with a warning saying how to delete it later.
    """
    ec2 = aws.client("ec2", entry.region)
    try:
        ec2.deregister_image(ImageId=entry.ami)
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) not in GONE:
            raise
    deleted = []
    for snap in entry.snapshots:
        try:
            once_settled(lambda: _delete_snapshot(ec2, snap, entry.ami), timeout=SNAPSHOT_SETTLE_SECONDS)
            deleted.append(snap)
        except _UsedElsewhere as used:
            reporter.warn(f"kept snapshot {snap} in {entry.region}: {used.ami} still uses it")
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) == "InvalidSnapshot.InUse":
                reporter.warn(
                    f"left snapshot {snap} behind in {entry.region}: AWS still says it is in use {SNAPSHOT_SETTLE_SECONDS:.0f}s after "
                    f"{entry.ami} was deregistered; delete it later: aws ec2 delete-snapshot --region {entry.region} --snapshot-id {snap}"
                )
            elif error_code(exc) not in GONE:
                raise
    return deleted


class _UsedElsewhere(Exception):
    def __init__(self, ami: str) -> None:
        self.ami = ami


def _delete_snapshot(ec2: Any, snap: str, deregistered: str) -> None:
    """DeleteSnapshot; _UsedElsewhere when AWS names another AMI than ``deregistered`` as its user
    ("The snapshot snap-1 is currently in use by ami-2": no retry will free it)."""
    try:
        ec2.delete_snapshot(SnapshotId=snap)
    except botocore.exceptions.ClientError as exc:
        user = exc.response.get("Error", {}).get("Message", "").rpartition(" by ")[2].strip()
        if error_code(exc) == "InvalidSnapshot.InUse" and user.startswith("ami-") and user != deregistered:
            raise _UsedElsewhere(user) from None
        raise


def describe(result: dict) -> list[str]:
    """The result as a readable table: what goes (or went), and why the rest stays."""
    verb = "would delete" if result["plan"] else "deleted"
    head = f"prune {result['image']}: keep the newest {result['keep_newest']} in {', '.join(result['regions'])}"
    lines = [head + (" (plan only: nothing changed)" if result["plan"] else "")]
    for e in result["delete"]:
        lines.append(
            f"  {verb:12} {e['ami']:21} {e['region']:14} built {e['built_at'] or e['created'] or '?':24} snapshots {', '.join(e['snapshots']) or '-'}"
        )
    for e in result["keep"]:
        lines.append(
            f"  {'keep':12} {e['ami']:21} {e['region']:14} built {e['built_at'] or e['created'] or '?':24} {'; '.join(e['reasons'])}"
        )
    if not result["delete"]:
        lines.append("  nothing to delete")
    return lines
