"""moto's Classic ELB (API ``elb``) and its Auto Scaling attachments, changed to behave as AWS's (moto 5.2.6).

Every change is listed in ``toolkit.local.motopatches.PATCHES``:

- ``attachments_as_aws`` (every stack): an Auto Scaling group registers
  and deregisters only its own instances with its Classic ELBs (moto's
  ``update_attached_elbs`` deregistered every other group's instances from
  a shared ELB, so attaching a second group emptied it of the first); a
  detached ELB is ``Removing`` while the group's instances deregister,
  then gone from DescribeLoadBalancers (moto drops it at once and answers
  ``Added`` for every attachment); an ELB attached by AttachLoadBalancers
  is ``Adding``, ``Added``, then ``InService`` once one of the group's
  instances passed its check (``toolkit.local.classic.attachment_state``).
- ``instance_health_as_aws`` (every stack): DescribeInstanceHealth says
  AWS's ``ReasonCode`` and ``Description`` (moto: ``N/A`` for all) and
  leaves out terminated instances; a registered instance is
  ``OutOfService`` until its checks could have passed (``HealthyThreshold``
  x ``Interval``, scaled as ``toolkit.local.awsrules.health_scale``), where
  moto answers ``InService`` at once; RegisterInstancesWithLoadBalancer
  registers an instance once (moto listed it again at each call), and it
  and DeregisterInstancesFromLoadBalancer answer the instances registered
  (moto's answer read as none). Installed before ``toolkit.local.awsrules``,
  whose checks wrap these answers.
- ``live`` (the live stack): both answer from the controller
  (``toolkit.local.controller``): HAProxy's checks, and the draining of
  the detached group's instances.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from toolkit.local import classic, health
from toolkit.local.motopatches import replace

Key = tuple[int, str, str]  # (id of moto's Auto Scaling backend, group name, ELB name)
_VIA_ATTACH: dict[Key, bool] = {}  # attachments made by AttachLoadBalancers -> described once already
_OWNED: dict[Key, set[str]] = {}  # the instances a group registered with an ELB
_REMOVING: dict[Key, tuple[str, set[str], bool]] = {}  # detached: (ELB ARN, its instances, described once)
_REGISTERED: dict[tuple[str, str], float] = {}  # (ELB ARN, instance id) -> when it was registered (monotonic)
# The live stack's answers: "health" (ARN, id) -> answer or None, "draining" ARN -> ids, "serving" (ARN, ids) -> one
# of them is still served (draining), "manages" moto instance -> the stack boots it.
_LIVE: dict[str, Callable] = {}


def live(controller: Any) -> None:
    """The live stack answers: HAProxy's checks for instance health, its drains for a detached group."""
    _LIVE.update(
        health=controller.classic_health_of,
        draining=controller.classic_draining,
        serving=controller.classic_serving,
        manages=controller.manages,
    )


def made_with_group(asg_backend: Any, group_name: str, name: str) -> bool:
    """True when the group has ELB ``name`` from its start (CreateAutoScalingGroup), not from AttachLoadBalancers."""
    return (id(asg_backend), group_name, name) not in _VIA_ATTACH


def _elb_arn(asg_backend: Any, name: str) -> str:
    return classic.arn_of(asg_backend.account_id, asg_backend.region_name, name)


