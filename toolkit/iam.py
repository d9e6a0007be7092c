"""Least privilege: the IAM policy for exactly what Rodeo calls, as a pure value.

``policy(config, purposes)`` returns an IAM policy document for one or more
purposes, each one a role Rodeo can run as:

- ``bake``: Rodeo's own calls during a bake (source and cache look-ups, the
  bake's key pair) plus what Packer's amazon-ebs builder calls for the
  rendered template (``packer/<image>.pkr.hcl``);
- ``verify``: ``invoke verify --ami`` on AWS (temporary key pair, security
  group and instance; the verdict tags);
- ``release``: release, rollback, scale, releases, status and setup (weights, slot groups,
  launch template, alarms, the lock and ledger table, the load balancer's access logs: every release's
  picture reads them, and ``release.analysis`` judges on them);
- ``run``: ``invoke run`` (the live slot's AMI and config version, the
  one-off instance: launched, followed in its log stream, terminated);
- ``prune``: what prune reads to know what is in use, and the deletions;
- ``logs``: ``invoke logs`` (the environment's log group, and which slot and
  version each instance is);
- ``promote``: ``invoke promote`` in one environment, as its source or its target:
  the release's statements plus sharing the app's AMIs and snapshots with
  another account (the source's side) and copying them in, tagged (the
  target's side); asked for by name (``--for promote``), not part of ``all``;
- ``review``: ``invoke review.up``, ``review.down``, ``review.list`` and
  ``review.prune``: the bake's statements (``review.up`` bakes or reuses) plus
  each review app's target group, listener rule, launch template, Auto Scaling
  group, config overrides and record, by their names and their
  ``rodeo:review-of`` tag; asked for by name (``--for review``), not part of ``all``;
- ``instance``: the role of the release's instances (``release.instance_profile``):
  what their config loader and log shipper call, for this app and environment only.

Every statement is scoped to the environment's regions: by the region its
resources' ARNs name, else with ``aws:RequestedRegion``; statements that AWS lets us scope further name
Rodeo's resources (by ARN, or by the ``rodeo:*`` tags Rodeo and Packer put
on them). ``Describe*``/``Get*`` reads that support no resource-level
permissions stay on ``"*"``. The ARNs assume the ``aws`` partition.

Nothing here calls AWS: ``tests/integration/test_iam.py`` records the
calls the real flows make and checks them against this module.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from typing import Any

from toolkit.config import Config
from toolkit.configvars.versions import parameter_path
from toolkit.errors import ConfigError, ReleaseError
from toolkit.logs import group as log_group
from toolkit.regions import in_region, waves
from toolkit.table import table_name

PURPOSES = ("bake", "verify", "release", "run", "prune", "logs")  # what Rodeo's own runs call: "all"
INSTANCE = "instance"  # another principal (the instances' role): asked for by name only
DOCTOR = "doctor"  # `invoke doctor`'s reads: asked for by name only
PROMOTE = "promote"  # `invoke promote`: asked for by name only, and it brings the release's statements
REVIEW = "review"  # `invoke review.*`: asked for by name only, and it brings the bake's statements
REVIEW_TAG = "rodeo:review-of"  # <app>/<env>, on every resource of a review app (toolkit.review.facts.OWNER_TAG)
BY_NAME = {PROMOTE: ("release", PROMOTE), REVIEW: ("bake", REVIEW)}  # what each of those brings
# Every AWS action `invoke doctor` calls: all reads (and the IAM policy simulator).
DOCTOR_ACTIONS = (
    "sts:GetCallerIdentity",
    "iam:GetRole",  # an assumed role's ARN with its path, for the simulator
    "iam:SimulatePrincipalPolicy",
    "ec2:DescribeImages",
    "ec2:DescribeSubnets",
    "ec2:DescribeRouteTables",
    "ec2:DescribeNatGateways",
    "ec2:DescribeInternetGateways",
    "ec2:DescribeVpcEndpoints",
    "ec2:DescribeSecurityGroups",
    "ec2:GetEbsEncryptionByDefault",
    "ec2:GetEbsDefaultKmsKeyId",
    "kms:DescribeKey",
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetGroupAttributes",
    "elasticloadbalancing:DescribeLoadBalancerAttributes",  # access logs: what the canary analysis reads
    "cloudwatch:DescribeAlarms",
    "dynamodb:DescribeTable",
)
VERSION = "2012-10-17"


@dataclass(frozen=True)
class Grant:
    """One statement: ``packer`` marks actions Packer calls, not Rodeo itself; ``by_aws`` actions an AWS
    service calls or authorizes with the caller's rights while serving one of its calls (EC2 using the EBS
    key, tags given to a resource at its creation)."""

    sid: str
    actions: tuple[str, ...]
    resources: tuple[str, ...] = ("*",)
    condition: dict = field(default_factory=dict, hash=False)
    packer: bool = False
    by_aws: bool = False
    global_service: bool = False  # IAM answers from us-east-1 whatever the environment's region: no region condition


def purposes_for(name: str) -> tuple[str, ...]:
    """``"all"`` (every purpose of Rodeo's own runs), one of them, ``"instance"``, ``"doctor"``, or one asked for by
    name with the purposes it brings (``BY_NAME``) -> the purposes; ConfigError listing the valid names."""
    if name == "all":
        return PURPOSES
    if name in BY_NAME:
        return BY_NAME[name]
    if name not in PURPOSES + (INSTANCE, DOCTOR):
        raise ConfigError(
            f"--for {name}: unknown purpose",
            f"give one of: {', '.join(PURPOSES)}, all, {DOCTOR} (invoke doctor's reads), {PROMOTE} (release's and "
            f"invoke promote's), {REVIEW} (bake's and the review apps'), or {INSTANCE} (the instances' role)",
        )
    return (name,)


def regions(config: Config) -> list[str]:
    """The regions Rodeo calls: the environment's, then every ``copy_to_regions`` one."""
    return list(dict.fromkeys((config.region, *config.copy_to_regions)))


def grants(config: Config, purposes: tuple[str, ...] = PURPOSES) -> list[Grant]:
    """The statements for ``purposes``. ``release`` needs a ``release:`` section;
    asked for together with others (``all``), it is left out when there is none."""
    builders = {
        "bake": _bake,
        "verify": _verify,
        "release": _release,
        "run": _run,
        "prune": _prune,
        "logs": _logs,
        "instance": _instance,
        DOCTOR: _doctor,
        PROMOTE: _promote,
        REVIEW: _review,
    }
    out: list[Grant] = []
    for purpose in purposes:
        if purpose in ("release", "instance", "run", PROMOTE, REVIEW) and config.release is None:
            if len(purposes) > 1 and not set(BY_NAME) & set(purposes):  # "all": the others still apply
                continue
            raise ReleaseError(
                f"{config.path}: no 'release:' section, so Rodeo makes no release calls",
                "ask for --for bake, verify or prune",
            )
        if purpose == REVIEW and config.review is None:
            raise ConfigError(
                f"{config.path}: no 'review:' section, so Rodeo makes no review app calls",
                "add review: {domain: review.example.com} (inventories/staging/rodeo.yml has one)",
            )
        if purpose in PER_REGION:
            out += _everywhere(config, builders[purpose])
        else:
            out += builders[purpose](config)
    if config.notify and config.notify.sns_topic and {"bake", "release"} & set(purposes):
        # Bakes and releases tell the topic what happened (toolkit.notify); that topic only.
        out.append(Grant("NotifyTopic", ("sns:Publish",), (config.notify.sns_topic,)))
    return out


# What runs in each region of a release in waves (release.regions), each region with its own resources.
PER_REGION = ("release", "instance")


def _everywhere(config: Config, builder: Any) -> list[Grant]:
    """``builder``'s statements for every region of the waves, one statement per Sid: their resources and condition
    values together (``region:`` alone without waves)."""
    merged: dict[str, Grant] = {}
    for wave in waves(config):
        for g in builder(in_region(config, wave)):
            seen = merged.get(g.sid)
            if seen is None:
                merged[g.sid] = g
                continue
            condition = {
                op: {k: _union(seen.condition.get(op, {}).get(k), v) for k, v in keys.items()}
                for op, keys in g.condition.items()
            }
            merged[g.sid] = dataclasses.replace(
                seen, resources=tuple(dict.fromkeys(seen.resources + g.resources)), condition=condition
            )
    return list(merged.values())


def _union(a: Any, b: Any) -> Any:
    """Two condition values as one: the same value, or a list of both's values."""
    if a is None or a == b:
        return b
    both = [*(a if isinstance(a, list) else [a]), *(b if isinstance(b, list) else [b])]
    return list(dict.fromkeys(both))


def policy(config: Config, purposes: tuple[str, ...] = PURPOSES) -> dict:
    """The IAM policy document (Version 2012-10-17) for ``purposes`` in ``config``'s environment."""
    where = {"aws:RequestedRegion": regions(config)}
    statements = []
    for g in grants(config, purposes):
        condition = {op: dict(keys) for op, keys in g.condition.items()}
        if not g.global_service and not regional(g.resources, where["aws:RequestedRegion"]):
            condition.setdefault("StringEquals", {}).update(where)
        statements.append(
            {
                "Sid": g.sid,
                "Effect": "Allow",
                "Action": list(g.actions),
                "Resource": list(g.resources) if len(g.resources) > 1 else g.resources[0],
                **({"Condition": condition} if condition else {}),
            }
        )
    return {"Version": VERSION, "Statement": statements}


def regional(resources: tuple[str, ...], allowed: list[str]) -> bool:
    """True when every resource is an ARN naming one of the ``allowed`` regions: the region is scoped already, and
    the statement needs no ``aws:RequestedRegion`` (a managed policy holds 6,144 characters)."""
    return all(r.startswith("arn:") and r.split(":", 4)[3] in allowed for r in resources)


def actions(config: Config, purposes: tuple[str, ...] = PURPOSES, packer: bool | None = None) -> set[str]:
    """Every action granted for ``purposes``; only Packer's (``packer=True``) or only Rodeo's own calls (``False``);
    either leaves out what AWS services call on the caller's behalf (``Grant.by_aws``)."""
    return {
        a
        for g in grants(config, purposes)
        if packer is None or (g.packer, g.by_aws) == (packer, False)
        for a in g.actions
    }


# --- the purposes ----------------------------------------------------------------------


def _arn(service: str, region: str, resource: str, account: str = "*") -> str:
    return f"arn:aws:{service}:{region}:{account}:{resource}"


def _ebs_key(config: Config, prefix: str) -> list[Grant]:
    """The account's default EBS key, used by EC2 for the caller: a customer-managed default key (EBS encryption by
    default) needs these for RunInstances and CopyImage of encrypted volumes, and for new volumes it encrypts.
    https://docs.aws.amazon.com/ebs/latest/userguide/ebs-encryption-requirements.html ("Permissions for users");
    the key's id is the account's setting, so the key is not named: only EC2 may use it (``kms:ViaService``), and
    grants only for AWS resources (``kms:GrantIsForAWSResource``)."""
    via = {"StringEquals": {"kms:ViaService": [f"ec2.{r}.amazonaws.com" for r in regions(config)]}}
    return [
        Grant(
            f"{prefix}EbsKey",
            ("kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncrypt*"),
            condition=via,
            by_aws=True,
        ),
        Grant(
            f"{prefix}EbsKeyGrant",
            ("kms:CreateGrant",),
            condition={**via, "Bool": {"kms:GrantIsForAWSResource": "true"}},
            by_aws=True,
        ),
    ]


def _key_pairs(config: Config, prefix: str) -> str:
    # Key pair ARNs carry the name; Rodeo names its own rodeo-<bake-id> / rodeo-verify-<check-id>.
    return _arn("ec2", config.region, f"key-pair/{prefix}*")


def _bake(config: Config) -> list[Grant]:
    keys = _key_pairs(config, "rodeo-")
    out = [
        Grant(
            "BakeDescribeImages", ("ec2:DescribeImages",)
        ),  # source AMI, parent, cache hits: no resource-level permissions
        Grant("BakeKeyPair", ("ec2:ImportKeyPair", "ec2:DeleteKeyPair"), (keys,)),
        # ImportKeyPair tags the key pair as it creates it, which needs CreateTags for that action only.
        Grant(
            "BakeTagKeyPair", ("ec2:CreateTags",), (keys,), {"StringEquals": {"ec2:CreateAction": ["ImportKeyPair"]}}
        ),
        # One bake of an image's inputs at a time: lock items under the key "bake#lock" of the app's table, no other item.
        Grant(
            "BakeLock",
            ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"),
            (_table(config),),
            {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["bake#lock"]}},
        ),
    ]
    return out + _packer(config) + _ebs_key(config, "Bake")  # Packer's RunInstances and CopyImage


