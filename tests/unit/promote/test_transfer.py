"""``toolkit.promote.transfer`` against botocore's Stubber: the exact EC2 calls of a share, a copy and a wait.

The local stack has one account, so the cross-account path (launch permission,
createVolumePermission, then CopyImage of the shared AMI by the target
account) is held here to the calls' documented shapes (botocore validates
each request against EC2's model).
"""

from __future__ import annotations

import botocore.session
import pytest
from botocore.stub import ANY, Stubber

from tests.unit.promote.test_plan import PROD, STAGING, B, source, target
from toolkit.errors import PromoteError
from toolkit.promote import transfer
from toolkit.promote.plan import Facts, Snapshot, plan

C = "ami-cccccccc"


class _Ec2:
    """``aws.client("ec2")`` of one account and region, answered by a Stubber (no network)."""

    def __init__(self, region):
        self.ec2 = botocore.session.get_session().create_client(
            "ec2", region_name=region, aws_access_key_id="x", aws_secret_access_key="x"
        )
        self.stub = Stubber(self.ec2)
        self.region = region

    def client(self, service, region=None):
        assert service == "ec2" and region in (None, self.region)
        return self.ec2


def _plan(snapshots=(Snapshot("snap-1"), Snapshot("snap-2")), **changes):
    return plan(Facts(source(snapshots=snapshots), target(**changes)))


def test_another_account_is_granted_launch_and_create_volume_permission_then_copies_it():
    p = _plan(account=PROD, region="eu-central-1")
    source, target = _Ec2("eu-west-1"), _Ec2("eu-central-1")
    source.stub.add_response(
        "modify_image_attribute", {}, {"ImageId": B, "LaunchPermission": {"Add": [{"UserId": PROD}]}}
    )
    for snap in ("snap-1", "snap-2"):
        source.stub.add_response(
            "modify_snapshot_attribute",
            {},
            {"SnapshotId": snap, "Attribute": "createVolumePermission", "OperationType": "add", "UserIds": [PROD]},
        )
    tags = [{"Key": k, "Value": v} for k, v in sorted(p.tags.items())]
    target.stub.add_response(
        "copy_image",
        {"ImageId": C},
        {
            "SourceImageId": B,
            "SourceRegion": "eu-west-1",
            "Name": f"web-app-20261201 from {B}",
            "Description": f"{B} of staging (eu-west-1), promoted to production by Rodeo",
            "TagSpecifications": [{"ResourceType": "image", "Tags": tags}, {"ResourceType": "snapshot", "Tags": tags}],
        },
    )
    with source.stub, target.stub:
        transfer.share(source, p)
        assert transfer.copy(target, p) == C
    assert dict((t["Key"], t["Value"]) for t in tags)["rodeo:copied-from"] == f"{STAGING}/eu-west-1/{B}"


def test_an_encrypted_ami_is_copied_encrypted_to_another_region():
    p = _plan(snapshots=(Snapshot("snap-1", True, "alias/aws/ebs"),), region="us-east-1")
    target = _Ec2("us-east-1")
    asked = {"SourceImageId": B, "SourceRegion": "eu-west-1", "Name": ANY, "Description": ANY, "TagSpecifications": ANY}
    target.stub.add_response("copy_image", {"ImageId": C}, {**asked, "Encrypted": True})
    with target.stub:
        assert transfer.copy(target, p) == C


def test_waiting_ends_at_available_and_a_failed_copy_says_why():
    target = _Ec2("us-east-1")
    target.stub.add_response("describe_images", {"Images": [{"ImageId": C, "State": "pending"}]})
    target.stub.add_response("describe_images", {"Images": [{"ImageId": C, "State": "pending"}]})
    target.stub.add_response("describe_images", {"Images": [{"ImageId": C, "State": "available"}]})
    with target.stub:
        transfer.wait(target, C, delay=0, timeout=5)
    failed = {"ImageId": C, "State": "failed", "StateReason": {"Code": "x", "Message": "snapshot copy failed"}}
    target.stub.add_response("describe_images", {"Images": [failed]})
    target.stub.add_response("describe_images", {"Images": [failed]})
    with target.stub, pytest.raises(PromoteError, match=f"the copy {C} is failed, not available: snapshot copy failed"):
        transfer.wait(target, C, delay=0, timeout=5)
