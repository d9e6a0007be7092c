"""The IAM policy as a value: its shape, its scoping, and Packer's part held to Packer's documentation (no AWS).

Rodeo's own actions are checked against the calls it really makes in
tests/integration/test_iam_policy.py; Packer's cannot be recorded there (they
happen in Packer's process), so here they must come from Packer's documented
minimal policy and match the options the rendered templates use.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import re
from pathlib import Path

import pytest

from toolkit import config as config_mod
from toolkit import iam
from toolkit.aws import Aws
from toolkit.errors import ConfigError, ReleaseError

ROOT = Path(__file__).resolve().parents[2]

# Packer 1.6.x, "Amazon AMI Builder" > "IAM Task or Instance Role": "the minimal set permissions
# necessary for Packer to work", plus the KMS key permissions from its Troubleshooting section.
# https://developer.hashicorp.com/packer/docs/v1.6.x/builders/amazon#iam-task-or-instance-role
# (source: hashicorp/packer website/pages/docs/builders/amazon/index.mdx)
PACKER_DOCUMENTED = {
    "ec2:AttachVolume",
    "ec2:AuthorizeSecurityGroupIngress",
    "ec2:CopyImage",
    "ec2:CreateImage",
    "ec2:CreateKeypair",
    "ec2:CreateSecurityGroup",
    "ec2:CreateSnapshot",
    "ec2:CreateTags",
    "ec2:CreateVolume",
    "ec2:DeleteKeyPair",
    "ec2:DeleteSecurityGroup",
    "ec2:DeleteSnapshot",
    "ec2:DeleteVolume",
    "ec2:DeregisterImage",
    "ec2:DescribeImageAttribute",
    "ec2:DescribeImages",
    "ec2:DescribeInstances",
    "ec2:DescribeInstanceStatus",
    "ec2:DescribeRegions",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSnapshots",
    "ec2:DescribeSubnets",
    "ec2:DescribeTags",
    "ec2:DescribeVolumes",
    "ec2:DetachVolume",
    "ec2:GetPasswordData",
    "ec2:ModifyImageAttribute",
    "ec2:ModifyInstanceAttribute",
    "ec2:ModifySnapshotAttribute",
    "ec2:RegisterImage",
    "ec2:RunInstances",
    "ec2:StopInstances",
    "ec2:TerminateInstances",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
}

# amazon-ebs options that would need a documented action Rodeo's policy leaves out: none may appear in a template.
NEEDS_MORE = {
    "ami_users": "",
    "ami_groups": "",
    "ami_product_codes": "",  # would share the AMIs (ModifyImageAttribute, granted for the description)
    "snapshot_users": "ec2:ModifySnapshotAttribute",
    "snapshot_groups": "ec2:ModifySnapshotAttribute",
    "ena_support": "ec2:ModifyInstanceAttribute",
    "sriov_support": "ec2:ModifyInstanceAttribute",
    "spot_price": "ec2:CreateFleet",
    "kms_key_id": "kms:CreateGrant",
    "region_kms_key_ids": "kms:CreateGrant",
    "force_deregister": "ec2:DeregisterImage",
    "windows_password_timeout": "ec2:GetPasswordData",
    "iam_instance_profile": "iam:PassRole",
    "temporary_iam_instance_profile_policy_document": "iam:CreateRole",
    "security_group_id": "",
    "security_group_ids": "",  # would make the temporary security group grants unused
}


def load(env: str = "staging", **changes) -> config_mod.Config:
    cfg = config_mod.load(env, ROOT)
    return dataclasses.replace(cfg, **changes) if changes else cfg


def statements(cfg, purposes=iam.PURPOSES) -> dict[str, dict]:
    return {s["Sid"]: s for s in iam.policy(cfg, purposes)["Statement"]}


def listed(value) -> list:
    return value if isinstance(value, list) else [value]


def test_packer_grants_come_from_its_documented_minimal_policy():
    documented = {a.lower() for a in PACKER_DOCUMENTED}
    for cfg in (load(), load(copy_to_regions=("us-west-2",), encrypt_boot=True), load(encrypt_boot=False)):
        packer = iam.actions(cfg, ("bake",), packer=True)
        assert packer and {a.lower() for a in packer} <= documented, sorted(
            a for a in packer if a.lower() not in documented
        )
        assert (
            "ec2:CreateKeyPair" not in packer and "ec2:DeleteKeyPair" not in packer
        )  # the template brings its key pair


@pytest.mark.parametrize("template", sorted((ROOT / "packer").glob("*.pkr.hcl")), ids=lambda p: p.name)
def test_templates_use_only_options_the_policy_covers(template):
    text = template.read_text()
    used = set(re.findall(r"^\s*([a-z_]+)\s*=", text, re.MULTILINE))
    assert not used & set(NEEDS_MORE), (
        f"{template.name} uses {sorted(used & set(NEEDS_MORE))}: grant what they need in toolkit/aws/iam.py"
    )
    assert {
        "ssh_keypair_name",
        "ami_regions",
        "encrypt_boot",
        "run_tags",
        "tags",
        "snapshot_tags",
        "ami_description",
    } <= used
    assert "temporary_security_group_source_cidrs" in used  # Packer makes (and deletes) the security group


@pytest.mark.parametrize(
    "changes, present, absent",
    [
        (
            {"encrypt_boot": True, "copy_to_regions": ()},
            {"ec2:CopyImage", "ec2:DeregisterImage", "kms:ReEncrypt*"},
            set(),
        ),
        (
            {"encrypt_boot": False, "copy_to_regions": ("us-west-2",)},
            {"ec2:CopyImage"},
            {"ec2:DeregisterImage", "ec2:DeleteSnapshot", "kms:ReEncrypt*"},
        ),
        (
            {"encrypt_boot": False, "copy_to_regions": ()},
            set(),
            {"ec2:CopyImage", "ec2:DeregisterImage", "kms:GenerateDataKey*"},
        ),
    ],
)
def test_packer_part_follows_the_template_options(changes, present, absent):
    packer = iam.actions(load(**changes), ("bake",), packer=True)
    assert present <= packer and not absent & packer


def test_document_shape():
    cfg = load()
    doc = iam.policy(cfg)
    assert doc["Version"] == "2012-10-17"
    sids = [s["Sid"] for s in doc["Statement"]]
    assert len(sids) == len(set(sids)) and all(re.fullmatch(r"[A-Za-z0-9]+", s) for s in sids)
    for s in doc["Statement"]:
        assert {"Sid", "Effect", "Action", "Resource"} <= set(s) <= {"Sid", "Effect", "Action", "Resource", "Condition"}
        assert s["Effect"] == "Allow" and all(re.fullmatch(r"[a-z0-9]+:[A-Za-z*]+", a) for a in s["Action"])
        in_region = all(r.startswith("arn:aws:") and r.split(":")[3] == "eu-west-1" for r in listed(s["Resource"]))
        # Scoped to the region by its ARNs, else by the condition (global services' statements name ARNs without one).
        assert (
            in_region
            or s["Condition"]["StringEquals"]["aws:RequestedRegion"] == ["eu-west-1"]
            or (all(r.split(":")[3] == "" for r in listed(s["Resource"])) and "Condition" not in s)
        ), s
    json.dumps(doc)
    assert len(json.dumps(iam.policy(cfg, ("release",)), separators=(",", ":"))) < 6144  # fits a managed policy


def test_scoped_to_the_apps_names_and_tags():
    cfg = load()  # app web, region eu-west-1, load balancer web-staging, slots web-staging-blue/-green
    by_sid = statements(cfg)
    assert by_sid["ReleaseTable"]["Resource"] == "arn:aws:dynamodb:eu-west-1:*:table/rodeo-web"
    assert by_sid["PruneLedger"]["Resource"] == "arn:aws:dynamodb:eu-west-1:*:table/rodeo-web"
    assert by_sid["ReleaseWeights"]["Resource"] == "arn:aws:elasticloadbalancing:eu-west-1:*:listener/app/web-staging/*"
    assert listed(by_sid["ReleaseSlotGroups"]["Resource"]) == [
        f"arn:aws:autoscaling:eu-west-1:*:autoScalingGroup:*:autoScalingGroupName/web-staging-{slot}"
        for slot in ("blue", "green")
    ]
    assert by_sid["PruneDelete"]["Condition"]["StringEquals"]["ec2:ResourceTag/rodeo:app"] == "web"
    assert by_sid["VerifyVerdict"]["Condition"]["StringEquals"]["ec2:ResourceTag/rodeo:app"] == "web"
    assert by_sid["ReleaseLaunchTemplateVersions"]["Condition"]["StringEquals"]["ec2:ResourceTag/rodeo:app"] == "web"
    assert by_sid["VerifyTemporary"]["Condition"]["Null"] == {"ec2:ResourceTag/rodeo:verify": "false"}
    assert by_sid["BakeKeyPair"]["Resource"] == "arn:aws:ec2:eu-west-1:*:key-pair/rodeo-*"
    assert by_sid["VerifyKeyPair"]["Resource"] == "arn:aws:ec2:eu-west-1:*:key-pair/rodeo-verify-*"
    # Every mutation is scoped by resource or condition beyond the region, except those AWS gives nothing to scope by.
    unscoped = {
        a
        for s in by_sid.values()
        if s["Resource"] == "*"
        and set(s["Condition"]) == {"StringEquals"}
        and set(s["Condition"]["StringEquals"]) == {"aws:RequestedRegion"}
        for a in s["Action"]
    }
    mutations = {a for a in unscoped if not re.match(r"[a-z0-9]+:(Describe|Get|List)", a)}
    assert mutations == {
        "ec2:CreateSecurityGroup",
        "ec2:AuthorizeSecurityGroupIngress",
        "ec2:DeleteSecurityGroup",
        "ec2:RunInstances",
        "ec2:CreateImage",
        "ec2:CreateTags",
        "ec2:CopyImage",
        "ec2:DeregisterImage",
        "ec2:DeleteSnapshot",
    }


def test_regions_include_the_copy_regions():
    cfg = load(copy_to_regions=("us-west-2", "eu-central-1"))
    wanted = ["eu-west-1", "us-west-2", "eu-central-1"]
    for s in iam.policy(cfg)["Statement"]:
        if "Condition" in s and "aws:RequestedRegion" in s["Condition"].get("StringEquals", {}):
            assert s["Condition"]["StringEquals"]["aws:RequestedRegion"] == wanted
        else:  # scoped by its ARNs' regions instead
            assert all(r.split(":")[3] in wanted for r in listed(s["Resource"])), s
    kms = statements(cfg)["PackerEncryptKms"]["Condition"]["StringEquals"]["kms:ViaService"]
    assert kms == ["ec2.eu-west-1.amazonaws.com", "ec2.us-west-2.amazonaws.com", "ec2.eu-central-1.amazonaws.com"]


def test_a_release_in_waves_may_release_in_each_region_and_its_instances_read_config_in_region():
    base = load(copy_to_regions=("us-west-2",))
    cfg = dataclasses.replace(base, release=dataclasses.replace(base.release, regions=("eu-west-1", "us-west-2")))
    release = statements(cfg, ("release",))
    groups = listed(release["ReleaseSlotGroups"]["Resource"])
    assert [r.split(":")[3] for r in groups] == ["eu-west-1", "eu-west-1", "us-west-2", "us-west-2"]
    assert {r.split(":")[3] for r in listed(release["ReleaseWeights"]["Resource"])} == {"eu-west-1", "us-west-2"}
    assert len(release) == len(statements(base, ("release",)))  # one statement per Sid, its resources together
    instance = statements(cfg, (iam.INSTANCE,))
    assert [r.split(":")[3] for r in listed(instance["InstanceConfigVars"]["Resource"])] == ["eu-west-1"]
    assert {r.split(":")[3] for r in listed(instance["InstanceLogs"]["Resource"])} == {"eu-west-1", "us-west-2"}
    decrypt = instance["InstanceConfigDecrypt"]["Condition"]["StringEquals"]["kms:ViaService"]
    assert decrypt == ["ssm.eu-west-1.amazonaws.com"]


def test_optional_reads_follow_the_settings():
    cfg = load()
    assert {"cloudwatch:DescribeAlarms", "elasticloadbalancing:CreateListener"} <= iam.actions(cfg, ("release",))
    bare = dataclasses.replace(cfg, release=dataclasses.replace(cfg.release, alarms=(), smoke_check=None))
    assert not {"cloudwatch:DescribeAlarms", "elasticloadbalancing:CreateListener"} & iam.actions(bare, ("release",))
    assert "ec2:DescribeVpcs" in iam.actions(cfg, ("verify",))
    assert "ec2:DescribeVpcs" not in iam.actions(load(subnet_id="subnet-0abc"), ("verify",))


def test_purposes():
    assert iam.purposes_for("all") == iam.PURPOSES and iam.purposes_for("prune") == ("prune",)
    with pytest.raises(ConfigError) as err:
        iam.purposes_for("deploy")
    assert (
        "bake, verify, release, run, prune, logs, all, doctor (invoke doctor's reads), "
        "promote (release's and invoke promote's), review (bake's and the review apps'), or instance" in err.value.hint
    )
    cfg = load()
    assert all(sid.startswith("Release") for sid in statements(cfg, ("release",)))
    assert {re.match(r"[A-Z][a-z]+", sid).group() for sid in statements(cfg, ("release", "prune"))} == {
        "Release",
        "Prune",
    }


def test_no_release_section():
    cfg = load(release=None)
    sids = statements(cfg)
    assert not any(s.startswith("Release") for s in sids)  # "all" leaves release out
    assert "autoscaling:DescribeAutoScalingGroups" not in iam.actions(cfg, ("prune",))
    with pytest.raises(ReleaseError, match="no 'release:' section"):
        iam.policy(cfg, ("release",))


def test_action_wildcards_only_for_packers_documented_kms_grant():
    assert {a for a in iam.actions(load()) if "*" in a} == {"kms:GenerateDataKey*", "kms:ReEncrypt*"}


def test_task_prints_the_policy_without_calling_aws(monkeypatch, capsys):
    from invoke import MockContext

    import tasks

    def no_aws(*args, **kwargs):
        raise AssertionError("iam-policy must not call AWS")

    monkeypatch.setattr(Aws, "client", no_aws)
    tasks.iam_policy(MockContext(), for_="release", env="staging")
    assert json.loads(capsys.readouterr().out) == iam.policy(load(), ("release",))


def test_notifications_may_publish_to_their_topic_only():
    topic = "arn:aws:sns:eu-west-1:123456789012:deploys"
    cfg = load(notify=config_mod.Notify(sns_topic=topic))
    assert statements(cfg, ("release",))["NotifyTopic"]["Resource"] == topic
    assert statements(cfg, ("bake",))["NotifyTopic"]["Action"] == ["sns:Publish"]
    assert "NotifyTopic" not in statements(cfg, ("prune",)) and "NotifyTopic" not in statements(load(), ("release",))


def test_the_instance_role_reads_its_own_config_vars_and_writes_its_own_log_streams():
    cfg = load()
    got = statements(cfg, iam.purposes_for("instance"))
    assert set(got) == {"InstanceConfigVars", "InstanceConfigDecrypt", "InstanceLogs"}
    assert got["InstanceConfigVars"]["Resource"] == f"arn:aws:ssm:{cfg.region}:*:parameter/rodeo/web/staging/*"
    assert got["InstanceLogs"]["Resource"] == f"arn:aws:logs:{cfg.region}:*:log-group:/rodeo/web/staging:*"
    assert "instance" not in iam.purposes_for("all") and not any(sid.startswith("Instance") for sid in statements(cfg))
    assert "iam:PassRole" in iam.actions(cfg, ("release",))
    assert "iam:PassRole" not in iam.actions(
        load(release=dataclasses.replace(cfg.release, instance_profile=None)), ("release",)
    )


@pytest.mark.parametrize("purpose", ["bake", "verify", "release"])
def test_launches_and_copies_may_use_a_customer_managed_default_ebs_key_through_ec2_only(purpose):
    """Issue 19 item 14: EBS encryption by default with a customer-managed key; AWS's "Permissions for users"
    (https://docs.aws.amazon.com/ebs/latest/userguide/ebs-encryption-requirements.html)."""
    cfg = load(copy_to_regions=("us-west-2",))
    got = statements(cfg, (purpose,))
    prefix = purpose.capitalize()
    use, grant = got[f"{prefix}EbsKey"], got[f"{prefix}EbsKeyGrant"]
    assert use["Action"] == ["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncrypt*"]
    assert grant["Action"] == ["kms:CreateGrant"] and grant["Condition"]["Bool"] == {
        "kms:GrantIsForAWSResource": "true"
    }
    for s in (use, grant):
        assert s["Condition"]["StringEquals"]["kms:ViaService"] == [
            "ec2.eu-west-1.amazonaws.com",
            "ec2.us-west-2.amazonaws.com",
        ]
    # EC2 calls them for the caller: neither Rodeo's own calls nor Packer's.
    assert not {"kms:CreateGrant", "kms:DescribeKey"} & (
        iam.actions(cfg, (purpose,), packer=False) | iam.actions(cfg, (purpose,), packer=True)
    )
    assert not any("EbsKey" in sid for sid in statements(cfg, ("prune", "logs")))


def test_a_release_may_remove_scaling_left_by_an_earlier_config():
    """Issue 19 item 16: without scaling: a release still deletes the schedules and policies an earlier config put on."""
    cfg = load()
    without = load(scaling=None)
    removal = {"autoscaling:BatchDeleteScheduledAction", "autoscaling:DeletePolicy"}
    assert removal <= iam.actions(without, ("release",)) and removal <= iam.actions(cfg, ("release",))
    assert (
        statements(without, ("release",))["ReleaseSlotScalingRemove"]["Resource"]
        == statements(cfg, ("release",))["ReleaseSlotScalingRemove"]["Resource"]
    )
    assert not {"autoscaling:BatchPutScheduledUpdateGroupAction", "autoscaling:PutScalingPolicy"} & iam.actions(
        without, ("release",)
    )


def test_doctor_reads_only_and_asks_iam_from_any_region():
    """``--for doctor``: exactly the actions doctor calls, none of them a write; the simulator (IAM answers from
    us-east-1 whatever the environment's region) without the region condition every other statement has."""
    cfg = config_mod.load("local", ROOT)
    document = iam.policy(cfg, iam.purposes_for("doctor"))
    granted = [a for s in document["Statement"] for a in s["Action"]]
    assert sorted(granted) == sorted(iam.DOCTOR_ACTIONS)
    assert [a for a in granted if not a.split(":")[1].startswith(("Describe", "Get", "SimulatePrincipalPolicy"))] == []
    regional = {
        s["Sid"]: s.get("Condition", {}).get("StringEquals", {}).get("aws:RequestedRegion")
        for s in document["Statement"]
    }
    assert regional == {"DoctorReads": [cfg.region], "DoctorSimulate": None}


def test_one_off_instances_are_launched_tagged_and_only_tagged_ones_terminated():
    cfg = load()
    run = iam.policy(cfg, ("run",))["Statement"]
    by_sid = {s["Sid"]: s for s in run}
    assert {
        "ec2:RunInstances",
        "ec2:TerminateInstances",
        "ec2:DescribeInstances",
        "logs:FilterLogEvents",
        "ssm:GetParameters",
    } <= iam.actions(cfg, ("run",))
    assert by_sid["RunOneOffTerminate"]["Condition"]["Null"] == {"ec2:ResourceTag/rodeo:oneoff": "false"}
    assert by_sid["RunOneOffTerminate"]["Condition"]["StringEquals"]["ec2:ResourceTag/rodeo:app"] == cfg.app
    assert by_sid["RunOneOffTagOnLaunch"]["Condition"]["StringEquals"]["ec2:CreateAction"] == ["RunInstances"]
    assert not any(
        a.startswith(("elasticloadbalancing:Modify", "autoscaling:Update")) for a in iam.actions(cfg, ("run",))
    )
    # The release phase's calls only when there is one.
    assert "ec2:TerminateInstances" not in iam.actions(cfg, ("release",))
    phased = dataclasses.replace(cfg, release=dataclasses.replace(cfg.release, release_command="bin/migrate"))
    assert {"ec2:TerminateInstances", "ec2:DescribeInstances"} <= iam.actions(phased, ("release",))
    # An image baked from a Procfile may carry its release: line (the AMI's tag): its releases may run a phase too.
    app = dataclasses.replace(cfg.image("app"), playbook=config_mod.PROCFILE_PLAYBOOK, tests=config_mod.PROCFILE_TESTS)
    procfile = dataclasses.replace(cfg, images={**cfg.images, "app": app})
    assert {"ec2:TerminateInstances", "ec2:DescribeInstances"} <= iam.actions(procfile, ("release",))


def test_promote_is_the_release_plus_sharing_and_copying_the_apps_images():
    cfg = load()
    assert iam.purposes_for("promote") == ("release", "promote") and "promote" not in iam.purposes_for("all")
    by_sid = statements(cfg, iam.purposes_for("promote"))
    assert set(statements(cfg, ("release",))) < set(by_sid)
    extra = {a for sid, s in by_sid.items() if sid.startswith("Promote") for a in s["Action"]}
    assert {
        "ec2:DescribeSnapshots",
        "ec2:ModifyImageAttribute",
        "ec2:ModifySnapshotAttribute",
        "ec2:CopyImage",
        "ec2:CreateTags",
    } <= extra
    assert by_sid["PromoteShare"]["Condition"]["StringEquals"]["ec2:ResourceTag/rodeo:app"] == cfg.app
    assert by_sid["PromoteTagCopy"]["Condition"]["StringEquals"]["ec2:CreateAction"] == ["CopyImage"]
    with pytest.raises(ReleaseError, match="no 'release:' section"):
        iam.policy(load(release=None), iam.purposes_for("promote"))


def test_review_is_the_bake_plus_each_review_apps_own_resources_by_name_and_tag():
    """``--for review``: what CI's review.up (which bakes), review.down, review.list and review.prune call. The names and
    tags the statements scope by are ``toolkit.review``'s own: a review app of this environment matches, another's not."""
    from toolkit.review import record
    from toolkit.review.facts import OWNER_TAG
    from toolkit.review.names import names_of

    cfg = load()  # staging: review apps under review.staging.example.com, on load balancer web-staging
    assert iam.purposes_for("review") == ("bake", "review") and "review" not in iam.purposes_for("all")
    by_sid = statements(cfg, iam.purposes_for("review"))
    assert set(statements(cfg, ("bake",))) < set(by_sid) and not any(sid.startswith("Release") for sid in by_sid)
    mine, theirs = names_of(cfg, "pr-42"), names_of(dataclasses.replace(cfg, env="production"), "pr-42")

    def arns(names, lb="web-staging"):
        return {
            "ReviewTargetGroup": f"arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/{names.target_group}/7f3e",
            "ReviewRule": f"arn:aws:elasticloadbalancing:eu-west-1:1:listener-rule/app/{lb}/50dc/1e2f/9a8b",
            "ReviewGroups": f"arn:aws:autoscaling:eu-west-1:1:autoScalingGroup:4c1d:autoScalingGroupName/{names.group}",
            "ReviewOverrides": f"arn:aws:ssm:eu-west-1:1:parameter{names.parameter_path}GREETING",
        }

    def allowed(sid, arn):
        return any(fnmatch.fnmatchcase(arn, pattern) for pattern in listed(by_sid[sid]["Resource"]))

    assert all(allowed(sid, arn) for sid, arn in arns(mine).items())
    assert not any(allowed(sid, arn) for sid, arn in arns(theirs, lb="web-production").items())
    # Changed or deleted only when tagged as this environment's review app (the team's own rules on the listener are not).
    for sid in ("ReviewTargetGroup", "ReviewRule"):
        assert by_sid[sid]["Condition"]["StringEquals"][f"aws:ResourceTag/{OWNER_TAG}"] == mine.owner == "web/staging"
    assert by_sid["ReviewLaunchTemplate"]["Condition"]["StringEquals"][f"ec2:ResourceTag/{OWNER_TAG}"] == mine.owner
    for sid in ("ReviewCreateTargetGroup", "ReviewCreateRule", "ReviewCreateLaunchTemplate"):
        assert by_sid[sid]["Condition"]["StringEquals"][f"aws:RequestTag/{OWNER_TAG}"] == mine.owner
    assert by_sid["ReviewTagOnCreate"]["Condition"]["StringEquals"]["elasticloadbalancing:CreateAction"] == [
        "CreateTargetGroup",
        "CreateRule",
    ]
    # The table: the records and the locks (and the parent's config versions, read only), no other item.
    keys = by_sid["ReviewTable"]["Condition"]["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"]
    assert sorted(keys) == sorted([mine.lock["pk"]["S"], record._pk(cfg)["S"]])
    assert by_sid["ReviewParentConfig"]["Action"] == ["dynamodb:Query"]
    # The only write on "*" with nothing but the region: the launch Auto Scaling checks the caller could make.
    unscoped = {
        a
        for sid, s in by_sid.items()
        if sid.startswith("Review")
        and s["Resource"] == "*"
        and set(s["Condition"]) == {"StringEquals"}
        and set(s["Condition"]["StringEquals"]) == {"aws:RequestedRegion"}
        for a in s["Action"]
        if not re.match(r"[a-z0-9]+:Describe", a)
    }
    assert unscoped == {"ec2:RunInstances"}
    assert "ReviewPassInstanceRole" in by_sid  # staging's instances have a profile
    bare = dataclasses.replace(cfg, release=dataclasses.replace(cfg.release, instance_profile=None))
    assert "iam:PassRole" not in iam.actions(bare, ("review",))
    with pytest.raises(ConfigError, match="no 'review:' section"):
        iam.policy(load(review=None), iam.purposes_for("review"))
    with pytest.raises(ReleaseError, match="no 'release:' section"):
        iam.policy(load(release=None), iam.purposes_for("review"))


def test_every_release_reads_the_access_logs_its_picture_draws_and_only_analysis_reads_named_metrics():
    cfg = load()
    off = dataclasses.replace(cfg, release=dataclasses.replace(cfg.release, analysis=config_mod.Analysis()))
    metric = config_mod.JudgedMetric("cpu", "AWS/EC2", "CPUUtilization")
    named = config_mod.Analysis(enabled=True, metrics=("latency", metric))
    on = dataclasses.replace(cfg, release=dataclasses.replace(cfg.release, analysis=named))
    for each in (off, on):
        found = statements(each, ("release",))
        assert listed(found["ReleaseAccessLogsRead"]["Action"]) == ["s3:GetObject"]
        assert listed(found["ReleaseAccessLogsRead"]["Resource"]) == [
            f"arn:aws:s3:::*/AWSLogs/*/elasticloadbalancing/{cfg.region}/*"
        ]
        assert listed(found["ReleaseAccessLogsList"]["Action"]) == ["s3:ListBucket"]
        assert len(json.dumps(iam.policy(each, ("release",)), separators=(",", ":"))) < 6144  # a managed policy
    assert "cloudwatch:GetMetricData" not in iam.actions(off, ("release",))
    assert "cloudwatch:GetMetricData" in iam.actions(on, ("release",))