def _packer(config: Config) -> list[Grant]:
    """What Packer 1.6.6's amazon-ebs builder calls for Rodeo's template: a subset of its documented
    minimal policy (see tests/unit/test_iam.py). The template brings its own key pair
    (``ssh_keypair_name``: no CreateKeyPair), sets no ENA/SR-IOV, AMI users or Windows password
    (no Modify*Attribute, GetPasswordData) and launches no spot instance."""
    out = [
        # Describes support no resource-level permissions. DescribeImages is in BakeDescribeImages.
        Grant(
            "PackerDescribe",
            ("ec2:DescribeInstances", "ec2:DescribeRegions", "ec2:DescribeSecurityGroups", "ec2:DescribeSubnets"),
            packer=True,
        ),
        # The temporary security group (SSH from temporary_security_group_source_cidrs): Packer 1.6.6
        # cannot tag it, so there is no tag to scope it by.
        Grant(
            "PackerSecurityGroup",
            ("ec2:CreateSecurityGroup", "ec2:AuthorizeSecurityGroupIngress", "ec2:DeleteSecurityGroup"),
            packer=True,
        ),
        Grant("PackerLaunch", ("ec2:RunInstances",), packer=True),
        # The build instance carries the run tag rodeo:bake; Packer stops and terminates only that one.
        Grant(
            "PackerBuildInstance",
            ("ec2:StopInstances", "ec2:TerminateInstances"),
            condition={"Null": {"ec2:ResourceTag/rodeo:bake": "false"}},
            packer=True,
        ),
        # CreateTags: run_tags at launch, then tags/snapshot_tags on the new AMI, its snapshots and copies,
        # which have no tag yet to scope by.
        Grant("PackerImage", ("ec2:CreateImage", "ec2:CreateTags"), packer=True),
        # The templates' ami_description: Packer 1.6.6 sets it on each AMI it made (copies too) with
        # ModifyImageAttribute, before it tags them ("Modifying attributes on AMI" in packer.log).
        Grant("PackerImageDescription", ("ec2:ModifyImageAttribute",), (_arn("ec2", "*", "image/*", ""),), packer=True),
    ]
    if config.copy_to_regions or config.encrypt_boot:  # ami_regions, and encrypt_boot's encrypted copy
        out.append(Grant("PackerCopyImage", ("ec2:CopyImage",), packer=True))
    if config.encrypt_boot:
        # Packer copies the AMI encrypted, then deletes the unencrypted intermediate AMI and its
        # snapshots before tagging anything, so these cannot be scoped by tag.
        out.append(Grant("PackerEncryptCleanup", ("ec2:DeregisterImage", "ec2:DeleteSnapshot"), packer=True))
        # encrypt_boot without kms_key_id: the account's EBS key, used only through EC2.
        via = [f"ec2.{r}.amazonaws.com" for r in regions(config)]
        out.append(
            Grant(
                "PackerEncryptKms",
                ("kms:GenerateDataKey*", "kms:ReEncrypt*"),
                condition={"StringEquals": {"kms:ViaService": via}},
                packer=True,
            )
        )
    return out