def attachments_as_aws() -> None:
    """AttachLoadBalancers, DetachLoadBalancers and DescribeLoadBalancers of Auto Scaling as AWS runs them (see above)."""
    from moto.autoscaling.models import AutoScalingBackend
    from moto.autoscaling.responses import AutoScalingResponse
    from moto.core.responses import ActionResult

    def update_attached_elbs(self: Any, group_name: str) -> None:
        group = self.autoscaling_groups[group_name]
        active = {state.instance.id for state in group.active_instances()}
        for name in list(group.load_balancer_names):
            elb = self.elb_backend.get_load_balancer(name)
            if elb is None:  # deleted before its group
                continue
            key = (id(self), group_name, name)
            gone = (_OWNED.get(key, set()) - active) & set(elb.instance_autoscaling_ids)
            new = sorted(active - set(elb.instance_ids))
            if new:
                self.elb_backend.register_instances(name, new, from_autoscaling=True)
            if gone:
                self.elb_backend.deregister_instances(name, gone, from_autoscaling=True)
            _OWNED[key] = active

    def attach_load_balancers(self: Any, group_name: str, load_balancer_names: list[str]) -> None:
        group = self.autoscaling_groups[group_name]
        for name in load_balancer_names:
            key = (id(self), group_name, name)
            _REMOVING.pop(key, None)
            if name not in group.load_balancer_names:
                group.load_balancer_names.append(name)
                _VIA_ATTACH[key] = False
        self.update_attached_elbs(group_name)

    def detach_load_balancers(self: Any, group_name: str, load_balancer_names: list[str]) -> None:
        group = self.autoscaling_groups[group_name]
        for name in [n for n in load_balancer_names if n in group.load_balancer_names]:
            key = (id(self), group_name, name)
            owned = _OWNED.pop(key, set())
            elb = self.elb_backend.get_load_balancer(name)
            if elb is not None:
                mine = owned & set(elb.instance_autoscaling_ids)
                self.elb_backend.deregister_instances(name, mine, from_autoscaling=True)
                _REMOVING[key] = (_elb_arn(self, name), mine, False)
            group.load_balancer_names.remove(name)
            _VIA_ATTACH.pop(key, None)

    def describe_load_balancers(self: Any) -> ActionResult:
        backend = self.autoscaling_backend
        group_name = self._get_param("AutoScalingGroupName")
        group = backend.autoscaling_groups[group_name]
        active = [state.instance.id for state in group.active_instances()]
        found = []
        for name in list(group.load_balancer_names):
            key = (id(backend), group_name, name)
            arn = _elb_arn(backend, name)
            state = classic.attachment_state(
                removing=False,
                described=_VIA_ATTACH.get(key, True),
                at_create=key not in _VIA_ATTACH,
                elb_checks=(group.health_check_type or "EC2") == "ELB",
                any_in_service=any(in_service(backend.elb_backend, name, arn, iid) for iid in active),
            )
            if key in _VIA_ATTACH:
                _VIA_ATTACH[key] = True
            found.append({"LoadBalancerName": name, "State": state})
        for key, (arn, ids, described) in list(_REMOVING.items()):
            if key[:2] != (id(backend), group_name):
                continue
            if _still_removing(arn, ids, described):
                _REMOVING[key] = (arn, ids, True)
                found.append({"LoadBalancerName": key[2], "State": classic.REMOVING})
            else:
                del _REMOVING[key]
        return ActionResult({"LoadBalancers": found})

    replace(AutoScalingBackend, "update_attached_elbs", update_attached_elbs)
    replace(AutoScalingBackend, "attach_load_balancers", attach_load_balancers)
    replace(AutoScalingBackend, "detach_load_balancers", detach_load_balancers)
    replace(AutoScalingResponse, "describe_load_balancers", describe_load_balancers)


def _still_removing(arn: str, ids: set[str], described: bool) -> bool:
    """The live stack: while one of ``ids`` still drains (or is served); else ``Removing`` at the first look only."""
    if "serving" in _LIVE:
        return bool(_LIVE["serving"](arn, ids))
    return not described


def in_service(elb_backend: Any, name: str, arn: str, instance_id: str) -> bool:
    """True when the ELB ``name`` reports ``instance_id`` InService."""
    elb = elb_backend.get_load_balancer(name)
    return elb is not None and instance_health(elb_backend, elb, arn, instance_id)[0] == "InService"


