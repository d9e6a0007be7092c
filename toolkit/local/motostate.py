"""Moto's state as the live stack reads and changes it (in moto's own process).

``read_moto`` copies what the controller needs from every account and
region: instances, target groups and HTTP listeners, Classic ELBs; the other functions read
a target group's settings or change an instance's state the way EC2 shows it.

moto has no lock over its backends (5.2.6: ``backend_lock`` guards only
making a region's backend), and its server answers each request on a thread
of its own, while the live stack's controller, metadata services and monitor
read and change the same dicts from theirs. So ``one_request_at_a_time``
makes every request to a service whose state they share (``SHARED``) run
under ``LOCK``, and they take ``LOCK`` too: a read never sees a request half
done, and never meets "dictionary changed size during iteration". Services
outside ``SHARED`` (SQS's long polls among them) are not held up.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field

from toolkit.local.balancer import Check
from toolkit.local.classic import arn_of
from toolkit.local.listenerrules import Rule, rule_of


@dataclass
class World:
    """What moto holds now (every account and region)."""

    instances: dict  # id -> moto Instance
    target_groups: dict  # ARN -> FakeTargetGroup
    listeners: dict  # ARN -> (FakeLoadBalancer, FakeListener)
    in_use: set  # ARNs of target groups some listener forwards to (its default action or a rule)
    classics: dict = field(default_factory=dict)  # ARN -> moto's Classic ELB (``toolkit.local.classic``)


# moto's services (a request's Flask app's ``service``) whose state the live stack reads or changes, or that change it.
# s3: the access logs the controller writes (toolkit.local.accesslogs) while a release lists and reads them.
SHARED = frozenset(
    {"ec2", "elb", "elbv2", "autoscaling", "cloudwatch", "iam", "sts", "cloudformation", "moto_api", "s3"}
)
LOCK = threading.RLock()


def one_request_at_a_time() -> None:
    """moto's server answers a request to a ``SHARED`` service under ``LOCK`` (call before it starts)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    from toolkit.local.motopatches import replace

    replace(DomainDispatcherApplication, "__call__", locked(DomainDispatcherApplication.__call__))


def locked(call):
    """``DomainDispatcherApplication.__call__`` holding ``LOCK`` while a ``SHARED`` service answers."""

    def dispatch(self, environ, start_response):
        app = self.get_application(environ)
        if getattr(app, "service", None) not in SHARED:
            return app(environ, start_response)
        with LOCK:
            return app(environ, start_response)

    dispatch.unlocked = call
    return dispatch


def read_moto() -> World:
    """A copy of moto's EC2 and ELBv2 containers, read between two requests (under ``LOCK``)."""
    with LOCK:
        return _read_moto()


def _read_moto() -> World:
    from moto.ec2.models import ec2_backends
    from moto.elb.models import elb_backends
    from moto.elbv2.models import elbv2_backends

    found: dict = {}
    for account in list(dict.values(ec2_backends)):
        for backend in list(dict.values(account)):
            for reservation in list(backend.reservations.values()):
                for inst in list(reservation.instances):
                    found[inst.id] = inst
    groups, listeners, in_use = {}, {}, set()
    for account in list(dict.values(elbv2_backends)):
        for backend in list(dict.values(account)):
            groups.update(backend.target_groups)
            for lb in list(backend.load_balancers.values()):
                for arn, listener in list(lb.listeners.items()):
                    if (listener.protocol or "HTTP") in ("HTTP", "HTTPS"):
                        listeners[arn] = (lb, listener)
                        in_use.update(forwarded(listener))
    classics = {
        arn_of(backend.account_id, backend.region_name, lb.name): lb
        for account in list(dict.values(elb_backends))
        for backend in list(dict.values(account))
        for lb in list(backend.load_balancers.values())
    }
    return World(found, groups, listeners, in_use, classics)