def _verify(config: Config) -> list[Grant]:
    keys = _key_pairs(config, "rodeo-verify-")
    reads = ("ec2:DescribeImages", "ec2:DescribeInstances", "ec2:DescribeSubnets") + (
        () if config.subnet_id else ("ec2:DescribeVpcs",)
    )
    made_here = {"Null": {"ec2:ResourceTag/rodeo:verify": "false"}}
    return [
        Grant("VerifyDescribe", reads),
        Grant("VerifyKeyPair", ("ec2:ImportKeyPair", "ec2:DeleteKeyPair"), (keys,)),
        # New resources have no tag to scope by yet; they are tagged rodeo:verify as they are made.
        Grant("VerifyCreate", ("ec2:CreateSecurityGroup", "ec2:RunInstances")),
        Grant(
            "VerifyTagOnCreate",
            ("ec2:CreateTags",),
            condition={"StringEquals": {"ec2:CreateAction": ["ImportKeyPair", "CreateSecurityGroup", "RunInstances"]}},
        ),
        # Opening, deleting and terminating: only what a verify run made (tag rodeo:verify).
        Grant(
            "VerifyTemporary",
            ("ec2:AuthorizeSecurityGroupIngress", "ec2:DeleteSecurityGroup", "ec2:TerminateInstances"),
            condition=made_here,
        ),
        # The verdict goes on the app's own AMIs and snapshots (rodeo:app, put there by the bake).
        Grant(
            "VerifyVerdict",
            ("ec2:CreateTags",),
            (_arn("ec2", config.region, "image/*", ""), _arn("ec2", config.region, "snapshot/*", "")),
            {"StringEquals": {"ec2:ResourceTag/rodeo:app": config.app}},
        ),
        *_ebs_key(config, "Verify"),  # its RunInstances of the AMI
    ]


