"""Run moto's server with the fidelity fixes Rodeo's local stack relies on.

``python -m toolkit.local.motoserver -H 127.0.0.1 -p PORT`` is moto's own
server, except that AMIs made by RegisterImage and CreateImage are EBS-backed
(``RootDeviceType: ebs``), as they are on AWS for the images Packer's
amazon-ebs builder makes. moto 5.2 calls them ``standard``, which Packer then
refuses as the source of a layered bake ("invalid root device type"), and
CreateLaunchTemplateVersion honours ``ClientToken`` as AWS does (botocore sends
one per call and repeats it on retries): a retry of a create that took effect
returns that version instead of making a duplicate, the user data of a new
launch template version reaches the instances launched from it (moto 5.2
stores it unparsed and fails on launch), GetMetricStatistics reads the
metric with exactly the dimensions asked for, PutLogEvents refuses a batch
over AWS's limits, FilterLogEvents honours a stream name prefix, scheduled
action and scaling policy names are per Auto Scaling group, PutParameter
refuses a standard-tier value over 4096 characters, as SSM does, and each
DynamoDB request is done whole before the next starts, as DynamoDB's writes
are atomic. A subnet or
security group created with a ``_custom_id_`` tag takes that id, as moto's
other resources do, so the local inventory can name the seeded private
subnets and the instances' security group by id, as a team's inventory does.

With ``--live DIR`` (the live local stack) it also boots instances and runs
HAProxy (``toolkit.local.controller``, a thread of this process), and answers
``describe_target_health`` from HAProxy's checks. It must then run as PID 1 of
its own mount and PID namespaces (``unshare --mount --pid --fork
--kill-child --propagation private --mount-proc``, as ``toolkit.local.stack``
starts it): every mount, network namespace and process it makes ends with it,
even on ``kill -9``.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from toolkit.local import auth, awsrules, classicpatches, iamsim, motostate, zones
from toolkit.local.motopatches import MOTO_CHECKED, replace  # noqa: F401  (every patch: toolkit.local.motopatches.PATCHES)


def _ebs_backed_amis() -> None:
    from moto.ec2.models import amis

    original = amis.Ami.__init__

    def init(self, *args, **kwargs):
        kwargs.setdefault("root_device_type", "ebs")
        original(self, *args, **kwargs)

    replace(amis.Ami, "__init__", init)


def _moto_modules_listed_once() -> None:
    """moto's server lists its own package folder once, not at every request.

    moto 5.2.6's dispatcher asks ``list_of_moto_modules`` for every request,
    which lists moto's folder and stats each of its ~200 entries: about 0.4 ms
    of a request's few milliseconds. The installed package does not change
    while the server runs.
    """
    from moto import backends

    listed = tuple(backends.list_of_moto_modules())
    replace(backends, "list_of_moto_modules", lambda: listed)


def _requests_without_rescans() -> None:
    """Two lookups moto 5.2.6 redoes from scratch at every request, done once: the same answers, a fraction of the work.

    - ``get_instance_by_id`` copied every reservation in the region to find
      one instance: the target health of every describe (and the local stack's
      own checks) scanned and copied every instance ever launched, a cost that
      grew with the server's age (a tenth of the release tests' server CPU).
    - Each request listed its response class's methods with ``inspect``; the
      classes do not change once the server runs (its patches are made before).
    """
    from moto.core import responses
    from moto.ec2.models.instances import InstanceBackend

    def get_instance_by_id(self: Any, instance_id: str) -> Any:
        for reservation in tuple(self.reservations.values()):  # a snapshot: other threads may add to it
            for instance in reservation.instances:
                if instance.id == instance_id:
                    return instance
        return None

    replace(InstanceBackend, "get_instance_by_id", get_instance_by_id)
    replace(responses, "method_names_from_class", functools.cache(responses.method_names_from_class))


DYNAMODB = threading.Lock()  # held while the server answers one DynamoDB request
LIVE_DIR: Path | None = None  # the live stack's folder (--live): where a drill's lost zones are (toolkit.local.zones)


def _atomic_dynamodb_requests() -> None:
    """The server answers one DynamoDB request at a time, so each is done whole, as DynamoDB's are.

    DynamoDB applies a write, and its condition, atomically: two conditional
    PutItems of one new key cannot both succeed, and a consistent GetItem never
    sees an UpdateItem half done. moto 5.2.6 answers each request on a thread
    of its own with no lock: its UpdateItem stores an empty item before it
    applies the expression (a GetItem in between reads the item without the
    attribute), and a condition is checked before the write, so Rodeo's lock
    (``toolkit.lock``) could be taken twice.
    """
    from moto.dynamodb.responses import DynamoHandler

    replace(DynamoHandler, "call_action", one_at_a_time(DynamoHandler.call_action, DYNAMODB))


def one_at_a_time(call, lock):
    """``call`` (a moto response method) answering under ``lock``."""

    def answer(self):
        with lock:
            return call(self)

    return answer


def _idempotent_launch_template_versions() -> None:
    from moto.ec2.responses.launch_templates import LaunchTemplates

    original = LaunchTemplates.create_launch_template_version
    made: dict = {}

    def create(self):
        token = self._get_param("ClientToken")
        key = (self.current_account, self.region, token)
        if token and key in made:
            return made[key]
        result = original(self)
        if token:
            made[key] = result
        return result

    replace(LaunchTemplates, "create_launch_template_version", create)


def _user_data_in_launch_template_versions() -> None:
    from moto.ec2.models.launch_templates import LaunchTemplate
    from moto.ec2.utils import parse_user_data

    original = LaunchTemplate.create_version

    def create_version(self, data, description):
        if isinstance(data.get("UserData"), str):
            data = dict(data, UserData=parse_user_data(data["UserData"]))
        return original(self, data, description)

    replace(LaunchTemplate, "create_version", create_version)


def _exact_dimensions_in_statistics() -> None:
    """GetMetricStatistics reads the metric with exactly the dimensions asked for, as on AWS.

    moto 5.2 matches any metric that has them among others, so an ALB's
    ``LoadBalancer`` sum would add its per-target-group datapoints in twice.
    """
    import threading

    from moto.cloudwatch.models import CloudWatchBackend

    asked = threading.local()
    all_metrics, statistics = CloudWatchBackend.get_all_metrics, CloudWatchBackend.get_metric_statistics

    def get_all_metrics(self):
        found, wanted = all_metrics(self), getattr(asked, "dimensions", None)
        if wanted is None:
            return found
        return [m for m in found if frozenset((d.name, d.value) for d in m.dimensions) == wanted]

    def get_metric_statistics(self, namespace, metric_name, start_time, end_time, period, stats, dimensions, unit=None):
        asked.dimensions = frozenset((d["Name"], d.get("Value")) for d in dimensions or [])
        try:
            return statistics(self, namespace, metric_name, start_time, end_time, period, stats, [], unit)
        finally:
            asked.dimensions = None

    replace(CloudWatchBackend, "get_all_metrics", get_all_metrics)
    replace(CloudWatchBackend, "get_metric_statistics", get_metric_statistics)


def _cloudwatch_logs_as_aws() -> None:
    """PutLogEvents and FilterLogEvents as AWS answers them.

    PutLogEvents refuses a batch over AWS's limits (10,000 events; 1,048,576
    bytes, each message's UTF-8 bytes plus 26; more than 24 hours between its
    first and last event), as moto 5.2 does not, so a shipper that breaks
    them fails here too. FilterLogEvents honours ``logStreamNamePrefix``
    (moto ignores it and returns every stream) and always interleaves the
    streams by time (AWS ignores ``interleaved=false`` since 2019). Both run
    under one lock: moto's event ids come from an unlocked class counter, and
    every instance of the live stack writes at once.
    """
    import json
    import threading

    from moto.logs.exceptions import InvalidParameterException
    from moto.logs.models import LogsBackend
    from moto.logs.responses import LogsResponse

    lock = threading.Lock()
    put = LogsBackend.put_log_events

    def put_log_events(self, log_group_name, log_stream_name, log_events):
        size = sum(len(e["message"].encode()) + 26 for e in log_events)
        if len(log_events) > 10_000:
            raise InvalidParameterException(
                constraint="Member must have length less than or equal to 10000",
                parameter="logEvents",
                value=len(log_events),
            )
        if size > 1_048_576:
            raise InvalidParameterException(
                f"Log events in a single PutLogEvents request cannot exceed 1048576 bytes (got {size})."
            )
        if log_events and log_events[-1]["timestamp"] - log_events[0]["timestamp"] > 24 * 3600 * 1000:
            raise InvalidParameterException(
                "The batch of log events in a single PutLogEvents request cannot span more than 24 hours."
            )
        with lock:
            return put(self, log_group_name, log_stream_name, log_events)

    def filter_log_events(self):
        group_name, names = self._get_param("logGroupName"), self._get_param("logStreamNames", [])
        prefix = self._get_param("logStreamNamePrefix")
        if prefix and names:
            raise InvalidParameterException("logStreamNames and logStreamNamePrefix cannot both be specified.")
        group = self.logs_backend.groups.get(group_name)
        if prefix and group is not None:
            names = [n for n in group.streams if n.startswith(prefix)]
            if not names:
                return json.dumps({"events": [], "searchedLogStreams": []})
        with lock:
            events, token, searched = self.logs_backend.filter_log_events(
                group_name,
                names,
                self._get_param("startTime"),
                self._get_param("endTime"),
                self._get_param("limit"),
                self._get_param("nextToken"),
                self._get_param("filterPattern"),
                True,
            )
        return json.dumps({"events": events, "nextToken": token, "searchedLogStreams": searched})

    replace(LogsBackend, "put_log_events", put_log_events)
    replace(LogsResponse, "filter_log_events", filter_log_events)


def _zones_balanced() -> None:
    """Auto Scaling groups launch in, and scale in from, their zones as EC2 Auto Scaling does (``toolkit.local.zones``).

    moto 5.2.6 launches every instance of a group in the first of its
    subnets and, scaling in, terminates the first instances it holds: a group
    over two zones' subnets ran in one zone, and losing that zone lost it all.
    Its instances' ``aws:ec2launchtemplate:version`` tag named the template's
    default version, not the group's (which the policy reads): it names the
    version launched, as on AWS. (DescribeAutoScalingGroups still reports the
    default version for each instance.)
    """
    from moto.autoscaling.models import FakeAutoScalingGroup

    launch, resize = FakeAutoScalingGroup.replace_autoscaling_group_instances, FakeAutoScalingGroup.set_desired_capacity

    def replace_autoscaling_group_instances(self, count_needed: int, propagated_tags: dict) -> None:
        subnets, before = group_subnets(self), {state.instance.id for state in self.instance_states}
        if not subnets:  # a group by zones alone (no VPC): moto's own placement
            launch(self, count_needed, propagated_tags)
        else:
            listed = self.vpc_zone_identifier
            try:
                lost = zones.lost_zones(LIVE_DIR)
                for subnet in zones.launch_subnets(subnets, group_members(self), count_needed, lost):
                    self.vpc_zone_identifier = subnet  # moto launches in the first subnet the group lists
                    launch(self, 1, dict(propagated_tags))
            finally:
                self.vpc_zone_identifier = listed
        if self.ec2_launch_template is not None:
            # moto launches with the template's default version's number in the instance's tag (its AMI and user
            # data are the group's version's): AWS tags the version it launched
            number = self.ec2_launch_template.get_version(self.launch_template_version).number
            new = [state.instance.id for state in self.instance_states if state.instance.id not in before]
            if new:
                self.autoscaling_backend.ec2_backend.create_tags(new, {"aws:ec2launchtemplate:version": str(number)})

    def set_desired_capacity(self, new_capacity: int | None) -> None:
        wanted = self.min_size if new_capacity is None else new_capacity
        surplus = len(self.active_instances()) - (wanted or 0)
        if surplus > 0 and not self.mixed_instances_policy:
            template = self.ec2_launch_template.id if self.ec2_launch_template else None
            first = {iid: i for i, iid in enumerate(zones.termination_order(group_members(self), surplus, template))}
            # moto ends the first unprotected instances it holds: these, in this order
            self.instance_states.sort(key=lambda state: first.get(state.instance.id, len(first)))
        resize(self, new_capacity)

    replace(FakeAutoScalingGroup, "replace_autoscaling_group_instances", replace_autoscaling_group_instances)
    replace(FakeAutoScalingGroup, "set_desired_capacity", set_desired_capacity)


def group_subnets(group) -> list[tuple[str, str]]:
    """A moto group's (subnet, zone) pairs, in the order it lists them."""
    ec2 = group.autoscaling_backend.ec2_backend
    listed = [s for s in (group.vpc_zone_identifier or "").split(",") if s]
    return [(subnet, ec2.get_subnet(subnet).availability_zone) for subnet in listed]


