"""Get the AMI of a ``PromotePlan`` into the target account and region: share, copy, wait (each safe to repeat).

- ``share``: in the source account, ModifyImageAttribute adds a launch
  permission for the target account, and ModifySnapshotAttribute a
  ``createVolumePermission`` on each snapshot (CopyImage of another account's
  AMI needs both). Adding a permission that exists is success.
- ``copy``: in the target account and region, CopyImage with the plan's
  tags as ``TagSpecifications`` (on the copy and its snapshots, in the same
  call: a copy never exists untagged, so a rerun finds it by
  ``rodeo:copied-from`` and makes no second one). Encrypted snapshots are
  copied encrypted with the target region's default EBS key.
- ``wait``: botocore's ``image_exists`` then ``image_available`` waiters (a
  copy is ``pending`` for minutes on AWS); a ``failed`` copy is an error with
  EC2's reason.
"""

from __future__ import annotations

from typing import Any

import botocore.exceptions

from toolkit.errors import PromoteError
from toolkit.promote.plan import PromotePlan

WAIT_DELAY = 2  # seconds between looks at a pending copy: it is seen ready at most 2 s late (as Packer's waits, render)
WAIT_SECONDS = 3600  # at most this long: a large AMI across regions can take most of an hour


def share(source_aws: Any, plan: PromotePlan) -> None:
    """Grant ``plan.share_with`` launch permission on the source AMI and createVolumePermission on its snapshots."""
    assert plan.share_with
    ec2 = source_aws.client("ec2")
    ec2.modify_image_attribute(ImageId=plan.origin.ami, LaunchPermission={"Add": [{"UserId": plan.share_with}]})
    for snapshot in plan.snapshots:
        ec2.modify_snapshot_attribute(
            SnapshotId=snapshot, Attribute="createVolumePermission", OperationType="add", UserIds=[plan.share_with]
        )


def copy(target_aws: Any, plan: PromotePlan) -> str:
    """CopyImage of the source AMI into the target region (the target account), tagged at once; the copy's id."""
    tags = [{"Key": k, "Value": v} for k, v in sorted(plan.tags.items())]
    args: dict[str, Any] = {
        "SourceImageId": plan.origin.ami,
        "SourceRegion": plan.origin.region,
        "Name": plan.name,
        "Description": plan.description,
        "TagSpecifications": [{"ResourceType": "image", "Tags": tags}, {"ResourceType": "snapshot", "Tags": tags}],
    }
    if plan.encrypted:
        args["Encrypted"] = True  # an encrypted snapshot's copy must be encrypted: the target region's default key
    return target_aws.client("ec2").copy_image(**args)["ImageId"]


def wait(target_aws: Any, ami: str, delay: float = WAIT_DELAY, timeout: float = WAIT_SECONDS) -> None:
    """Until ``ami`` is available; PromoteError when its copy failed or did not end within ``timeout``."""
    ec2 = target_aws.client("ec2")
    attempts = max(1, int(timeout // max(delay, 1)))
    try:
        ec2.get_waiter("image_exists").wait(ImageIds=[ami], WaiterConfig={"Delay": delay, "MaxAttempts": attempts})
        ec2.get_waiter("image_available").wait(ImageIds=[ami], WaiterConfig={"Delay": delay, "MaxAttempts": attempts})
    except botocore.exceptions.WaiterError as exc:
        images = (exc.last_response or {}).get("Images") or [{}]
        state, why = images[0].get("State", "?"), images[0].get("StateReason", {}).get("Message", "")
        raise PromoteError(
            f"the copy {ami} is {state}, not available" + (f": {why}" if why else ""),
            "a pending copy: run 'invoke promote' again, it waits for it; a failed one: "
            f"'aws ec2 deregister-image --image-id {ami}', then 'invoke promote' again copies it again",
            reason="copy_failed",
        ) from None