def _slot_reads(config: Config) -> list[str]:
    """What reading the slots' state calls (``toolkit.release.slots.read``)."""
    return [
        "elasticloadbalancing:DescribeLoadBalancers",
        "elasticloadbalancing:DescribeListeners",
        "elasticloadbalancing:DescribeTargetGroups",
        "elasticloadbalancing:DescribeTargetHealth",
        "elasticloadbalancing:DescribeTargetGroupAttributes",
        "autoscaling:DescribeAutoScalingGroups",
        "ec2:DescribeImages",
        "ec2:DescribeLaunchTemplates",
        "ec2:DescribeLaunchTemplateVersions",
    ]


def _oneoff(config: Config, prefix: str) -> list[Grant]:
    """A one-off instance (``toolkit.oneoff``): launched tagged rodeo:oneoff, found by that tag, terminated only if it has it."""
    return [
        Grant(f"{prefix}OneOffLaunch", ("ec2:RunInstances",)),
        # RunInstances with TagSpecifications is also authorized as CreateTags on the new instance.
        Grant(
            f"{prefix}OneOffTagOnLaunch",
            ("ec2:CreateTags",),
            (_arn("ec2", config.region, "instance/*"),),
            {"StringEquals": {"ec2:CreateAction": ["RunInstances"]}},
            by_aws=True,
        ),
        Grant(f"{prefix}OneOffDescribe", ("ec2:DescribeInstances",)),
        Grant(
            f"{prefix}OneOffTerminate",
            ("ec2:TerminateInstances",),
            (_arn("ec2", config.region, "instance/*"),),
            {
                "StringEquals": {"ec2:ResourceTag/rodeo:app": config.app},
                "Null": {"ec2:ResourceTag/rodeo:oneoff": "false"},
            },
        ),
        # Its output: the instance's stream in the environment's log group.
        Grant(f"{prefix}OneOffOutput", ("logs:FilterLogEvents",), _log_group(config)),
        *_pass_instance_role(config, f"{prefix}OneOffPassInstanceRole"),
    ]


