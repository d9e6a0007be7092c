"""AWS's rules that moto skips, enforced by the local stack (checked against moto 5.2.6).

Each function patches moto the way ``toolkit.local.motoserver``'s fidelity
fixes do, and names the AWS behaviour and its documentation. ``apply`` turns
them all on; ``motoserver.main`` calls it for every local stack, live or not.
The README's list "Rules the local stack enforces that moto skips" is kept
beside this module: a rule added here is a line added there.

Eventual consistency (``settling_*``) is approximated, deterministically: a
resource made less than ``RODEO_LOCAL_SETTLE_SECONDS`` (default 5) ago is
refused at its *first* use, as AWS may refuse it for a few seconds after it
is made; that refusal, or any use after the window, makes it ready. So code
that uses what it just made without retrying fails here every time, and code
that retries pays one short backoff. AWS's window is random and can be longer.

Target health (``targets_checked_before_healthy``) takes the time a target
group's health checks would, scaled down by ``RODEO_LOCAL_HEALTH_CHECK_SCALE``
(default 0.05: the seeded groups check every 5 s with a healthy threshold of
2, so a new target is ``initial`` for 0.5 s where AWS takes about 10 s).
"""

from __future__ import annotations

import os
import re
import string
import threading
import time
from typing import Any, Callable

from toolkit.local.motopatches import replace

SETTLE_ENV = "RODEO_LOCAL_SETTLE_SECONDS"
DEFAULT_SETTLE_SECONDS = 5.0
# SNS's Publish (see sns_subject_rules): printable ASCII, not starting with a space, under 100 characters.
SUBJECT_CHARACTERS = frozenset(string.ascii_letters + string.digits + string.punctuation + " ")
SUBJECT_LIMIT = 100
HEALTH_SCALE_ENV = "RODEO_LOCAL_HEALTH_CHECK_SCALE"
DEFAULT_HEALTH_SCALE = (
    0.05  # AWS's time to healthy (interval x healthy threshold) x this; small: the suite releases ~200 times
)
PACKER_SDK = "aws-sdk-go/"
# ELBv2 listener rules (see listener_rules_checked): priorities, condition values and their characters.
RULE_PRIORITIES = (1, 50000)
RULE_VALUES, RULE_WILDCARDS = 5, 5  # per rule: condition values, and wildcards in them
HOST_VALUE = re.compile(r"^[A-Za-z0-9_.*?-]*\.[A-Za-z]+$")  # at least one '.', only letters after the last
PATH_VALUE = re.compile(
    r"^[A-Za-z0-9_.$/~\"'@:+&*?-]+$"
)  # the User-Agent of Packer's AWS calls (the only Go client of the local stack)


