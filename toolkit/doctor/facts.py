"""Gather what doctor checks, with read calls only (``toolkit.doctor.ACTIONS``), into one frozen value.

Each part is read on its own: a part AWS refuses (or that does not exist)
leaves its field empty and says why in ``errors``, so one missing right does
not hide the other checks.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import botocore.exceptions
import botocore.parsers

from toolkit.config import AmiFilter, Config, Release
from toolkit.doctor import rights
from toolkit.errors import RodeoError
from toolkit.release import classic, watch
from toolkit.release.watch import AlarmTiming
from toolkit.table import table_name
from toolkit.vpc import (
    Endpoint,
    Route,
    Rule,
    Vpc,
    default_target,
    endpoint_service,
    route_table_of,
)


@dataclass(frozen=True)
class Identity:
    """Who calls: ``sts:GetCallerIdentity``, and the IAM principal the simulator takes for it."""

    arn: str
    account: str
    principal: str | None = None  # None: the simulator cannot take this caller (root, federated)


@dataclass(frozen=True)
class SourceAmi:
    """A base image's ``source_ami`` and what it resolves to (None: nothing)."""

    image: str
    wanted: str  # the id, or "name <filter> owned by <owners>"
    found: str | None


@dataclass(frozen=True)
class Packer:
    """Packer's version and where the credentials it is given come from."""

    version: tuple[int, ...] | None  # None: not installed
    static_keys: bool  # AWS_ACCESS_KEY_ID in its environment: a profile plays no part
    profile: str  # the profile it reads otherwise
    sso_keys: tuple[str, ...] = ()  # sso_* settings of that profile in the AWS config file
    config_file: str = "~/.aws/config"


@dataclass(frozen=True)
class Subnet:
    """A subnet the instances launch in, and its way out."""

    id: str
    zone: str
    cidr: str
    public_ip_on_launch: bool
    route_table: str
    default_route: str  # the target of its 0.0.0.0/0 route (nat-..., igw-..., or "")


@dataclass(frozen=True)
class Listener:
    """A listener of the load balancer: its port, its default actions' types, group stickiness of its forward."""

    port: int
    actions: tuple[str, ...]
    forwards_to: tuple[str, ...] = ()  # target group ARNs of its forward action
    stickiness_seconds: int = 0  # TargetGroupStickinessConfig's duration when enabled, else 0


@dataclass(frozen=True)
class TargetGroup:
    name: str
    arn: str
    port: int
    drain_seconds: int


@dataclass(frozen=True)
class AccessLogs:
    """Where the load balancer writes its access logs (its attributes): what the canary analysis reads."""

    enabled: bool
    bucket: str = ""
    prefix: str = ""


@dataclass(frozen=True)
class Ebs:
    """The account's EBS encryption defaults in the region, and the rights on a customer-managed default key."""

    by_default: bool
    key: str  # GetEbsDefaultKmsKeyId's answer
    customer_managed: bool = False
    key_rights: tuple[rights.Decision, ...] = ()


@dataclass(frozen=True)
class Facts:
    """Everything doctor checks, as read from the account and this machine."""

    region: str
    env: str
    encrypt_boot: bool
    release: Release | None
    table: str
    identity: Identity | None = None
    rights: tuple[rights.Decision, ...] | None = None  # None: not simulated (errors["rights"] says why)
    sources: tuple[SourceAmi, ...] = ()
    packer: Packer | None = None
    load_balancer: str | None = None  # its name when found
    lb_zones: tuple[str, ...] = ()
    lb_subnet_cidrs: tuple[str, ...] = ()
    lb_groups: tuple[str, ...] = ()
    listeners: tuple[Listener, ...] = ()
    target_groups: tuple[TargetGroup, ...] = ()
    subnets: tuple[Subnet, ...] = ()
    network: Vpc | None = (
        None  # the instances' VPC as toolkit.vpc models it: routes, NAT and internet gateways, endpoints
    )
    instance_groups: tuple[str, ...] = ()
    ingress: tuple[Rule, ...] = ()  # of every instance security group
    alarms: tuple[AlarmTiming, ...] = ()
    access_logs: AccessLogs | None = None  # None: not read (errors["access_logs"] says why)
    table_exists: bool | None = None
    ebs: Ebs | None = None
    config_region: str = ""  # where the instances read their config vars, when not here (a release in waves)
    errors: dict[str, str] = field(default_factory=dict, hash=False)