def _pass_instance_role(config: Config, sid: str) -> list[Grant]:
    """Launching with ``release.instance_profile`` passes its role to EC2 (the role's name is the infrastructure
    code's); nothing without one."""
    if config.release is None or not config.release.instance_profile:
        return []
    passed = {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}
    return [Grant(sid, ("iam:PassRole",), ("arn:aws:iam::*:role/*",), passed)]


def _run(config: Config) -> list[Grant]:
    """``invoke run``: the live slot (its AMI and config version), the config version's parameters, the one-off instance."""
    return [
        Grant("RunDescribe", tuple(_slot_reads(config))),
        Grant("RunConfigVersions", ("dynamodb:GetItem", "dynamodb:Query"), (_table(config),)),
        Grant("RunConfigVars", ("ssm:GetParameters",), (_parameters(config),)),
        *_oneoff(config, "Run"),
        *_ebs_key(config, "Run"),
    ]


def _release(config: Config) -> list[Grant]:
    rel = config.release
    assert rel is not None
    region, app = config.region, config.app
    reads = [
        "elasticloadbalancing:DescribeLoadBalancers",
        "elasticloadbalancing:DescribeListeners",
        "elasticloadbalancing:DescribeTargetGroups",
        "elasticloadbalancing:DescribeTargetHealth",
        "elasticloadbalancing:DescribeTargetGroupAttributes",
        "autoscaling:DescribeAutoScalingGroups",
        "ec2:DescribeImages",
        "ec2:DescribeLaunchTemplates",
        "ec2:DescribeLaunchTemplateVersions",
    ]
    if rel.alarms:
        reads.append("cloudwatch:DescribeAlarms")
    if rel.smoke_check:
        reads.append("elasticloadbalancing:DescribeTags")  # which listener on the smoke port is Rodeo's own (its tag)
    reads += [
        "autoscaling:DescribeScheduledActions",
        "autoscaling:DescribePolicies",
    ]  # scaling: on the live slot, suspended processes
    groups = tuple(
        _arn("autoscaling", region, f"autoScalingGroup:*:autoScalingGroupName/{name}")
        for name in sorted(rel.slots.values())
    )
    templates = (_arn("ec2", region, "launch-template/*"),)
    return [
        Grant("ReleaseDescribe", tuple(reads)),
        # Weights: only the listeners of this load balancer (an ALB's listener ARN carries its name).
        Grant(
            "ReleaseWeights",
            ("elasticloadbalancing:ModifyListener",),
            (_arn("elasticloadbalancing", region, f"listener/app/{rel.load_balancer}/*"),),
        ),
        # The smoke check's test listener, made and deleted on this load balancer only.
        *(
            [
                Grant(
                    "ReleaseTestListener",
                    ("elasticloadbalancing:CreateListener", "elasticloadbalancing:DeleteListener"),
                    (
                        _arn("elasticloadbalancing", region, f"loadbalancer/app/{rel.load_balancer}/*"),
                        _arn("elasticloadbalancing", region, f"listener/app/{rel.load_balancer}/*"),
                    ),
                ),
                # CreateListener with Tags (rodeo:smoke-check) is also authorized as AddTags on the new listener.
                Grant(
                    "ReleaseTagTestListener",
                    ("elasticloadbalancing:AddTags",),
                    (_arn("elasticloadbalancing", region, f"listener/app/{rel.load_balancer}/*"),),
                    by_aws=True,
                ),
            ]
            if rel.smoke_check
            else []
        ),
        # The two slot groups by name; CreateOrUpdateTags because setup creates them with tags.
        Grant(
            "ReleaseSlotGroups",
            (
                "autoscaling:CreateAutoScalingGroup",
                "autoscaling:UpdateAutoScalingGroup",
                "autoscaling:AttachLoadBalancerTargetGroups",
                "autoscaling:CreateOrUpdateTags",
            ),
            groups,
        ),
        # Scaling processes are suspended during a release and resumed after (the group tag rodeo:suspended
        # marks Rodeo's, DeleteTags removes it); scaling: puts schedules and target tracking (rodeo-<name>)
        # on the slot holding traffic, and a release removes them from the other slot, and from both once
        # scaling: is gone from rodeo.yml: the deletions do not depend on today's scaling: section.
        Grant(
            "ReleaseSuspendScaling",
            ("autoscaling:SuspendProcesses", "autoscaling:ResumeProcesses", "autoscaling:DeleteTags"),
            groups,
        ),
        Grant(
            "ReleaseSlotScalingRemove", ("autoscaling:BatchDeleteScheduledAction", "autoscaling:DeletePolicy"), groups
        ),
        *(
            [
                Grant(
                    "ReleaseSlotScaling",
                    ("autoscaling:BatchPutScheduledUpdateGroupAction", "autoscaling:PutScalingPolicy"),
                    groups,
                )
            ]
            if config.scaling
            else []
        ),
        # Auto Scaling checks that the caller may launch from the launch template it is given.
        Grant("ReleaseLaunchFromTemplate", ("ec2:RunInstances",)),
        *_ebs_key(config, "Release"),
        *_pass_instance_role(config, "ReleasePassInstanceRole"),
        # Launch template ARNs carry an id, not the name: scope by the rodeo:app tag setup puts on it.
        Grant(
            "ReleaseCreateLaunchTemplate",
            ("ec2:CreateLaunchTemplate",),
            templates,
            {"StringEquals": {"aws:RequestTag/rodeo:app": app}},
        ),
        Grant(
            "ReleaseTagLaunchTemplate",
            ("ec2:CreateTags",),
            templates,
            {"StringEquals": {"ec2:CreateAction": ["CreateLaunchTemplate"]}},
        ),
        Grant(
            "ReleaseLaunchTemplateVersions",
            ("ec2:CreateLaunchTemplateVersion",),
            templates,
            {"StringEquals": {"ec2:ResourceTag/rodeo:app": app}},
        ),
        # Config vars: one parameter per key under /rodeo/<app>/<env>/ (SecureStrings through SSM's KMS key),
        # read back by release, rollback, status and config.list; their config versions are items of the table.
        Grant("ReleaseConfigVars", ("ssm:PutParameter", "ssm:GetParameters"), (_parameters(config),)),
        # The environment's log group, made and given its retention by setup.
        Grant("ReleaseLogGroup", ("logs:CreateLogGroup", "logs:PutRetentionPolicy"), _log_group(config)),
        # While the new slot comes up, its instances' streams: a crashed app stops the wait (toolkit.release.crash).
        Grant("ReleaseCrashCheck", ("logs:FilterLogEvents",), _log_group(config)),
        # The lock and ledger: one table, rodeo-<app>, made by setup (with a tag, hence TagResource).
        # UpdateItem: the ledger's release numbers (v1, v2, ...) come from one atomic counter item.
        Grant(
            "ReleaseTable",
            (
                "dynamodb:DescribeTable",
                "dynamodb:CreateTable",
                "dynamodb:TagResource",
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:DeleteItem",
                "dynamodb:Query",
            ),
            (_table(config),),
        ),
        # Who released: the ledger records the caller's ARN (AWS answers GetCallerIdentity whatever the policies say).
        Grant("ReleaseWho", ("sts:GetCallerIdentity",)),
        # The release phase (release.release_command, or the release: line of a Procfile image) runs on a one-off instance.
        *([g for g in _oneoff(config, "Release") if g.actions != ("iam:PassRole",)] if _phased(config) else []),
        *_access_logs(config),
    ]