def group_members(group) -> list[zones.Member]:
    """A moto group's InService instances as the termination policy sees them."""
    from moto.core.utils import utcnow

    ec2, now, found = group.autoscaling_backend.ec2_backend, utcnow(), []
    for state in group.active_instances():
        inst = state.instance
        tags = ec2.tags.get(inst.id, {})  # moto's own index (its get_tags scans every resource's tags)
        version = tags.get("aws:ec2launchtemplate:version")
        found.append(
            zones.Member(
                id=inst.id,
                zone=ec2.get_subnet(inst.subnet_id).availability_zone
                if inst.subnet_id
                else inst.availability_zone or "",
                template=tags.get("aws:ec2launchtemplate:id"),
                version=int(version) if version and version.isdigit() else None,
                age=(now - inst.launch_time).total_seconds(),
                protected=bool(state.protected_from_scale_in),
            )
        )
    return found


def _scaling_names_per_group() -> None:
    """Scheduled action and scaling policy names are unique per Auto Scaling group, as on AWS.

    moto 5.2 keys both by name alone, so ``rodeo-night`` put on a second group
    replaces the first group's, and DeletePolicy ignores the group it is given.
    """
    from moto.autoscaling.exceptions import ValidationError
    from moto.autoscaling.models import AutoScalingBackend
    from moto.autoscaling.responses import AutoScalingResponse
    from moto.core.responses import EmptyResult

    put_action, put_policy = AutoScalingBackend.put_scheduled_update_group_action, AutoScalingBackend.put_scaling_policy

    def put_scheduled_update_group_action(self, name, *args, **kwargs):
        action = put_action(self, name, *args, **kwargs)
        self.scheduled_actions.pop(action.scheduled_action_name, None)
        self.scheduled_actions[(name, action.scheduled_action_name)] = action
        return action

    def delete_scheduled_action(self, auto_scaling_group_name, scheduled_action_name):
        if self.scheduled_actions.pop((auto_scaling_group_name, scheduled_action_name), None) is None:
            raise ValidationError("Scheduled action name not found")

    def put_scaling_policy(self, name, *args, **kwargs):
        policy = put_policy(self, name, *args, **kwargs)
        self.policies.pop(name, None)
        self.policies[(policy.auto_scaling_group_name, name)] = policy
        return policy

    def delete_policy(self, group_name, policy_name):
        for key, policy in list(self.policies.items()):
            if policy_name in (policy.name, policy.arn) and group_name in (None, policy.auto_scaling_group_name):
                del self.policies[key]

    def execute_policy(self, policy_name):
        next(p for p in self.policies.values() if policy_name in (p.name, p.arn)).execute()

    def delete_policy_response(self):
        self.autoscaling_backend.delete_policy(self._get_param("AutoScalingGroupName"), self._get_param("PolicyName"))
        return EmptyResult()

    replace(AutoScalingBackend, "put_scheduled_update_group_action", put_scheduled_update_group_action)
    replace(AutoScalingBackend, "delete_scheduled_action", delete_scheduled_action)
    replace(AutoScalingBackend, "put_scaling_policy", put_scaling_policy)
    replace(AutoScalingBackend, "delete_policy", delete_policy)
    replace(AutoScalingBackend, "execute_policy", execute_policy)
    replace(AutoScalingResponse, "delete_policy", delete_policy_response)