def gather(
    config: Config,
    aws: Any,
    environ: Mapping[str, str] = os.environ,
    packer_version: Callable[[], tuple[int, ...]] | None = None,
) -> Facts:
    """Read every fact doctor checks. Makes read calls only."""
    errors: dict[str, str] = {}
    parts: dict[str, Any] = {}
    identity = _part(errors, "identity", lambda: _identity(aws))
    return _gathered(config, aws, errors, parts, identity, environ, packer_version)


def gather_region(config: Config, aws: Any) -> Facts:
    """The facts of one more region of a release in waves (``config`` and ``aws`` in it): its table, EBS key and
    release side; who is calling, the rights, source AMIs and Packer are ``region:``'s (``gather``)."""
    errors: dict[str, str] = {}
    parts: dict[str, Any] = {
        "table_exists": _part(errors, "table", lambda: _table_exists(aws, table_name(config))),
        "ebs": _part(errors, "ebs", lambda: _ebs(aws, config.region, _part({}, "identity", lambda: _identity(aws)))),
    }
    if config.release is not None:
        _part(errors, "load_balancer", lambda: parts.update(_release(config.release, aws, errors)))
    return _facts(config, errors, parts)


def _gathered(
    config: Config,
    aws: Any,
    errors: dict[str, str],
    parts: dict[str, Any],
    identity: Any,
    environ: Mapping[str, str],
    packer_version: Callable[[], tuple[int, ...]] | None,
) -> Facts:
    parts["identity"] = identity
    if identity is not None and identity.principal:
        parts["rights"] = _part(
            errors,
            "rights",
            lambda: rights.ask(aws.client("iam"), identity.principal, rights.questions(config, identity.account)),
        )
    elif identity is not None:
        errors["rights"] = f"{identity.arn} is not an IAM user or role"
    parts["sources"] = tuple(
        _source(config, aws, image.name, errors) for image in config.images.values() if image.source_ami is not None
    )
    parts["packer"] = _packer(aws.env(), environ, packer_version, errors)
    parts["table_exists"] = _part(errors, "table", lambda: _table_exists(aws, table_name(config)))
    parts["ebs"] = _part(errors, "ebs", lambda: _ebs(aws, config.region, identity))
    if config.release is not None:
        _part(errors, "load_balancer", lambda: parts.update(_release(config.release, aws, errors)))
    return _facts(config, errors, parts)


def _facts(config: Config, errors: dict[str, str], parts: dict[str, Any]) -> Facts:
    return Facts(
        region=config.region,
        env=config.env,
        encrypt_boot=config.encrypt_boot,
        release=config.release,
        table=table_name(config),
        config_region=config.config_region if config.config_region != config.region else "",
        errors=errors,
        **{k: v for k, v in parts.items() if v is not None},
    )


def _part(errors: dict[str, str], name: str, read: Callable[[], Any]) -> Any:
    """``read()``, or None with the reason in ``errors[name]`` when AWS (or Rodeo) says no."""
    from toolkit.aws import explain

    try:
        return read()
    except RodeoError as exc:
        errors[name] = exc.message
    except (
        botocore.exceptions.BotoCoreError,
        botocore.exceptions.ClientError,
        botocore.parsers.ResponseParserError,
    ) as exc:
        known = explain(exc)
        errors[name] = known.message if known else str(exc)
    return None


def _identity(aws: Any) -> Identity:
    me = aws.client("sts").get_caller_identity()
    who = rights.simulated_principal(me["Arn"])
    principal = None
    if who and who[0] == "user":
        principal = who[1]
    elif who:
        principal = aws.client("iam").get_role(RoleName=who[1])["Role"]["Arn"]
    return Identity(me["Arn"], me["Account"], principal)


def _source(config: Config, aws: Any, name: str, errors: dict[str, str]) -> SourceAmi:
    source = config.images[name].source_ami
    ec2 = aws.client("ec2")
    if isinstance(source, AmiFilter):
        wanted = f"no AMI named {source.name!r} owned by {', '.join(source.owners)}"
        found = _part(
            errors,
            f"source {name}",
            lambda: ec2.describe_images(
                Owners=list(source.owners), Filters=[{"Name": "name", "Values": [source.name]}]
            )["Images"],
        )
    else:
        wanted = f"{source} does not exist (or is not shared with this account)"
        found = _part(errors, f"source {name}", lambda: _images_by_id(ec2, source))
    newest = max(found, key=lambda i: i.get("CreationDate", ""))["ImageId"] if found else None
    return SourceAmi(name, wanted, newest)