def _access_logs(config: Config) -> list[Grant]:
    """Where the load balancer writes its access logs, and reading them: every release's picture draws its traffic
    from them (``toolkit.release.report``), and the canary analysis judges on them (``toolkit.canary``); the
    analysis's named metrics from CloudWatch. The bucket is the load balancer's setting, not Rodeo's: the statements
    name the keys Elastic Load Balancing writes in the environment's region, in any bucket."""
    rel = config.release
    assert rel is not None
    region = config.region
    reads = ["elasticloadbalancing:DescribeLoadBalancerAttributes"]
    if rel.analysis.enabled and any(not isinstance(m, str) for m in rel.analysis.metrics):
        reads.append("cloudwatch:GetMetricData")
    logs = f"AWSLogs/*/elasticloadbalancing/{region}/*"
    return [
        Grant("ReleaseAnalysisReads", tuple(reads)),
        Grant(
            "ReleaseAccessLogsList",
            ("s3:ListBucket",),
            ("arn:aws:s3:::*",),
            {"StringLike": {"s3:prefix": [logs, f"*/{logs}"]}},
        ),
        Grant("ReleaseAccessLogsRead", ("s3:GetObject",), (f"arn:aws:s3:::*/{logs}",)),
    ]


def _promote(config: Config) -> list[Grant]:
    """``invoke promote``'s calls beyond a release's (``toolkit.promote``): in the source environment, the live AMI's
    snapshots read and, for a target in another account, shared; in the target, the copy made and tagged at once."""
    own = (_arn("ec2", config.region, "image/*", ""), _arn("ec2", config.region, "snapshot/*", ""))
    return [
        Grant("PromoteSnapshots", ("ec2:DescribeSnapshots",)),  # no resource-level permissions
        # The source's side, for a target in another account: only the app's own AMIs and snapshots (rodeo:app).
        Grant(
            "PromoteShare",
            ("ec2:ModifyImageAttribute", "ec2:ModifySnapshotAttribute"),
            own,
            {"StringEquals": {"ec2:ResourceTag/rodeo:app": config.app}},
        ),
        # The target's side: the copy (its source may be in any region and account: image and snapshot ARNs have no
        # account), tagged in the same call (TagSpecifications is authorized as CreateTags on the new resources).
        Grant("PromoteCopy", ("ec2:CopyImage",), ("arn:aws:ec2:*::image/*", "arn:aws:ec2:*::snapshot/*")),
        Grant("PromoteTagCopy", ("ec2:CreateTags",), own, {"StringEquals": {"ec2:CreateAction": ["CopyImage"]}}),
        *_ebs_key(config, "Promote"),  # the copy of an encrypted AMI, with the target region's EBS key
    ]


