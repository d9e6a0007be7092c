"""Gather what ``invoke promote`` decides from (read calls only); the deciding is ``toolkit.promote.plan``.

The source environment: its account (STS), what its slots serve, its ledger,
the live AMI with its tags and its snapshots' encryption. The target
environment: its account, and a copy of that AMI it may already hold: one an
earlier promotion made (``rodeo:copied-from``), or the bake's own copy in its
region (Packer's ``copy_to_regions``: the same ``rodeo:inputs-hash`` and
``rodeo:built-at``), pending or available.
"""

from __future__ import annotations

from typing import Any

import botocore.exceptions

from toolkit.config import Config
from toolkit.lineage import find_ami, tags_of
from toolkit.promote.plan import COPIED_FROM, Facts, Origin, Snapshot, SourceFacts, TargetFacts
from toolkit.release import ledger, slots

# The tags one build's AMIs share in every region (Packer copies them): the same build, the same content.
BUILD_TAGS = ("rodeo:app", "rodeo:image", "rodeo:inputs-hash", "rodeo:built-at")
USABLE = ("pending", "available")  # a copy in either state is one: wait for a pending one, never copy again


def gather(source: Config, source_aws: Any, target: Config, target_aws: Any) -> Facts:
    """The facts of promoting ``source``'s live AMI to ``target``."""
    src = source_facts(source, source_aws)
    return Facts(src, target_facts(target, target_aws, src))


def source_facts(config: Config, aws: Any) -> SourceFacts:
    """What serves in ``config``'s environment, its ledger, and the live AMI as its account sees it."""
    state = slots.read(slots.resolve(config, aws), aws)
    live = state.active if state.active.weight > 0 else None
    image = find_ami(aws, live.ami) if live and live.ami else None
    return SourceFacts(
        env=config.env,
        region=config.region,
        account=account(aws),
        load_balancer=slots.release_of(config).load_balancer,
        live_ami=live.ami if live else None,
        live_config=live.config if live else 0,
        split=state.split,
        entries=tuple(ledger.every(config, aws)),
        image=image,
        snapshots=snapshots(aws, image) if image else (),
    )


def target_facts(config: Config, aws: Any, src: SourceFacts) -> TargetFacts:
    """``config``'s environment as a promotion's target; ``existing`` is looked for only when the AMI must travel."""
    rel = slots.release_of(config)
    here = account(aws)
    existing = None
    if src.image is not None and (here, config.region) != (src.account, src.region):
        key = Origin(src.env, src.region, src.account, src.image["ImageId"], None, 0).key
        existing = existing_copy(aws, key, src.image.get("tags", {}))
    return TargetFacts(
        env=config.env,
        region=config.region,
        account=here,
        app=config.app,
        image=rel.image,
        load_balancer=rel.load_balancer,
        existing=existing,
    )


def account(aws: Any) -> str | None:
    """The account the environment's clients sign in (STS GetCallerIdentity needs no right), or None."""
    try:
        return aws.client("sts").get_caller_identity()["Account"]
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError, KeyError):
        return None


def snapshots(aws: Any, image: dict) -> tuple[Snapshot, ...]:
    """The image's EBS snapshots with their encryption."""
    ids = [m["Ebs"]["SnapshotId"] for m in image.get("BlockDeviceMappings", []) if m.get("Ebs", {}).get("SnapshotId")]
    if not ids:
        return ()
    found = aws.client("ec2").describe_snapshots(SnapshotIds=ids)["Snapshots"]
    return tuple(Snapshot(s["SnapshotId"], bool(s.get("Encrypted")), s.get("KmsKeyId")) for s in found)


def existing_copy(aws: Any, key: str, tags: dict[str, str]) -> dict | None:
    """A copy of the AMI ``key`` names in ``aws``'s account and region: ``{"ImageId", "State", "why"}``, or None.

    An earlier promotion's copy first, else the bake's copy of the same build
    (verified; Packer gives the copies the source's tags).
    """
    ec2 = aws.client("ec2")
    found = ec2.describe_images(Owners=["self"], Filters=[{"Name": f"tag:{COPIED_FROM}", "Values": [key]}])["Images"]
    why = "an earlier promotion's copy"
    build = {k: tags.get(k) for k in BUILD_TAGS}
    if not [i for i in found if i.get("State") in USABLE] and all(build.values()):
        filters = [{"Name": f"tag:{k}", "Values": [v]} for k, v in {**build, "rodeo:verified": "true"}.items()]
        found = ec2.describe_images(Owners=["self"], Filters=filters)["Images"]
        why = "the bake's copy in this region (the same build)"
    usable = sorted((i for i in found if i.get("State") in USABLE), key=lambda i: i.get("CreationDate", ""))
    if not usable:
        return None
    newest = usable[-1]
    return {"ImageId": newest["ImageId"], "State": newest["State"], "why": why, "tags": tags_of(newest)}