def _standard_tier_value_limit() -> None:
    """PutParameter refuses a value over 4 KB in the standard tier, as SSM does (moto 5.2 stores any size)."""
    from moto.ssm.exceptions import ValidationException
    from moto.ssm.models import SimpleSystemManagerBackend

    original = SimpleSystemManagerBackend.put_parameter

    def put_parameter(
        self,
        name,
        description,
        value,
        parameter_type,
        allowed_pattern,
        keyid,
        overwrite,
        tags,
        data_type,
        tier,
        policies,
    ):
        standard = (tier or self.default_parameter_tier) == "Standard"
        if standard and value is not None and len(value) > 4096:
            raise ValidationException(
                "Standard tier parameters support a maximum parameter value of 4096 characters. To create a larger "
                "parameter value, upgrade the parameter to use the advanced-parameter tier. For more information, "
                "see https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-advanced-parameters.html"
            )
        return original(
            self,
            name,
            description,
            value,
            parameter_type,
            allowed_pattern,
            keyid,
            overwrite,
            tags,
            data_type,
            tier,
            policies,
        )

    replace(SimpleSystemManagerBackend, "put_parameter", put_parameter)


def _custom_network_ids() -> None:
    """CreateSubnet and CreateSecurityGroup honour moto's ``_custom_id_`` tag (moto 5.2.6's EC2 ignores it)."""
    import threading

    from moto.ec2.models import security_groups, subnets

    wanted = threading.local()

    def custom_id(tags) -> str | None:
        tags = tags or {}
        flat = next((v for v in tags.values() if isinstance(v, dict)), tags)
        return flat.get("_custom_id_")

    for module, random_name, backend, create in (
        (subnets, "random_subnet_id", subnets.SubnetBackend, "create_subnet"),
        (security_groups, "random_security_group_id", security_groups.SecurityGroupBackend, "create_security_group"),
    ):
        make_id, original = getattr(module, random_name), getattr(backend, create)
        replace(module, random_name, lambda make_id=make_id: getattr(wanted, "id", None) or make_id())

        def created(self, *args, original=original, **kwargs):
            wanted.id = custom_id(kwargs.get("tags"))
            try:
                return original(self, *args, **kwargs)
            finally:
                wanted.id = None

        replace(backend, create, created)