def forward_weights(listener, world: World | None) -> list[tuple[str, int]]:
    """The default forward action as [(target group ARN or backend name, weight)]: names when ``world`` is given."""
    pairs = _forwards(listener.default_actions)
    if world is None:
        return pairs
    return [(backend_name(world.target_groups[a]), w) for a, w in pairs if a in world.target_groups]


def forwarded(listener) -> list[str]:
    """The ARNs of the target groups ``listener`` forwards to: its default action's, then its rules'."""
    pairs = forward_weights(listener, None) + [p for rule in listener_rules(listener) for p in _forwards(rule.actions)]
    return list(dict.fromkeys(arn for arn, _ in pairs))


def listener_rules(listener) -> list:
    """moto's rules of ``listener`` other than its default one, lowest priority first."""
    rules = [r for r in list(listener.rules.values()) if not getattr(r, "is_default", False)]
    return sorted(rules, key=lambda r: int(r.priority))


def rules_of(listener, world: World) -> tuple[tuple[Rule, list[tuple[str, int]]], ...]:
    """The rules the live stack serves, each with its forward's [(backend name, weight)], in priority order.

    A rule with a condition or an action the stack does not serve is left out
    (``toolkit.local.listenerrules``).
    """
    out = []
    for found in listener_rules(listener):
        types = [a.type for a in found.actions]
        rule = rule_of(f"r{int(found.priority)}-{short(found.arn)}", int(found.priority), list(found.conditions or []))
        if rule is None or "forward" not in types or set(types) - {"forward"}:
            continue
        pairs = _forwards(found.actions)
        out.append((rule, [(backend_name(world.target_groups[a]), w) for a, w in pairs if a in world.target_groups]))
    return tuple(out)


def _forwards(actions) -> list[tuple[str, int]]:
    """The first forward action of ``actions`` as [(target group ARN, weight)]."""
    action = next((a for a in actions if a.type == "forward"), None)
    if action is None:
        return []
    data = action.data
    pairs = [
        (t["TargetGroupArn"], int(t.get("Weight", 1))) for t in data.get("ForwardConfig", {}).get("TargetGroups", [])
    ]
    if not pairs and data.get("TargetGroupArn"):
        pairs = [(data["TargetGroupArn"], 1)]
    return pairs


def group_stickiness(listener) -> int:
    """Seconds of target group stickiness on the listener's forward action (``TargetGroupStickinessConfig``); 0: off."""
    action = next((a for a in listener.default_actions if a.type == "forward"), None)
    config = (
        (action.data.get("ForwardConfig") or {}).get("TargetGroupStickinessConfig") or {} if action is not None else {}
    )
    if str(config.get("Enabled", False)).lower() != "true":
        return 0
    return int(config.get("DurationSeconds") or 3600)


def target_stickiness(tg) -> int:
    """Seconds of a target group's ``lb_cookie`` stickiness (its attributes); 0: off or another type."""
    attributes = tg.attributes
    if (
        str(attributes.get("stickiness.enabled", "false")).lower() != "true"
        or attributes.get("stickiness.type", "lb_cookie") != "lb_cookie"
    ):
        return 0
    return int(attributes.get("stickiness.lb_cookie.duration_seconds") or 86400)


def backend_name(tg) -> str:
    return f"tg-{tg.name}-{short(tg.arn)}"


def short(arn: str) -> str:
    return hashlib.sha256(arn.encode()).hexdigest()[:6]


def check_of(tg) -> Check:
    """A target group's health check settings."""
    return Check(
        path=tg.health_check_path or "/",
        interval=int(tg.health_check_interval_seconds),
        timeout=int(tg.health_check_timeout_seconds),
        rise=int(tg.healthy_threshold_count),
        fall=int(tg.unhealthy_threshold_count),
        matcher=str((getattr(tg, "matcher", None) or {}).get("HttpCode", "200")),
        enabled=bool(tg.health_check_enabled),
    )


def drain_seconds(tg) -> int:
    return int(tg.attributes.get("deregistration_delay.timeout_seconds", 300))