def _images_by_id(ec2: Any, ami: str) -> list[dict]:
    try:
        return ec2.describe_images(ImageIds=[ami])["Images"]
    except botocore.exceptions.ClientError as exc:
        if "InvalidAMIID" in exc.response.get("Error", {}).get("Code", ""):
            return []
        raise


def _packer(
    packer_env: dict[str, str],
    environ: Mapping[str, str],
    version: Callable[[], tuple[int, ...]] | None,
    errors: dict[str, str],
) -> Packer:
    """The credentials Packer gets: Rodeo's environment for it over this process's (``toolkit.packer.run.packer_env``)."""
    from toolkit.packer import run

    env = {**environ, **packer_env}
    found = _part(errors, "packer", version or run.version)
    profile = env.get("AWS_PROFILE") or env.get("AWS_DEFAULT_PROFILE") or "default"
    path = env.get("AWS_CONFIG_FILE") or str(Path(env.get("HOME", "~")).expanduser() / ".aws" / "config")
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path)
    except configparser.Error:
        pass
    return Packer(found, bool(env.get("AWS_ACCESS_KEY_ID")), profile, _sso_keys(parser, profile), path)


def _sso_keys(parser: configparser.ConfigParser, profile: str) -> tuple[str, ...]:
    """The ``sso_*`` settings of ``profile``, or of the profile its ``source_profile`` chain starts from (a role assumed from SSO)."""
    seen: set[str] = set()
    while profile not in seen:
        seen.add(profile)
        section = "default" if profile == "default" else f"profile {profile}"
        settings = parser[section] if parser.has_section(section) else {}
        sso = tuple(sorted(k for k in settings if k.startswith("sso_")))
        if sso or "source_profile" not in settings:
            return sso
        profile = settings["source_profile"]
    return ()


def _table_exists(aws: Any, name: str) -> bool:
    try:
        aws.client("dynamodb").describe_table(TableName=name)
        return True
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return False
        raise


def _ebs(aws: Any, region: str, identity: Identity | None) -> Ebs:
    ec2 = aws.client("ec2")
    by_default = ec2.get_ebs_encryption_by_default()["EbsEncryptionByDefault"]
    key = ec2.get_ebs_default_kms_key_id()["KmsKeyId"]
    if key.endswith("alias/aws/ebs"):
        return Ebs(by_default, key)
    meta = aws.client("kms").describe_key(KeyId=key)["KeyMetadata"]
    if meta.get("KeyManager") != "CUSTOMER":
        return Ebs(by_default, key)
    asked = ()
    if identity is not None and identity.principal:
        asked = rights.ask(aws.client("iam"), identity.principal, [rights.ebs_key_question(meta["Arn"], region)])
    return Ebs(by_default, meta["Arn"], True, asked)


def _release(rel: Release, aws: Any, errors: dict[str, str]) -> dict:
    """The load balancer, its listeners and slot target groups, the instances' network and groups, the alarms."""
    elbv2, ec2 = aws.client("elbv2"), aws.client("ec2")
    if rel.load_balancer_type == "classic":
        return _classic(rel, aws, errors)
    try:
        lb = elbv2.describe_load_balancers(Names=[rel.load_balancer])["LoadBalancers"][0]
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "LoadBalancerNotFound":
            raise
        raise RodeoError(f"load balancer {rel.load_balancer!r} does not exist in {aws.region}") from None
    zones = lb.get("AvailabilityZones", [])
    lb_subnets = [z["SubnetId"] for z in zones]
    out: dict[str, Any] = {
        "load_balancer": lb["LoadBalancerName"],
        "lb_zones": tuple(sorted(z["ZoneName"] for z in zones)),
        "lb_groups": tuple(lb.get("SecurityGroups", [])),
    }
    out["lb_subnet_cidrs"] = (
        tuple(s["CidrBlock"] for s in ec2.describe_subnets(SubnetIds=lb_subnets)["Subnets"]) if lb_subnets else ()
    )
    out["listeners"] = tuple(
        _listener(listener) for listener in elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
    )
    groups = _part(
        errors, "target_groups", lambda: tuple(_target_group(elbv2, rel.slots[s]) for s in ("blue", "green"))
    )
    out["target_groups"] = groups or ()
    vpc = lb.get("VpcId")
    subnet_ids = list(rel.subnets) or lb_subnets
    out.update(_part(errors, "network", lambda: _network(ec2, vpc, subnet_ids)) or {})
    out.update(_part(errors, "security_groups", lambda: _instance_groups(ec2, vpc, rel)) or {})
    if rel.alarms:
        out["alarms"] = _part(errors, "alarms", lambda: _alarms(aws.client("cloudwatch"), rel.alarms)) or ()
    out["access_logs"] = _part(errors, "access_logs", lambda: _access_logs(elbv2, lb["LoadBalancerArn"]))
    return out