def _pending_until_booted(controller) -> None:
    """RunInstances (and an ASG's launches) of a locally bootable AMI start ``pending``."""
    from moto.ec2.models.instances import InstanceBackend

    original = InstanceBackend.run_instances

    def run_instances(self, *args, **kwargs):
        reservation = original(self, *args, **kwargs)
        for inst in reservation.instances:
            if controller.manages(inst) and not controller.bake_of(
                inst
            ):  # a build instance is running at once, as on EC2
                inst._state.name, inst._state.code = "pending", 0
        return reservation

    replace(InstanceBackend, "run_instances", run_instances)


def _register_pending_targets() -> None:
    """RegisterTargets accepts a pending instance, as AWS does (an ASG registers its launches at once)."""
    from moto.elbv2.exceptions import TargetNotRunning
    from moto.elbv2.models import FakeTargetGroup

    def register(self, targets):
        for target in targets:
            instance = self.ec2_backend.get_instance_by_id(target["Id"])
            if instance is not None and instance.state not in ("pending", "running"):
                raise TargetNotRunning(instance_id=target["Id"])
            self.targets[target["Id"]] = {"Id": target["Id"], "Port": target.get("Port", self.port)}
            self.deregistered_targets.pop(target["Id"], None)

    replace(FakeTargetGroup, "register", register)