def forget_target(tg, instance_id: str, world: World) -> None:
    """After its drain, a target of a terminated instance leaves its group (an ASG deregisters before it terminates)."""
    inst = world.instances.get(instance_id)
    if tg is None or inst is None or inst.state not in ("shutting-down", "terminated"):
        return
    with LOCK:
        target = tg.targets.pop(instance_id, None)
        if target is not None:
            tg.deregistered_targets[instance_id] = target


def zone_of(inst) -> str:
    """The Availability Zone a moto instance runs in: its subnet's (else its placement's)."""
    from moto.ec2.exceptions import InvalidSubnetIdError

    if inst.subnet_id:
        try:
            return inst.ec2_backend.get_subnet(inst.subnet_id).availability_zone
        except InvalidSubnetIdError:  # the subnet is gone: the placement still says
            pass
    return inst.availability_zone or ""


def set_state(inst, name: str, code: int, reason: tuple[str, str] | None = None) -> None:
    """Set a moto instance's state (and state reason) as EC2 would show it."""
    from moto.ec2.models.instances import StateReason

    with LOCK:
        inst._state.name, inst._state.code = name, code
        if reason is not None:
            inst.state_reason = StateReason(reason[1], reason[0])
            inst._reason = reason[1]


def put_metrics(arn: str, namespace: str, datums: list[dict]) -> None:
    """Add ``datums`` (``MetricData`` entries) to the CloudWatch of ``arn``'s account and region."""
    from moto.cloudwatch.models import cloudwatch_backends

    _, _, _, region, account, _ = arn.split(":", 5)
    with LOCK:
        cloudwatch_backends[account][region].put_metric_data(namespace, datums)


def groups_of_instances() -> dict[str, str]:
    """Instance id -> the name of the Auto Scaling group it is in (every account and region)."""
    with LOCK:
        return {
            state.instance.id: group.name
            for backend in autoscaling_regions()
            for group in list(dict.values(backend.autoscaling_groups))
            for state in list(group.instance_states)
        }


def vcpus_of(instance_type: str) -> int:
    """The vCPUs of an instance type (moto's instance type data; 1 when it does not know the type)."""
    from moto.ec2.models.instance_types import INSTANCE_TYPES

    found = INSTANCE_TYPES.get(instance_type) or {}
    return int((found.get("VCpuInfo") or {}).get("DefaultVCpus") or 1)


def cloudwatch_regions() -> list:
    """Every CloudWatch backend moto has made (one per account and region)."""
    from moto.cloudwatch.models import cloudwatch_backends

    with LOCK:
        return [backend for account in list(dict.values(cloudwatch_backends)) for backend in list(dict.values(account))]


def autoscaling_regions() -> list:
    """Every Auto Scaling backend moto has made (one per account and region)."""
    from moto.autoscaling.models import autoscaling_backends

    with LOCK:
        return [
            backend for account in list(dict.values(autoscaling_backends)) for backend in list(dict.values(account))
        ]


def identity_of(inst):
    """What the metadata service says about a moto instance (its role: the instance profile's, else ``rodeo-local``)."""
    import base64

    from toolkit.local.imds import Identity

    backend = inst.ec2_backend
    with LOCK:
        association = backend.iam_instance_profile_associations.get(inst.id)
        roles = list(getattr(getattr(association, "iam_instance_profile", None), "roles", None) or [])
    data = inst.user_data
    if isinstance(data, list):
        data = data[0] if data else None
    raw = getattr(data, "_encoded_string", data)
    return Identity(
        instance_id=inst.id,
        image_id=inst.image_id,
        instance_type=inst.instance_type,
        region=inst.region_name,
        zone=inst.placement.zone,
        account=backend.account_id,
        private_ip=inst.private_ip or "10.0.0.1",
        role=roles[0].name if roles else "rodeo-local",
        user_data=base64.b64decode(raw) if raw else None,
        tokens_required=getattr(inst.metadata_options, "http_tokens", "optional") == "required",
    )