def _classic(rel: Release, aws: Any, errors: dict[str, str]) -> dict:
    """``_release``'s facts of a Classic ELB: its listeners forward to whichever groups are attached, and each
    instance port stands where a target group's port would (what the instances' security groups must admit)."""
    elb, ec2 = aws.client("elb"), aws.client("ec2")
    try:
        lb = elb.describe_load_balancers(LoadBalancerNames=[rel.load_balancer])["LoadBalancerDescriptions"][0]
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "LoadBalancerNotFound":
            raise
        raise RodeoError(f"Classic ELB {rel.load_balancer!r} does not exist in {aws.region}") from None
    attrs = elb.describe_load_balancer_attributes(LoadBalancerName=rel.load_balancer)["LoadBalancerAttributes"]
    drain = classic.draining_timeout(attrs)
    listeners = [d["Listener"] for d in lb["ListenerDescriptions"]]
    subnets = ec2.describe_subnets(SubnetIds=lb["Subnets"])["Subnets"] if lb.get("Subnets") else []
    out: dict[str, Any] = {
        "load_balancer": lb["LoadBalancerName"],
        "lb_zones": tuple(sorted({s["AvailabilityZone"] for s in subnets} | set(lb.get("AvailabilityZones", [])))),
        "lb_groups": tuple(lb.get("SecurityGroups", [])),
        "lb_subnet_cidrs": tuple(s["CidrBlock"] for s in subnets),
        "listeners": tuple(Listener(item["LoadBalancerPort"], ("forward",)) for item in listeners),
        "target_groups": tuple(
            TargetGroup(f"instance port {port}", "", port, drain)
            for port in sorted({i["InstancePort"] for i in listeners})
        ),
        "access_logs": AccessLogs(bool(attrs.get("AccessLog", {}).get("Enabled"))),
    }
    out.update(_part(errors, "network", lambda: _network(ec2, lb["VPCId"], list(rel.subnets) or lb["Subnets"])) or {})
    out.update(_part(errors, "security_groups", lambda: _instance_groups(ec2, lb["VPCId"], rel)) or {})
    if rel.alarms:
        out["alarms"] = _part(errors, "alarms", lambda: _alarms(aws.client("cloudwatch"), rel.alarms)) or ()
    return out


def _access_logs(elbv2: Any, lb_arn: str) -> AccessLogs:
    attrs = {
        a["Key"]: a.get("Value", "")
        for a in elbv2.describe_load_balancer_attributes(LoadBalancerArn=lb_arn)["Attributes"]
    }
    bucket = attrs.get("access_logs.s3.bucket", "")
    on = attrs.get("access_logs.s3.enabled", "false").lower() == "true" and bool(bucket)
    return AccessLogs(on, bucket, attrs.get("access_logs.s3.prefix", ""))


def _listener(listener: dict) -> Listener:
    actions = sorted(listener.get("DefaultActions", []), key=lambda a: a.get("Order", 0))
    forward = next((a for a in actions if a["Type"] == "forward"), {})
    config = forward.get("ForwardConfig", {})
    arns = tuple(t["TargetGroupArn"] for t in config.get("TargetGroups", [])) or (
        (forward["TargetGroupArn"],) if forward.get("TargetGroupArn") else ()
    )
    sticky = config.get("TargetGroupStickinessConfig", {})
    return Listener(
        listener["Port"],
        tuple(a["Type"] for a in actions),
        arns,
        int(sticky.get("DurationSeconds", 0)) if sticky.get("Enabled") else 0,
    )