def _review(config: Config) -> list[Grant]:
    """The review apps' calls (``toolkit.review``), the bake's aside. Every resource of a review app is named after the
    app and environment (``toolkit.review.names``: ``tests/unit/test_iam.py`` holds the two to one another) and tagged
    ``rodeo:review-of=<app>/<env>`` in the call that makes it; changes and deletions need both, so the role cannot touch
    the team's own rules and target groups on the shared listener, nor another environment's review apps."""
    rel = config.release
    assert rel is not None
    region, owner = config.region, f"{config.app}/{config.env}"
    made = {"StringEquals": {f"aws:RequestTag/{REVIEW_TAG}": owner}}
    own = {"StringEquals": {f"aws:ResourceTag/{REVIEW_TAG}": owner}}
    scope = hashlib.sha256(owner.encode()).hexdigest()[:6]  # target group names are per account and region
    target_groups = _arn("elasticloadbalancing", region, f"targetgroup/rv-*-{scope}/*")
    rules = _arn("elasticloadbalancing", region, f"listener-rule/app/{rel.load_balancer}/*")
    prefix = f"rodeo-{config.app}-{config.env}-review-"  # each one's Auto Scaling group and launch template
    groups = _arn("autoscaling", region, f"autoScalingGroup:*:autoScalingGroupName/{prefix}*")
    templates = _arn("ec2", region, "launch-template/*")
    reads = (
        "elasticloadbalancing:DescribeLoadBalancers",  # the parent's listener and its slots' target groups
        "elasticloadbalancing:DescribeListeners",
        "elasticloadbalancing:DescribeTargetGroups",
        "elasticloadbalancing:DescribeRules",
        "elasticloadbalancing:DescribeTargetHealth",
        "autoscaling:DescribeAutoScalingGroups",
        "ec2:DescribeLaunchTemplateVersions",
        "ec2:DescribeInstances",  # which launch template version each instance came from
    )
    return [
        Grant("ReviewDescribe", reads),
        Grant("ReviewCreateTargetGroup", ("elasticloadbalancing:CreateTargetGroup",), (target_groups,), made),
        Grant(
            "ReviewTargetGroup",
            ("elasticloadbalancing:ModifyTargetGroupAttributes", "elasticloadbalancing:DeleteTargetGroup"),
            (target_groups,),
            own,
        ),
        # A rule on the parent's load balancer: the new rule, and the listener it is made on, carry its name.
        Grant(
            "ReviewCreateRule",
            ("elasticloadbalancing:CreateRule",),
            (_arn("elasticloadbalancing", region, f"listener/app/{rel.load_balancer}/*"), rules),
            made,
        ),
        Grant("ReviewRule", ("elasticloadbalancing:ModifyRule", "elasticloadbalancing:DeleteRule"), (rules,), own),
        # Tags given in CreateTargetGroup and CreateRule are also authorized as AddTags, for those two calls only.
        Grant(
            "ReviewTagOnCreate",
            ("elasticloadbalancing:AddTags",),
            (target_groups, rules),
            {"StringEquals": {"elasticloadbalancing:CreateAction": ["CreateTargetGroup", "CreateRule"]}},
        ),
        # Launch template ARNs carry an id, not the name: scope by the tag it is made with.
        Grant("ReviewCreateLaunchTemplate", ("ec2:CreateLaunchTemplate",), (templates,), made),
        Grant(
            "ReviewTagLaunchTemplate",
            ("ec2:CreateTags",),
            (templates,),
            {"StringEquals": {"ec2:CreateAction": ["CreateLaunchTemplate"]}},
        ),
        Grant(
            "ReviewLaunchTemplate",
            ("ec2:CreateLaunchTemplateVersion", "ec2:DeleteLaunchTemplate"),
            (templates,),
            {"StringEquals": {f"ec2:ResourceTag/{REVIEW_TAG}": owner}},
        ),
        # The groups by name (CreateOrUpdateTags: they are made with tags, and pinned by one).
        Grant(
            "ReviewGroups",
            (
                "autoscaling:CreateAutoScalingGroup",
                "autoscaling:UpdateAutoScalingGroup",
                "autoscaling:CreateOrUpdateTags",
                "autoscaling:TerminateInstanceInAutoScalingGroup",
                "autoscaling:DeleteAutoScalingGroup",
            ),
            (groups,),
        ),
        # Auto Scaling checks that the caller may launch from the launch template it is given; it launches with its
        # own service-linked role, whose use of the EBS key is the key policy's, not the caller's.
        Grant("ReviewLaunchFromTemplate", ("ec2:RunInstances",)),
        *_pass_instance_role(config, "ReviewPassInstanceRole"),
        # Config: the parent's newest version (its item, its parameters still there), the overrides under review/.
        Grant("ReviewParentConfigVars", ("ssm:GetParameters",), (_parameters(config),)),
        Grant(
            "ReviewOverrides",
            ("ssm:PutParameter", "ssm:GetParametersByPath", "ssm:DeleteParameters"),
            (_arn("ssm", region, f"parameter{parameter_path(config.app, config.env)}review/*"),),
        ),
        Grant(
            "ReviewParentConfig",
            ("dynamodb:Query",),
            (_table(config),),
            {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [f"{config.env}#config"]}},
        ),
        # The records (pk <env>#review) and each review app's lock (pk <env>#review-lock): no other item of the table.
        Grant(
            "ReviewTable",
            ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:Query"),
            (_table(config),),
            {
                "ForAllValues:StringEquals": {
                    "dynamodb:LeadingKeys": [f"{config.env}#review", f"{config.env}#review-lock"]
                }
            },
        ),
    ]