def instance_health(elb_backend: Any, elb: Any, arn: str, instance_id: str, scale: float | None = None) -> tuple:
    """``(State, ReasonCode, Description)`` of one instance: the live stack's answer, else from its registration time."""
    from moto.ec2.models import ec2_backends

    from toolkit.local.awsrules import health_scale, time_to_healthy

    registered = instance_id in elb.instance_ids
    answer = _LIVE["health"](arn, instance_id) if "health" in _LIVE else None
    if answer is not None and not registered:  # draining while HAProxy serves it (the last poll may be older)
        return health.DEREGISTERING if _LIVE["serving"](arn, {instance_id}) else health.NOT_REGISTERED
    if answer == health.DEREGISTERING and registered:  # registered again since the last poll
        return health.REGISTERING
    if answer is not None:
        return answer
    inst = ec2_backends[elb_backend.account_id][elb_backend.region_name].get_instance_by_id(instance_id)
    if not registered:
        return health.NOT_REGISTERED
    if inst is not None and inst.state == "running" and "manages" in _LIVE and _LIVE["manages"](inst):
        return health.REGISTERING  # booted a moment ago: the controller has not served it yet
    state = inst.state if inst is not None else "terminated"
    if state != "running":
        return {"pending": health.PENDING, "stopping": health.STOPPED_INSTANCE, "stopped": health.STOPPED_INSTANCE}.get(
            state, health.TERMINATED
        )
    check = elb.health_check
    interval = int(check.interval) if check is not None else classic.DEFAULT_CHECK["Interval"]
    rise = int(check.healthy_threshold) if check is not None else classic.DEFAULT_CHECK["HealthyThreshold"]
    _, healthy_after = time_to_healthy(interval, rise, health_scale() if scale is None else scale)
    at = _REGISTERED.get((arn, instance_id))
    if at is not None and time.monotonic() - at < healthy_after:
        return health.REGISTERING
    return health.IN_SERVICE


def instance_health_as_aws() -> None:
    """DescribeInstanceHealth in AWS's words, and registration that lists an instance once (see above)."""
    from moto.core.responses import ActionResult
    from moto.ec2.models import ec2_backends
    from moto.elb.exceptions import NoActiveLoadBalancerFoundError
    from moto.elb.models import ELBBackend
    from moto.elb.responses import ELBResponse

    register = ELBBackend.register_instances

    def register_instances(self: Any, load_balancer_name: str, instance_ids: Any, from_autoscaling: bool = False):
        elb = self.get_load_balancer(load_balancer_name)
        new = [i for i in dict.fromkeys(instance_ids) if elb is not None and i not in elb.instance_ids]
        now = time.monotonic()
        for iid in new:
            _REGISTERED[(classic.arn_of(self.account_id, self.region_name, load_balancer_name), iid)] = now
        return register(self, load_balancer_name, new, from_autoscaling)

    def describe_instance_health(self: Any) -> ActionResult:
        backend = self.elb_backend
        name = self._get_param("LoadBalancerName")
        elb = backend.get_load_balancer(name)
        if elb is None:
            raise NoActiveLoadBalancerFoundError(name=name)
        arn = classic.arn_of(backend.account_id, backend.region_name, name)
        asked = [i["InstanceId"] for i in self._get_param("Instances", []) or []]
        draining = list(_LIVE["draining"](arn)) if "draining" in _LIVE else []
        ids = asked or list(dict.fromkeys([*elb.instance_ids, *draining]))
        ec2 = ec2_backends[backend.account_id][backend.region_name]
        states = []
        for iid in ids:
            inst = ec2.get_instance_by_id(iid)
            if inst is None or inst.state == "terminated":  # "The state of terminated instances is not returned."
                continue
            state, reason, description = instance_health(backend, elb, arn, iid)
            states.append({"InstanceId": iid, "State": state, "ReasonCode": reason, "Description": description})
        return ActionResult({"InstanceStates": states})

    def instances_now(change: Callable) -> Callable:
        def answer(self: Any) -> ActionResult:
            name = self._get_param("LoadBalancerName")
            ids = [i["InstanceId"] for i in self._get_param("Instances", []) or []]
            elb = change(self.elb_backend, name, ids)
            return ActionResult({"Instances": [{"InstanceId": i} for i in dict.fromkeys(elb.instance_ids)]})

        return answer

    replace(ELBBackend, "register_instances", register_instances)
    replace(ELBResponse, "describe_instance_health", describe_instance_health)
    # Both answer the instances registered now, as AWS does (moto's answer nests a list, which clients read as none).
    replace(ELBResponse, "register_instances_with_load_balancer", instances_now(ELBBackend.register_instances))
    replace(ELBResponse, "deregister_instances_from_load_balancer", instances_now(ELBBackend.deregister_instances))