def _target_group(elbv2: Any, name: str) -> TargetGroup:
    group = elbv2.describe_target_groups(Names=[name])["TargetGroups"][0]
    attrs = {
        a["Key"]: a["Value"]
        for a in elbv2.describe_target_group_attributes(TargetGroupArn=group["TargetGroupArn"])["Attributes"]
    }
    return TargetGroup(
        name,
        group["TargetGroupArn"],
        int(group.get("Port") or 0),
        int(attrs.get("deregistration_delay.timeout_seconds", 300)),
    )


def _network(ec2: Any, vpc_id: str, subnet_ids: list[str]) -> dict:
    """The instances' subnets, and their VPC as ``toolkit.vpc`` models it (the rules the local stack enforces)."""
    in_vpc = [{"Name": "vpc-id", "Values": [vpc_id]}]
    tables = ec2.describe_route_tables(Filters=in_vpc)["RouteTables"]
    gateways = ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc_id]}])[
        "InternetGateways"
    ]
    model = Vpc(
        subnets={s["SubnetId"]: (vpc_id, s["CidrBlock"]) for s in ec2.describe_subnets(Filters=in_vpc)["Subnets"]},
        route_tables={
            t["RouteTableId"]: tuple(
                Route(r["DestinationCidrBlock"], _route_target(r))
                for r in t.get("Routes", [])
                if r.get("DestinationCidrBlock") and r.get("State", "active") == "active"
            )
            for t in tables
        },
        associations={
            a["SubnetId"]: t["RouteTableId"] for t in tables for a in t.get("Associations", []) if a.get("SubnetId")
        },
        main_tables={
            vpc_id: t["RouteTableId"] for t in tables if any(a.get("Main") for a in t.get("Associations", []))
        },
        nat_gateways={
            n["NatGatewayId"]: n["SubnetId"]
            for n in ec2.describe_nat_gateways(Filter=in_vpc)["NatGateways"]
            if n.get("State") == "available"
        },
        attached_gateways={
            g["InternetGatewayId"]: vpc_id
            for g in gateways
            if any(
                a.get("VpcId") == vpc_id and a.get("State") in ("available", "attached")
                for a in g.get("Attachments", [])
            )
        },
        endpoints=tuple(
            Endpoint(
                vpc_id,
                endpoint_service(e["ServiceName"]),
                e.get("VpcEndpointType", "Gateway"),
                tuple(e.get("RouteTableIds", [])),
                bool(e.get("PrivateDnsEnabled")),
                e.get("State", "available").lower() == "available",
            )
            for e in ec2.describe_vpc_endpoints(Filters=in_vpc)["VpcEndpoints"]
        ),
    )
    subnets = ec2.describe_subnets(SubnetIds=subnet_ids)["Subnets"] if subnet_ids else []
    out = []
    for s in subnets:
        table = route_table_of(s["SubnetId"], model) or ""
        out.append(
            Subnet(
                s["SubnetId"],
                s["AvailabilityZone"],
                s["CidrBlock"],
                bool(s.get("MapPublicIpOnLaunch")),
                table,
                default_target(table, model) or "",
            )
        )
    return {"subnets": tuple(out), "network": model}


def _route_target(route: dict) -> str:
    return (
        route.get("NatGatewayId")
        or route.get("GatewayId")
        or route.get("VpcEndpointId")
        or route.get("NetworkInterfaceId")
        or ""
    )


def _instance_groups(ec2: Any, vpc: str, rel: Release) -> dict:
    if rel.security_groups:
        groups = ec2.describe_security_groups(GroupIds=list(rel.security_groups))["SecurityGroups"]
    else:
        groups = ec2.describe_security_groups(
            Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "group-name", "Values": ["default"]}]
        )["SecurityGroups"]
    rules = tuple(
        Rule(
            str(p.get("IpProtocol", "-1")),
            p.get("FromPort"),
            p.get("ToPort"),
            groups=tuple(g["GroupId"] for g in p.get("UserIdGroupPairs", [])),
            cidrs=tuple(r["CidrIp"] for r in p.get("IpRanges", [])),
        )
        for g in groups
        for p in g.get("IpPermissions", [])
    )
    return {"instance_groups": tuple(g["GroupId"] for g in groups), "ingress": rules}


def _alarms(cloudwatch: Any, names: tuple[str, ...]) -> tuple[AlarmTiming, ...]:
    described = cloudwatch.describe_alarms(AlarmNames=list(names))["MetricAlarms"]
    return tuple(t for t in map(watch.timing, described) if t is not None)