class Settling:
    """Things made a moment ago: each is refused at its first use within ``window`` seconds of being made."""

    def __init__(self, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.window, self.clock = window, clock
        self._made: dict[Any, float] = {}
        self._lock = threading.Lock()

    def made(self, key: Any) -> None:
        """``key`` was just made."""
        with self._lock:
            self._made[key] = self.clock()

    def settle(self, key: Any) -> None:
        """``key`` is visible now (a Describe found it)."""
        with self._lock:
            self._made.pop(key, None)

    def refuse(self, key: Any) -> bool:
        """True when this is ``key``'s first use and it was made less than ``window`` seconds ago."""
        with self._lock:
            at = self._made.pop(key, None)
        return at is not None and self.clock() - at < self.window


def settle_seconds() -> float:
    """The settling window from ``RODEO_LOCAL_SETTLE_SECONDS`` (0 turns eventual consistency off)."""
    try:
        return max(0.0, float(os.environ.get(SETTLE_ENV, DEFAULT_SETTLE_SECONDS)))
    except ValueError:
        return DEFAULT_SETTLE_SECONDS


def health_scale() -> float:
    """The health checks' time scale from ``RODEO_LOCAL_HEALTH_CHECK_SCALE`` (0: every registered target healthy at once)."""
    try:
        return max(0.0, float(os.environ.get(HEALTH_SCALE_ENV, DEFAULT_HEALTH_SCALE)))
    except ValueError:
        return DEFAULT_HEALTH_SCALE


def apply(window: float | None = None, scale: float | None = None) -> None:
    """Turn every rule on (``window``: the settling window, default ``settle_seconds()``; ``scale``: ``health_scale()``)."""
    window = settle_seconds() if window is None else window
    settling_launch_template_versions(Settling(window))
    fully_formed_launch_templates()  # patched last, checked first: a template without an AMI never settles
    settling_security_groups(Settling(window))
    settling_deregistered_image_snapshots(Settling(window))
    image_copies_as_aws()
    sns_subject_rules()
    ssm_type_changes_refused()
    listener_rules_checked()
    classic_load_balancers_checked()
    targets_checked_before_healthy(health_scale() if scale is None else scale)


# --- launch templates --------------------------------------------------------------------


def _template_version(ec2_backend: Any, spec: dict | None) -> Any:
    """The moto launch template version ``spec`` names (LaunchTemplateId/Name, Version), or None (moto then answers)."""
    if not spec or not (spec.get("LaunchTemplateId") or spec.get("LaunchTemplateName")):
        return None
    try:
        template = (
            ec2_backend.get_launch_template(spec["LaunchTemplateId"])
            if spec.get("LaunchTemplateId")
            else ec2_backend.get_launch_template_by_name(spec["LaunchTemplateName"])
        )
        return template.get_version(spec.get("Version") or "$Default")
    except Exception:  # not found: moto's own answer says so
        return None


def _group_templates(response: Any) -> list[dict]:
    """The launch templates a CreateAutoScalingGroup/UpdateAutoScalingGroup request names."""
    specs = [response._get_param("LaunchTemplate", {}) or {}]
    mixed = response._get_param("MixedInstancesPolicy") or {}
    specs.append(((mixed.get("LaunchTemplate") or {}).get("LaunchTemplateSpecification")) or {})
    return [s for s in specs if s]


def fully_formed_launch_templates() -> None:
    """An Auto Scaling group, or RunInstances, on a launch template version without ``ImageId`` is refused.

    AWS: CreateAutoScalingGroup and UpdateAutoScalingGroup validate the
    launch template as a launch would, and refuse one that cannot launch with
    ``ValidationError: You must use a valid fully-formed launch template.``
    followed by EC2's reason (here RunInstances' ``The request must contain
    the parameter ImageId``); RunInstances itself answers ``MissingParameter``
    with that reason. ``ImageId`` is optional in a launch template
    (https://docs.aws.amazon.com/autoscaling/ec2/userguide/create-launch-template.html)
    and required to launch
    (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_RunInstances.html).
    moto 5.2.6 makes the group and launches instances with no AMI.
    """
    from moto.autoscaling.exceptions import ValidationError
    from moto.autoscaling.responses import AutoScalingResponse
    from moto.ec2.exceptions import MissingParameterError
    from moto.ec2.responses.instances import InstanceResponse

    def refuse_imageless(self: Any) -> None:
        for spec in _group_templates(self):
            version = _template_version(self.autoscaling_backend.ec2_backend, spec)
            if version is not None and not version.image_id:
                raise ValidationError(
                    "You must use a valid fully-formed launch template. The request must contain the parameter ImageId"
                )

    def run_instances_check(self: Any) -> None:
        version = _template_version(self.ec2_backend, self._get_param("LaunchTemplate", {}))
        if version is not None and not version.image_id and not self._get_param("ImageId"):
            raise MissingParameterError("ImageId")

    _before(AutoScalingResponse, "create_auto_scaling_group", refuse_imageless)
    _before(AutoScalingResponse, "update_auto_scaling_group", refuse_imageless)
    _before(InstanceResponse, "run_instances", run_instances_check)


def settling_launch_template_versions(settling: Settling) -> None:
    """A launch template version made a moment ago is refused at its first use, as AWS may refuse it for a few seconds.

    AWS's EC2 API is eventually consistent
    (https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html):
    a version used right after CreateLaunchTemplate(Version) can be refused by
    Auto Scaling as not a ``valid fully-formed launch template`` and by
    RunInstances as not found (Terraform's AWS provider retries exactly this).
    Uses: CreateAutoScalingGroup, UpdateAutoScalingGroup, RunInstances with a
    LaunchTemplate. moto 5.2.6 makes every version visible at once.
    """
    from moto.autoscaling.exceptions import ValidationError
    from moto.autoscaling.responses import AutoScalingResponse
    from moto.ec2.exceptions import InvalidLaunchTemplateVersionNotFound
    from moto.ec2.models.launch_templates import LaunchTemplateVersion
    from moto.ec2.responses.instances import InstanceResponse

    init = LaunchTemplateVersion.__init__

    def made(self: Any, template: Any, number: int, *args: Any, **kwargs: Any) -> None:
        init(self, template, number, *args, **kwargs)
        settling.made((template.id, number))

    def group_use(self: Any) -> None:
        for spec in _group_templates(self):
            version = _template_version(self.autoscaling_backend.ec2_backend, spec)
            if version is not None and settling.refuse((version.template.id, version.number)):
                raise ValidationError(
                    f"You must use a valid fully-formed launch template. Could not find the specified version "
                    f"{version.number} for the launch template with ID {version.template.id}."
                )

    def run_use(self: Any) -> None:
        version = _template_version(self.ec2_backend, self._get_param("LaunchTemplate", {}))
        if version is not None and settling.refuse((version.template.id, version.number)):
            raise InvalidLaunchTemplateVersionNotFound(str(version.number), version.template.id)

    replace(LaunchTemplateVersion, "__init__", made)
    _before(AutoScalingResponse, "create_auto_scaling_group", group_use)
    _before(AutoScalingResponse, "update_auto_scaling_group", group_use)
    _before(InstanceResponse, "run_instances", run_use)


# --- security groups and snapshots -------------------------------------------------------


def _group_ids(data: dict) -> list[str]:
    """Security group ids in a RunInstances request or a launch template's data (direct and per network interface)."""
    ids = list(data.get("SecurityGroupIds") or [])
    for nic in data.get("NetworkInterfaces") or []:
        ids += list(nic.get("Groups") or [])
    return [i for i in ids if isinstance(i, str)]


def settling_security_groups(settling: Settling) -> None:
    """A security group made a moment ago is ``InvalidGroup.NotFound`` at its first use, as on AWS.

    AWS (https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html,
    "InvalidGroup.NotFound"): a command using the id CreateSecurityGroup just
    returned may answer that the group does not exist. Uses:
    AuthorizeSecurityGroupIngress, RunInstances, CreateLaunchTemplate and
    CreateLaunchTemplateVersion naming it. A VPC's own ``default`` group is
    not counted. DescribeSecurityGroups naming it by id settles it: the page's
    advice is to confirm with Describe (with backoff) before using a new
    resource, and Packer's amazon-ebs (1.6.6) does exactly that before it
    authorizes SSH. moto 5.2.6 knows every group at once.
    """
    from moto.ec2.exceptions import InvalidSecurityGroupNotFoundError
    from moto.ec2.models.security_groups import SecurityGroupBackend
    from moto.ec2.responses.instances import InstanceResponse
    from moto.ec2.responses.launch_templates import LaunchTemplates
    from moto.ec2.responses.security_groups import SecurityGroups

    create = SecurityGroupBackend.create_security_group

    def create_security_group(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        group = create(self, name, *args, **kwargs)
        if name != "default":
            settling.made(group.id)
        return group

    def check(ids: list[str]) -> None:
        for group_id in ids:
            if settling.refuse(group_id):
                raise InvalidSecurityGroupNotFoundError(group_id)

    def described(self: Any) -> None:
        for group_id in self._get_param("GroupIds", []) or []:
            settling.settle(group_id)

    replace(SecurityGroupBackend, "create_security_group", create_security_group)
    _before(SecurityGroups, "describe_security_groups", described)
    _before(SecurityGroups, "authorize_security_group_ingress", lambda self: check([self._get_param("GroupId") or ""]))
    _before(
        InstanceResponse,
        "run_instances",
        lambda self: check(
            _group_ids(
                {
                    "SecurityGroupIds": self._get_param("SecurityGroupIds", []),
                    "NetworkInterfaces": self._get_param("NetworkInterfaces", []),
                }
            )
        ),
    )
    for action in ("create_launch_template", "create_launch_template_version"):
        _before(
            LaunchTemplates, action, lambda self: check(_group_ids(self._get_param("LaunchTemplateData", {}) or {}))
        )


def settling_deregistered_image_snapshots(settling: Settling) -> None:
    """A snapshot of an image deregistered a moment ago is ``InvalidSnapshot.InUse`` at its first DeleteSnapshot, as on AWS.

    AWS: DeleteSnapshot refuses a snapshot an AMI uses
    (https://docs.aws.amazon.com/ebs/latest/userguide/ebs-deleting-snapshot.html)
    and, the EC2 API being eventually consistent
    (https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html),
    may still refuse it for a few seconds after DeregisterImage. moto 5.2.6
    frees it at once. Calls from the Go SDK are not refused: that is Packer
    (1.6.6, Debian's), whose ``encrypt_boot`` cleanup deletes its temporary
    AMI's snapshots right after deregistering it and never retries; on AWS
    that race is rare, here it would fail every encrypted bake.
    """
    from moto.ec2.exceptions import InvalidSnapshotInUse
    from moto.ec2.models.amis import AmiBackend
    from moto.ec2.responses.elastic_block_store import ElasticBlockStore

    deregister = AmiBackend.deregister_image
    used_by: dict[str, str] = {}  # snapshot -> the AMI deregistered a moment ago

    def deregister_image(self: Any, ami_id: str) -> None:
        image = self.amis.get(ami_id)
        deregister(self, ami_id)
        mapped = {
            (m.get("Ebs") or {}).get("SnapshotId")
            for m in getattr(image, "block_device_mappings", None) or []
            if isinstance(m, dict)
        }
        for snap in list(self.snapshots.values()):
            if snap.from_ami == ami_id or snap.id in mapped:
                used_by[snap.id] = ami_id
                settling.made(snap.id)

    def delete_snapshot(self: Any) -> None:
        snap = self._get_param("SnapshotId") or ""
        if str(self.headers.get("User-Agent", "")).startswith(PACKER_SDK):
            return  # Packer: see the docstring
        if settling.refuse(snap):
            raise InvalidSnapshotInUse(snap, used_by.get(snap, "an AMI"))

    replace(AmiBackend, "deregister_image", deregister_image)
    _before(ElasticBlockStore, "delete_snapshot", delete_snapshot)


def image_copies_as_aws() -> None:
    """CopyImage as EC2 does it, where moto 5.2.6 is laxer (``invoke promote`` copies AMIs across regions).

    - The name: AWS refuses a name an image of the account already has in the
      region (``InvalidAMIName.Duplicate``); moto makes a second image of that name.
    - The tags: ``TagSpecifications`` tag the copy (``image``) and its snapshots
      (``snapshot``) in the same call, any other resource type is refused
      (``InvalidParameterValue``); moto drops them, so a copy would be untagged.
    - The state: a copy is ``pending`` for minutes on AWS
      (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/CopyingAMIs.html);
      moto's is ``available`` at once. Here it is ``pending`` to the first
      DescribeImages that shows it, then ``available``: code that releases a
      copy without waiting for it fails here every time, code that waits
      pays one poll of its waiter (Rodeo's and Packer's: 2 s; botocore's
      default 15 s).
    """
    from moto.core.responses import ActionResult
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.models.amis import AmiBackend
    from moto.ec2.responses.amis import AmisResponse

    unseen: set[str] = set()  # copies no DescribeImages has shown yet (pending)
    shown: set[str] = set()  # copies shown pending once: available at the next look

    def copy_image(self: Any) -> Any:
        name = self._get_param("Name")
        if any(image.name == name for image in list(self.ec2_backend.amis.values())):
            raise EC2ClientError("InvalidAMIName.Duplicate", f"AMI name {name} is already in use by AMI")
        specs = self._get_param("TagSpecifications", []) or []
        for spec in specs:
            if spec.get("ResourceType") not in ("image", "snapshot"):
                raise EC2ClientError(
                    "InvalidParameterValue",
                    f"'{spec.get('ResourceType')}' is not a valid taggable resource type for this operation.",
                )
        self.error_on_dryrun()
        image = self.ec2_backend.copy_image(
            self._get_param("SourceImageId"), self._get_param("SourceRegion"), name, self._get_param("Description")
        )
        for spec in specs:
            tags = {t["Key"]: t.get("Value", "") for t in spec.get("Tags", [])}
            resource = image.id if spec["ResourceType"] == "image" else image.ebs_snapshot.id
            if tags:
                self.ec2_backend.create_tags([resource], tags)
        image.state = "pending"
        unseen.add(image.id)
        return ActionResult({"ImageId": image.id})

    describe = AmiBackend.describe_images

    def describe_images(
        self: Any, ami_ids: Any = None, filters: Any = None, exec_users: Any = None, owners: Any = None
    ):
        for ami in [a for a in shown if a in self.amis]:
            self.amis[ami].state = "available"
            shown.discard(ami)
        found = describe(self, ami_ids=ami_ids, filters=filters, exec_users=exec_users, owners=owners)
        for image in found:
            if image.id in unseen:
                unseen.discard(image.id)
                shown.add(image.id)
        return found

    replace(AmisResponse, "copy_image", copy_image)
    replace(AmiBackend, "describe_images", describe_images)


# --- SNS and SSM -------------------------------------------------------------------------


def sns_subject_rules() -> None:
    """Publish refuses a Subject that is not printable ASCII, starts with a space, or is not under 100 characters.

    AWS (https://docs.aws.amazon.com/sns/latest/api/API_Publish.html) said
    "Subjects must be ASCII text that begins with a letter, number, or
    punctuation mark; must not include line breaks or control characters; and
    must be less than 100 characters long"; botocore's model today says "UTF-8
    text with no line breaks or control characters, and less than 100
    characters long". The stricter reading is enforced, refused as AWS does
    with ``InvalidParameter: Invalid parameter: Subject`` (moto issue #1503
    reports AWS taking exactly 100; the documented limit is kept). moto 5.2.6
    checks only the length, and lets 100 through. (A ``.fifo`` topic's MessageGroupId and deduplication id
    moto 5.2.6 already requires; tests/unit/local/test_awsrules.py keeps it so.)
    """
    from moto.sns.exceptions import SNSInvalidParameter
    from moto.sns.responses import SNSResponse

    def check(self: Any) -> None:
        subject = self._get_param("Subject")
        if subject is None:
            return
        legal = set(subject) <= SUBJECT_CHARACTERS and not subject.startswith(" ")
        if subject == "" or len(subject) >= SUBJECT_LIMIT or not legal:
            raise SNSInvalidParameter("Invalid parameter: Subject")

    _before(SNSResponse, "publish", check)


def ssm_type_changes_refused() -> None:
    """PutParameter with ``Overwrite`` refuses to change an existing parameter's type (``HierarchyTypeMismatchException``).

    AWS's PutParameter (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html)
    lists HierarchyTypeMismatchException: "Parameter Store doesn't support
    changing a parameter type in a hierarchy. For example, you can't change a
    parameter from a String type to a SecureString type. You must create a
    new, unique parameter." moto 5.2.6 changes the type. (Whether AWS refuses
    every such overwrite needs a real account to confirm: the README says so.)
    """
    from moto.ssm.exceptions import SSMException
    from moto.ssm.models import SimpleSystemManagerBackend

    original = SimpleSystemManagerBackend.put_parameter

    def put_parameter(
        self: Any, name: str, description: str, value: str, parameter_type: str, *args: Any, **kwargs: Any
    ) -> Any:
        held = self._parameters[name] if name in self._parameters else None
        if held and parameter_type and held[-1].parameter_type != parameter_type:
            raise SSMException(
                "HierarchyTypeMismatchException",
                "Parameter Store doesn't support changing a parameter type in a hierarchy. For example, you can't change a "
                "parameter from a String type to a SecureString type. You must create a new, unique parameter.",
            )
        return original(self, name, description, value, parameter_type, *args, **kwargs)

    replace(SimpleSystemManagerBackend, "put_parameter", put_parameter)


# --- listener rules ---------------------------------------------------------------------


def rule_refusal(priority: Any, conditions: list[dict]) -> str | None:
    """Why AWS refuses a listener rule with this priority (None: not given) and these conditions, or None.

    AWS (https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_CreateRule.html,
    https://docs.aws.amazon.com/elasticloadbalancing/latest/application/rule-condition-types.html,
    https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-limits.html):
    a priority from 1 to 50000; a host-header value of letters, digits,
    ``-_.`` and the wildcards ``*?``, with at least one ``.`` and only letters
    after the last; a path-pattern value of letters, digits, ``_-.$/~"'@:+&``
    and the wildcards; at most one host-header and one path-pattern condition;
    at most 5 condition values and 5 wildcards per rule.
    """
    if priority is not None and not RULE_PRIORITIES[0] <= int(priority) <= RULE_PRIORITIES[1]:
        return (
            f"1 validation error detected: Value '{priority}' at 'priority' failed to satisfy constraint: "
            f"Member must have value {'greater than or equal to 1' if int(priority) < 1 else 'less than or equal to 50000'}"
        )
    values: list[str] = []
    for field in ("host-header", "path-pattern"):
        found = [c for c in conditions if c.get("Field") == field]
        if len(found) > 1:
            return f"A rule can have at most one '{field}' condition"
        own = [v for c in found for v in _condition_values(c)]
        shape = HOST_VALUE if field == "host-header" else PATH_VALUE
        bad = next((v for v in own if not shape.match(v)), None)
        if bad is not None:
            return f"The '{field}' value '{bad}' contains characters that are not valid, or is not in a valid form"
        values += own
    if len(values) > RULE_VALUES:
        return f"A rule can have at most '{RULE_VALUES}' condition values"
    if sum(v.count("*") + v.count("?") for v in values) > RULE_WILDCARDS:
        return f"A rule can have at most '{RULE_WILDCARDS}' wildcards in its condition values"
    return None


def _condition_values(condition: dict) -> list[str]:
    config = condition.get("HostHeaderConfig") or condition.get("PathPatternConfig") or {}
    return [str(v) for v in (config.get("Values") or condition.get("Values") or [])]


def listener_rules_checked() -> None:
    """CreateRule, ModifyRule and SetRulePriorities refuse what ``rule_refusal`` names, with ``ValidationError``.

    moto 5.2.6 takes any priority (0, 50001) and checks a host-header or
    path-pattern value's length only; an ALB refuses the rest before any
    request is routed by it.
    """
    from moto.elbv2.exceptions import InvalidConditionValueError
    from moto.elbv2.responses import ELBV2Response

    def check(priority: Any, conditions: list[dict]) -> None:
        why = rule_refusal(priority, conditions)
        if why is not None:
            raise InvalidConditionValueError(why)

    def created(self: Any) -> None:
        params = self._get_params()
        check(params.get("Priority"), params.get("Conditions") or [])

    def priorities(self: Any) -> None:
        for item in self._get_param("RulePriorities", []) or []:
            check(item.get("Priority"), [])

    _before(ELBV2Response, "create_rule", created)
    _before(ELBV2Response, "modify_rule", lambda self: check(None, self._get_params().get("Conditions") or []))
    _before(ELBV2Response, "set_rule_priorities", priorities)


# --- target health -----------------------------------------------------------------------

INITIAL = ("initial", "Elb.RegistrationInProgress", "Target registration is in progress")
CHECKING = ("initial", "Elb.InitialHealthChecking", "Initial health checks in progress")
GONE = ("unused", "Target.InvalidState", "Target is in the terminated state")


def time_to_healthy(interval: Any, threshold: Any, scale: float) -> tuple[float, float]:
    """(seconds registering, seconds until healthy) of a new target: one check interval, then ``threshold`` of them, scaled."""
    interval, threshold = float(interval or 30), int(threshold or 5)
    return interval * scale, interval * threshold * scale


def initial_health(age: float, registering: float, healthy_after: float) -> tuple | None:
    """The ``initial`` answer for a target registered ``age`` seconds ago, or None once its checks have passed."""
    if age >= healthy_after:
        return None
    return INITIAL if age < registering else CHECKING


def targets_checked_before_healthy(scale: float, clock: Callable[[], float] = time.monotonic) -> None:
    """A registered target is ``initial`` until its health checks could have passed, and not healthy once its instance is gone.

    AWS (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html):
    a target is ``initial`` (``Elb.RegistrationInProgress``, then
    ``Elb.InitialHealthChecking``) until it passes a check, one every
    ``HealthCheckIntervalSeconds`` ("After your target is registered, it must
    pass one health check to be considered healthy"); a target whose instance
    is terminated is ``unused`` (``Target.InvalidState``). Here a new target
    waits for ``HealthyThresholdCount`` intervals, longer than AWS (never more
    forgiving), so the release tests without the live stack see it not ready.
    moto 5.2.6 answers ``healthy`` for every registered target at once, and
    for one whose instance an Auto Scaling group terminated (scaling in does
    not deregister it), so a release's health gates never saw a target that
    was not ready. Here the checks take ``scale`` times AWS's time (see
    ``health_scale``). A target re-registered while registered keeps its age
    (an Auto Scaling group re-registers all of its instances on every change).
    The live stack answers for the instances it boots from HAProxy's checks.
    """
    from moto.elbv2.models import ELBv2Backend, FakeTargetGroup

    register, health_for = ELBv2Backend.register_targets, FakeTargetGroup.health_for
    registered: dict[tuple[str, str], float] = {}

    def register_targets(self: Any, target_group_arn: str, instances: list[Any]) -> None:
        group = self.target_groups.get(target_group_arn)
        new = [t["Id"] for t in instances if group is not None and t["Id"] not in group.targets]
        register(self, target_group_arn, instances)
        now = clock()
        for target_id in new:
            registered[(target_group_arn, target_id)] = now

    def checked_health_for(self: Any, target: dict, ec2_backend: Any) -> Any:
        answer = health_for(self, target, ec2_backend)
        if answer.status != "healthy":
            return answer
        instance = ec2_backend.get_instance_by_id(target["Id"]) if target["Id"].startswith("i-") else None
        if instance is not None and instance.state in ("shutting-down", "terminated"):
            answer.status, answer.reason, answer.description = GONE
            return answer
        at = registered.get((self.arn, target["Id"]))
        found = (
            None
            if at is None
            else initial_health(
                clock() - at, *time_to_healthy(self.health_check_interval_seconds, self.healthy_threshold_count, scale)
            )
        )
        if found is not None:
            answer.status, answer.reason, answer.description = found
        return answer

    replace(ELBv2Backend, "register_targets", register_targets)
    replace(FakeTargetGroup, "health_for", checked_health_for)


# --- Classic Load Balancers ----------------------------------------------------------------

NO_SUCH_ELBS = "Provided Load Balancers may not be valid. Please ensure they exist and try again."


def classic_load_balancers_checked() -> None:
    """The Classic ELB calls refuse what AWS refuses and moto 5.2.6 takes (``toolkit.local.classic``'s rules).

    - CreateLoadBalancer: a name over 32 characters, of other characters than
      letters, digits and the dash, or beginning or ending with a dash, and
      neither Subnets nor AvailabilityZones (``ValidationError``); CreateLoadBalancer and CreateLoadBalancerListeners:
      a protocol other than HTTP, HTTPS, TCP, SSL, a port outside 1-65535
      (``ValidationError``), an HTTP(S) listener to TCP/SSL instances or the
      reverse (``InvalidConfigurationRequest``), an HTTPS or SSL listener
      without a certificate
      (https://docs.aws.amazon.com/elasticloadbalancing/2012-06-01/APIReference/API_Listener.html);
    - ConfigureHealthCheck: a target that is not ``TCP:port``, ``SSL:port``,
      ``HTTP:port/path`` or ``HTTPS:port/path``, an Interval outside 5-300,
      a Timeout outside 2-60 or not under the Interval, thresholds outside
      2-10 (https://docs.aws.amazon.com/elasticloadbalancing/2012-06-01/APIReference/API_HealthCheck.html);
      moto checks only the target's first letters;
    - ModifyLoadBalancerAttributes: a ConnectionDraining Timeout outside 1-3600;
    - RegisterInstancesWithLoadBalancer: an instance that does not exist
      (``InvalidInstance``); every call on an ELB that does not exist is
      ``LoadBalancerNotFound`` (moto failed with an internal error);
    - CreateAutoScalingGroup and AttachLoadBalancers naming a Classic ELB that
      does not exist (``ValidationError``: moto attached it, and registered nothing).
    The exact wording of AWS's messages is AWS's where known (the name's), else says the rule.
    """
    from moto.autoscaling.exceptions import ValidationError
    from moto.autoscaling.responses import AutoScalingResponse
    from moto.elb.exceptions import ELBClientError, LoadBalancerNotFoundError
    from moto.elb.responses import ELBResponse

    from toolkit.local import classic

    def exists(self: Any) -> None:
        name = self._get_param("LoadBalancerName")
        if self.elb_backend.get_load_balancer(name) is None:
            raise LoadBalancerNotFoundError(name)

    def listeners(self: Any) -> None:
        for listener in self._get_param("Listeners", []) or []:
            why = classic.refusal_of_listener(listener)
            if why is not None:
                raise ELBClientError(*why)

    def created(self: Any) -> None:
        why = classic.refusal_of_name(str(self._get_param("LoadBalancerName") or ""))
        if why is not None:
            raise ELBClientError("ValidationError", why)
        if not self._get_param("Subnets", []) and not self._get_param("AvailabilityZones", []):
            raise ELBClientError("ValidationError", "Either AvailabilityZones or Subnets must be specified")
        listeners(self)

    def health_check(self: Any) -> None:
        exists(self)
        why = classic.refusal_of_check(self._get_param("HealthCheck") or {})
        if why is not None:
            raise ELBClientError("ValidationError", why)

    def attributes(self: Any) -> None:
        exists(self)
        why = classic.refusal_of_draining(self._get_param("LoadBalancerAttributes.ConnectionDraining", {}) or {})
        if why is not None:
            raise ELBClientError("ValidationError", why)

    def instances_exist(self: Any) -> None:
        exists(self)
        from moto.ec2.models import ec2_backends

        ec2 = ec2_backends[self.current_account][self.region]
        for item in self._get_param("Instances", []) or []:
            if ec2.get_instance_by_id(item.get("InstanceId")) is None:
                raise ELBClientError(
                    "InvalidInstance", f"The specified instance does not exist: {item.get('InstanceId')}"
                )

    def elbs_exist(self: Any) -> None:
        backend = self.autoscaling_backend.elb_backend
        if any(backend.get_load_balancer(n) is None for n in self._get_param("LoadBalancerNames", []) or []):
            raise ValidationError(NO_SUCH_ELBS)

    _before(ELBResponse, "create_load_balancer", created)
    _before(ELBResponse, "create_load_balancer_listeners", lambda self: (exists(self), listeners(self)))
    _before(ELBResponse, "configure_health_check", health_check)
    _before(ELBResponse, "modify_load_balancer_attributes", attributes)
    _before(ELBResponse, "describe_load_balancer_attributes", exists)
    _before(ELBResponse, "register_instances_with_load_balancer", instances_exist)
    _before(ELBResponse, "deregister_instances_from_load_balancer", exists)
    _before(AutoScalingResponse, "create_auto_scaling_group", elbs_exist)
    _before(AutoScalingResponse, "attach_load_balancers", elbs_exist)


def _before(cls: type, action: str, check: Callable[[Any], None]) -> None:
    """Run ``check(response)`` before moto's ``cls.action`` answers; it refuses by raising moto's exception."""
    original = getattr(cls, action)

    def action_with_rule(self: Any) -> Any:
        check(self)
        return original(self)

    replace(cls, action, action_with_rule)