def _deregistered_targets_drain_at_once(controller) -> None:
    """A deregistered target (DeregisterTargets, or its instance terminated) gets no new request once moto answers."""
    from moto.elbv2.models import FakeTargetGroup

    deregister = FakeTargetGroup.deregister
    deregister_terminated = FakeTargetGroup.deregister_terminated_instances

    def deregister_now(self, targets):
        deregister(self, targets)
        controller.deregistered(self.arn, {t["Id"] for t in targets})

    def deregister_terminated_now(self, instance_ids):
        before = set(self.targets)
        deregister_terminated(self, instance_ids)
        controller.deregistered(self.arn, before - set(self.targets))

    replace(FakeTargetGroup, "deregister", deregister_now)
    replace(FakeTargetGroup, "deregister_terminated_instances", deregister_terminated_now)


def _live_target_health(controller) -> None:
    """describe_target_health answers from HAProxy's checks for the targets the stack serves."""
    from moto.elbv2 import models

    from toolkit.local.health import INITIAL

    health_for = models.FakeTargetGroup.health_for
    describe = models.ELBv2Backend.describe_target_health

    def live_health_for(self, target, ec2_backend):
        answer = controller.health_of(self.arn, target["Id"])
        if answer is None:
            instance = ec2_backend.get_instance_by_id(target["Id"]) if target["Id"].startswith("i-") else None
            if instance is None or target["Id"] not in self.targets or not controller.manages(instance):
                return health_for(self, target, ec2_backend)
            answer = INITIAL  # registered a moment ago: the controller has not seen it yet
        registered = self.targets.get(target["Id"]) or {}
        port = registered.get("Port") or target.get("Port") or self.port
        return models.FakeHealthStatus(target["Id"], port, self.health_check_port, *answer)

    def live_describe(self, target_group_arn, targets):
        group = self.target_groups.get(target_group_arn)
        if not targets and group is not None:
            targets = list(group.targets.values())
            targets += [t for t in controller.draining_targets(target_group_arn) if t["Id"] not in group.targets]
        return describe(self, target_group_arn, targets)

    replace(models.FakeTargetGroup, "health_for", live_health_for)
    replace(models.ELBv2Backend, "describe_target_health", live_describe)