def _phased(config: Config) -> bool:
    """True when a release may run a release phase: rodeo.yml sets release_command, or the released image is baked
    from a Procfile by Rodeo's app role, whose release: line the AMI records (toolkit.release.phase)."""
    rel = config.release
    assert rel is not None
    return bool(rel.release_command) or (rel.image in config.images and config.image(rel.image).procfile)


def _prune(config: Config) -> list[Grant]:
    reads = ["ec2:DescribeImages", "ec2:DescribeLaunchTemplateVersions"]
    if config.release is not None:  # AMIs pinned by the slot groups (launch template or legacy launch configuration)
        reads += ["autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeLaunchConfigurations"]
    return [
        Grant("PruneDescribe", tuple(reads)),
        Grant("PruneLedger", ("dynamodb:Query",), (_table(config),)),  # AMIs of the last releases stay
        # Only the app's own AMIs and snapshots (rodeo:app, in every region the bake copies to).
        Grant(
            "PruneDelete",
            ("ec2:DeregisterImage", "ec2:DeleteSnapshot"),
            (_arn("ec2", "*", "image/*", ""), _arn("ec2", "*", "snapshot/*", "")),
            {"StringEquals": {"ec2:ResourceTag/rodeo:app": config.app}},
        ),
    ]


def _logs(config: Config) -> list[Grant]:
    """``invoke logs``: the group's events, and each instance's group (its slot) and AMI (its version)."""
    return [
        Grant("LogsRead", ("logs:FilterLogEvents",), _log_group(config)),
        Grant("LogsDescribe", ("ec2:DescribeInstances", "ec2:DescribeImages")),
    ]


def _doctor(config: Config) -> list[Grant]:
    """Reads only: what ``invoke doctor`` looks at (``DOCTOR_ACTIONS``)."""
    iam_actions = tuple(a for a in DOCTOR_ACTIONS if a.startswith("iam:"))
    return [
        Grant("DoctorReads", tuple(a for a in DOCTOR_ACTIONS if a not in iam_actions)),
        Grant("DoctorSimulate", iam_actions, global_service=True),
    ]


def _log_group(config: Config) -> tuple[str, ...]:
    """The environment's log group (``toolkit.logs.group``), and everything in it (its streams)."""
    group = f"log-group:{log_group.name(config)}"
    return (_arn("logs", config.region, group), _arn("logs", config.region, f"{group}:*"))


def _parameters(config: Config) -> str:
    """Every config var parameter of the environment (under ``toolkit.configvars.versions.parameter_path``)."""
    return _arn("ssm", config.config_region, f"parameter{parameter_path(config.app, config.env)}*")


def _instance(config: Config) -> list[Grant]:
    """The instances' own calls: their config vars (SSM, SecureStrings through KMS) and their log streams."""
    region = config.config_region
    return [
        Grant("InstanceConfigVars", ("ssm:GetParameters",), (_parameters(config),)),
        # SecureString values: the SSM key, used only through SSM.
        Grant(
            "InstanceConfigDecrypt",
            ("kms:Decrypt",),
            condition={"StringEquals": {"kms:ViaService": [f"ssm.{region}.amazonaws.com"]}},
        ),
        Grant("InstanceLogs", ("logs:CreateLogStream", "logs:PutLogEvents"), _log_group(config)[1:]),
    ]


def _table(config: Config) -> str:
    return _arn("dynamodb", config.region, f"table/{table_name(config)}")