def _copies_boot_as_their_source(store) -> None:
    """A copy of an AMI (CopyImage, another region) has the source's local image: the live stack boots it.

    On EC2 a copy's snapshots hold the source's disk; moto's copy is metadata
    only, and the stack boots an AMI from its layers in the image store. (A
    Packer copy is recorded by the bake itself: ``toolkit.local.hosts``.)
    """
    from moto.ec2.models.amis import AmiBackend

    original = AmiBackend.copy_image

    def copy_image(self, source_image_id, source_region, name=None, description=None):
        image = original(self, source_image_id, source_region, name, description)
        if store is not None and store.has(source_image_id):
            store.add(image.id, store.layers(source_image_id))
        return image

    replace(AmiBackend, "copy_image", copy_image)


def _private_folder(path: Path) -> None:
    """A tmpfs of this mount namespace's own on ``path`` (the host sees an empty folder)."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=700", "tmpfs", str(path)], check=True, timeout=30)


def _go_live(live_dir: Path, images: Path, run_dir: Path, port: int | None = None):
    """Start the controller; SIGTERM powers every instance off and stops HAProxy first."""
    if os.getpid() != 1:
        raise SystemExit(
            "--live needs its own mount and PID namespaces: run it under 'unshare --mount --pid --fork --kill-child --propagation private --mount-proc'"
        )
    from moto import server as moto_server

    from toolkit.local.controller import Controller
    from toolkit.local.store import ImageStore

    global LIVE_DIR
    LIVE_DIR = live_dir
    _private_folder(Path("/run/netns"))
    _private_folder(run_dir)
    controller = Controller(live_dir, ImageStore(images), run_dir, aws_port=port)
    _copies_boot_as_their_source(controller.store)
    motostate.one_request_at_a_time()  # the controller's threads share moto's state with its requests
    _pending_until_booted(controller)
    _register_pending_targets()
    _live_target_health(controller)
    _deregistered_targets_drain_at_once(controller)
    classicpatches.live(controller)  # DescribeInstanceHealth and detached ELBs from HAProxy's checks and drains

    def stop(signum, frame):
        controller.stop()
        os._exit(0)

    # moto's main installs its own handler for both (sys.exit: the controller's thread died with the process, and
    # no instance was powered off): it installs whatever its module's name holds when it starts.
    moto_server.signal_handler = stop
    controller.start()
    return controller


def main(argv: list[str] | None = None) -> None:
    """Start moto's server (same flags as ``moto_server``, plus ``--live DIR --images DIR``)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--live", type=Path)
    parser.add_argument("--images", type=Path)
    parser.add_argument("--run-dir", type=Path, default=Path("/run/rodeo-live"))
    ours, args = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    _moto_modules_listed_once()
    _requests_without_rescans()
    _ebs_backed_amis()
    _atomic_dynamodb_requests()
    _idempotent_launch_template_versions()
    _user_data_in_launch_template_versions()
    _exact_dimensions_in_statistics()
    _cloudwatch_logs_as_aws()
    _scaling_names_per_group()
    _zones_balanced()
    _standard_tier_value_limit()
    auth.enforce()  # IAM from the first request (toolkit.local.auth)
    classicpatches.attachments_as_aws()  # Classic ELBs and their Auto Scaling attachments as AWS keeps them
    classicpatches.instance_health_as_aws()  # before awsrules: its checks wrap these answers
    awsrules.apply()  # AWS's rules moto skips: on in every local stack
    _custom_network_ids()
    iamsim.install()  # iam:SimulatePrincipalPolicy and ec2:GetEbsDefaultKmsKeyId, for invoke doctor
    if ours.live is not None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
        port = argparse.ArgumentParser(add_help=False)
        port.add_argument("-p", "--port", type=int)
        _go_live(ours.live, ours.images, ours.run_dir, port.parse_known_args(args)[0].port)
    from moto.server import main as moto_main

    moto_main(args)


if __name__ == "__main__":
    main()
