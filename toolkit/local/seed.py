"""Seed the local stack: what a team's own infrastructure code makes on AWS.

``seed_base`` makes a VPC as AWS has it (public and private subnets in two
zones, an internet and a NAT gateway, the load balancer's and the instances'
security groups: ``_network``) and registers the base Debian AMI (its
contents: the cached root file system). ``seed_release`` makes the release
side of an environment: the ALB (in the public subnets, its access logs
into ``ACCESS_LOG_BUCKET``), its target groups (deregistration delay
``DRAIN_SECONDS``), the weighted listener and the alarms, then runs
``invoke setup``'s own ``ensure``.

A release in waves (``release.regions``) is seeded in each of its regions
the same way, as ``toolkit.regions.in_region`` sees the config there: each
region its own VPC, with an address range and fixed ids of its own
(``vpc_cidr``, ``private_subnets``, ``instance_sg``: its number in
``REGIONS``), its own AMIs, load balancer, slots and alarms.

The local stack starts with a live "previous release": blue runs the seeded
base AMI (on the live stack: a placeholder app that answers /health, see
``toolkit.local.seedimage``) at ``capacity.desired`` with weight 100, green is empty. So the very
first ``invoke release`` there is a real blue/green shift, the invariant holds
from the start, and ``invoke rollback`` has something to return to.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any, Callable

import botocore.exceptions

from toolkit import regions
from toolkit.aws import error_code, once_settled
from toolkit.config import Config, Release
from toolkit.errors import ReleaseError, StackError
from toolkit.iam import INSTANCE, policy
from toolkit.release import setup
from toolkit.release.planner import SLOTS

SERVING_TIMEOUT = (
    180.0  # seconds the seeded slot may take to pass its health checks (a loaded 2-core machine boots slowly)
)

BASE_AMI_NAME = "debian-12-amd64-rodeo-local"
SEED_TAG = "rodeo:seed"
SEEDED = [{"Name": f"tag:{SEED_TAG}", "Values": ["local"]}]
DRAIN_SECONDS = 10
APP_PORT = 8080  # the sample app's (and the placeholder's) port
# The regions the stack seeds a VPC in, numbered from 1 in this order (never reordered: inventories name the ids
# the number gives; a region AWS adds is appended). us-east-1 first: its ids and range are the ones the stack always had.
REGIONS = (
    "us-east-1",
    "us-west-2",
    "eu-west-1",
    "us-east-2",
    "us-west-1",
    "eu-central-1",
    "eu-west-2",
    "eu-west-3",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-central-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ap-south-1",
    "ap-south-2",
    "ap-east-1",
    "ap-east-2",
    "ca-central-1",
    "ca-west-1",
    "sa-east-1",
    "af-south-1",
    "me-south-1",
    "me-central-1",
    "il-central-1",
    "mx-central-1",
    "me-west-1",
    "sa-west-1",
)


def region_number(region: str) -> int:
    """``region``'s number in ``REGIONS`` (us-east-1 is 1); StackError for a region the stack seeds nothing in."""
    if region not in REGIONS:
        raise StackError(
            f"the local stack seeds no VPC in {region}",
            f"add {region} at the end of toolkit.local.seed.REGIONS; regions it seeds: {', '.join(REGIONS)}",
        )
    return REGIONS.index(region) + 1


def vpc_cidr(region: str) -> str:
    """The seeded VPC's range in ``region``: 10.80.0.0/16 in us-east-1, 10.81.0.0/16 in us-west-2, ... (none shared)."""
    return f"10.{79 + region_number(region)}.0.0/16"


def private_subnets(region: str) -> tuple[str, str]:
    """The fixed ids of the seeded private subnets (the instances') of ``region``, by zone: ``...a1``, ``...b1`` in
    us-east-1, ``...a2``, ``...b2`` in us-west-2."""
    n = region_number(region)
    return tuple(f"subnet-0c0ffee{f'{zone}{n:x}':0>10}" for zone in "ab")  # type: ignore[return-value]


def instance_sg(region: str) -> str:
    """The fixed id of the seeded instances' security group of ``region``: ``sg-...1`` in us-east-1, ``sg-...2``..."""
    return f"sg-0c0ffee{region_number(region):010x}"


# The instances' side of the seeded VPC in us-east-1, by id (inventories/local/rodeo.yml names them): see _network.
PRIVATE_SUBNETS = private_subnets("us-east-1")
INSTANCE_SG = instance_sg("us-east-1")
INSTANCE_GROUP = "rodeo-local-instances"
LB_GROUP = "rodeo-local-lb"
TIER_TAG = "rodeo:tier"
ALARM_PERIOD = 10  # seconds (local only: see _alarms)
ALARM_THRESHOLD = 2  # more than this many target 5xx in a period is ALARM
INSTANCE_POLICY = "rodeo-instance"  # the seeded instance role's inline policy
# Where the seeded load balancer writes its access logs (the canary analysis reads them), under its name as prefix:
# a bucket per region (an ALB writes only to a bucket of its own region; bucket names are global).
ACCESS_LOG_BUCKET = "rodeo-local-access-logs-{region}"


def seed_base(stack: Any, aws: Any, region: str | None = None) -> dict:
    """Make the VPC (see ``_network``) and the base AMI in ``region`` (default: ``aws``'s), unless they exist."""
    ec2 = aws.client("ec2", region)
    vpc_id = _network(ec2)
    images = ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [BASE_AMI_NAME]}])["Images"]
    if images:
        ami = images[0]["ImageId"]
    else:
        ami = ec2.register_image(
            Name=BASE_AMI_NAME,
            Description="Debian 12 (bookworm) root file system for local bakes",
            Architecture="x86_64",
            RootDeviceName="/dev/xvda",
            VirtualizationType="hvm",
            BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8, "VolumeType": "gp3"}}],
        )["ImageId"]
        ec2.create_tags(Resources=[ami], Tags=[{"Key": SEED_TAG, "Value": "local"}])
    if not stack.store.has(ami):
        stack.store.add(ami, [stack.rootfs])
    seeded = {"vpc": vpc_id, "base_ami": ami}
    if stack.live:
        seeded["seed_app_ami"] = _seed_app(stack, ec2)
    return seeded


def _network(ec2: Any) -> str:
    """The VPC as a team's infrastructure code makes it on AWS; its id.

    In two zones: a public subnet each (the load balancer's: a default route
    to the internet gateway, no public IP on launch) and a private subnet each
    (the instances': a default route to a NAT gateway in the first public
    subnet). Two security groups: the load balancer's, and the instances',
    which admits the load balancer's on ``APP_PORT``. The private subnets and
    the instances' group have fixed ids (``inventories/local/rodeo.yml``
    names them); ``toolkit.vpc`` enforces what this shape allows. The range
    and the ids are the client's region's own (``vpc_cidr``, ``private_subnets``, ``instance_sg``).
    """
    vpcs = ec2.describe_vpcs(Filters=SEEDED)["Vpcs"]
    if vpcs:
        return vpcs[0]["VpcId"]
    region = ec2.meta.region_name
    octets = vpc_cidr(region).split(".")[:2]  # 10.8x
    _default_vpc_online(ec2)
    vpc = ec2.create_vpc(CidrBlock=vpc_cidr(region), TagSpecifications=_tags("vpc", "rodeo-local"))["Vpc"]["VpcId"]
    zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]][:2]
    public = [
        _subnet(ec2, vpc, zone, ".".join([*octets, f"{i * 16}.0/20"]), "public", f"rodeo-local-public-{i}")
        for i, zone in enumerate(zones)
    ]
    private = [
        _subnet(
            ec2,
            vpc,
            zone,
            ".".join([*octets, f"{128 + i * 16}.0/20"]),
            "private",
            f"rodeo-local-private-{i}",
            custom_id,
        )
        for i, (zone, custom_id) in enumerate(zip(zones, private_subnets(region)))
    ]
    igw = ec2.create_internet_gateway(TagSpecifications=_tags("internet-gateway", "rodeo-local"))["InternetGateway"][
        "InternetGatewayId"
    ]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    _route_table(ec2, vpc, "rodeo-local-public", public, GatewayId=igw)
    eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(
        SubnetId=public[0], AllocationId=eip, TagSpecifications=_tags("natgateway", "rodeo-local")
    )["NatGateway"]["NatGatewayId"]
    _route_table(ec2, vpc, "rodeo-local-private", private, NatGatewayId=nat)
    lb_sg = ec2.create_security_group(
        GroupName=LB_GROUP,
        Description="rodeo local load balancer",
        VpcId=vpc,
        TagSpecifications=_tags("security-group", LB_GROUP),
    )["GroupId"]
    # A group made a moment ago may not be found yet (AWS's eventual consistency, which the stack enforces).
    once_settled(
        lambda: ec2.authorize_security_group_ingress(
            GroupId=lb_sg,
            IpPermissions=[{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
        )
    )
    tags = _tags("security-group", INSTANCE_GROUP)
    tags[0]["Tags"].append({"Key": "_custom_id_", "Value": instance_sg(region)})
    sg = ec2.create_security_group(
        GroupName=INSTANCE_GROUP, Description="rodeo local instances", VpcId=vpc, TagSpecifications=tags
    )["GroupId"]
    once_settled(
        lambda: ec2.authorize_security_group_ingress(
            GroupId=sg,
            IpPermissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": APP_PORT,
                    "ToPort": APP_PORT,
                    "UserIdGroupPairs": [{"GroupId": lb_sg}],
                }
            ],
        )
    )
    return vpc


def _default_vpc_online(ec2: Any) -> None:
    """moto's default VPC as AWS's: an internet gateway and a default route to it (its subnets give public IPs)."""
    for vpc in ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]:
        igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc["VpcId"])
        main = ec2.describe_route_tables(
            Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}, {"Name": "association.main", "Values": ["true"]}]
        )["RouteTables"]
        for table in main:
            ec2.create_route(RouteTableId=table["RouteTableId"], DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)


def _subnet(ec2: Any, vpc: str, zone: str, cidr: str, tier: str, name: str, custom_id: str | None = None) -> str:
    tags = _tags("subnet", name)
    tags[0]["Tags"].append({"Key": TIER_TAG, "Value": tier})
    if custom_id:
        tags[0]["Tags"].append({"Key": "_custom_id_", "Value": custom_id})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=zone, TagSpecifications=tags)["Subnet"][
        "SubnetId"
    ]
    ec2.modify_subnet_attribute(SubnetId=subnet, MapPublicIpOnLaunch={"Value": False})
    return subnet


def _route_table(ec2: Any, vpc: str, name: str, subnets: list[str], **default_route: str) -> None:
    table = ec2.create_route_table(VpcId=vpc, TagSpecifications=_tags("route-table", name))["RouteTable"][
        "RouteTableId"
    ]
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", **default_route)
    for subnet in subnets:
        ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)


def public_subnets(ec2: Any, vpc: str) -> list[str]:
    """The seeded VPC's public subnets (the load balancer's), by zone."""
    found = ec2.describe_subnets(
        Filters=SEEDED + [{"Name": "vpc-id", "Values": [vpc]}, {"Name": f"tag:{TIER_TAG}", "Values": ["public"]}]
    )["Subnets"]
    return [s["SubnetId"] for s in sorted(found, key=lambda s: s["AvailabilityZone"])]


def load_balancer_group(ec2: Any, vpc: str) -> str:
    """The seeded load balancer security group's id."""
    return ec2.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": [LB_GROUP]}, {"Name": "vpc-id", "Values": [vpc]}]
    )["SecurityGroups"][0]["GroupId"]


def _seed_app(stack: Any, ec2: Any) -> str:
    """The live stack's placeholder app AMI (see toolkit.local.seedimage), unless it exists."""
    from toolkit.local import seedimage

    images = ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [seedimage.NAME]}])["Images"]
    if images:
        ami = images[0]["ImageId"]
    else:
        ami = ec2.register_image(
            Name=seedimage.NAME,
            Description="answers /health until the first release",
            Architecture="x86_64",
            RootDeviceName="/dev/xvda",
            VirtualizationType="hvm",
        )["ImageId"]
        ec2.create_tags(Resources=[ami], Tags=[{"Key": SEED_TAG, "Value": "local"}])
    if not stack.store.has(ami):
        layer = stack.store.layer_dir("seed-app")
        if not (layer / seedimage.MARK).exists():  # another region's copy may be booted on it: never rewritten
            seedimage.write_layer(layer, port=APP_PORT)
        stack.store.add(ami, [stack.rootfs, layer])
    return ami


def base_seeder(stack: Any, region: str) -> Callable[[Any], None]:
    """A seeder for ``toolkit.local.stack.up``: the base network and AMI, once per server and region."""

    def seed(aws: Any) -> None:
        seed_base(stack, aws, region)

    seed.seed_key = f"base:{region}"
    return seed


def _tags(kind: str, name: str) -> list[dict]:
    return [{"ResourceType": kind, "Tags": [{"Key": "Name", "Value": name}, {"Key": SEED_TAG, "Value": "local"}]}]


def seed_release(config: Config) -> Callable[[Any], None]:
    """A seeder for ``toolkit.local.stack.up``: the whole release side of ``config``'s environment, in every region of
    ``release.regions`` (each with its base network and AMIs, ``seed_base``; the instance profile is global, once)."""

    def seed(aws: Any) -> None:
        _instance_profile(aws, config)
        waves = regions.each(config, aws)
        for here, there in waves:
            if there.region != aws.region:
                seed_base(aws.stack, there)
            _release_side(here, there)
        for here, there in waves:  # the regions' instances boot together
            if _ami_named(there, seedimage_name()):  # the placeholder app serves; the bare base AMI never would
                _wait_serving(there, here)

    # The same settings need seeding once per server and region (see stack.up): another region has none of it.
    settings = hashlib.sha256(repr(config.release).encode()).hexdigest()[:16]
    seed.seed_key = f"release:{config.region}:{config.app}:{settings}"
    return seed


def _release_side(config: Config, aws: Any) -> None:
    """One region's load balancer and slots (``config`` and ``aws`` in that region)."""
    _load_balancer(config, aws, setup.slots.release_of(config))
    setup.ensure(config, aws, initial_ami=initial_ami(aws), live_slot_capacity=config.release.capacity.desired)


def seedimage_name() -> str:
    """The placeholder app AMI's name (``toolkit.local.seedimage``)."""
    from toolkit.local import seedimage

    return seedimage.NAME


def _wait_serving(aws: Any, config: Config, timeout: float = SERVING_TIMEOUT) -> None:
    """Until the live slot (``State.active``: the one holding the traffic) has as many instances passing their health checks as it should
    serve with, so that a release right after seeding meets a healthy environment, as on an account (a live stack
    boots them: about 10 s, cloud-init included). StackError after ``timeout``.

    It should serve with ``capacity.min``, or fewer when its group is sized smaller: an environment seeded before
    keeps the sizes its last release gave it (``setup.ensure`` makes groups, never resizes them), whatever
    ``capacity`` says now.
    """
    slots = setup.slots
    env = slots.resolve(config, aws)
    live = slots.read(env, aws).active  # blue when just seeded
    want = min(slots.release_of(config).capacity.min, live.desired)
    deadline, healthy = time.monotonic() + timeout, 0
    while time.monotonic() < deadline:
        healthy = len(slots.healthy_targets(env, aws, live.name))
        if healthy >= want:
            return
        failed = _boot_failure(aws, env.groups[live.name])
        if failed:  # the stack's own image: another launch would fail the same way
            raise StackError(
                f"the live slot's instance {failed}",
                f"the stack's log ({aws.stack.log_path if aws.stack else 'moto.log'}) says more; fix that, then 'invoke local.down' and 'invoke local.up' start afresh",
            )
        time.sleep(0.5)
    raise StackError(
        f"the live slot has {healthy} of {want} healthy instance(s) after {timeout:.0f}s",
        "its instances' boot logs are in the stack's live/instances/ folder; 'invoke local.down' then 'invoke local.up' starts afresh",
    )


def _boot_failure(aws: Any, group: str) -> str:
    """``<id> did not boot: <why>`` for an instance of ``group`` the stack terminated because it did not boot, or ''."""
    found = aws.client("ec2").describe_instances(
        Filters=[
            {"Name": "tag:aws:autoscaling:groupName", "Values": [group]},
            {"Name": "instance-state-name", "Values": ["terminated"]},
        ]
    )["Reservations"]
    for inst in (i for r in found for i in r["Instances"]):
        reason = inst.get("StateReason", {})
        if reason.get("Code") == "Server.InternalError":
            return f"{inst['InstanceId']} did not boot: {reason.get('Message', '').removeprefix('Server.InternalError: ').removeprefix('the local image did not boot: ')}"
    return ""


def _instance_profile(aws: Any, config: Config) -> None:
    """The instance profile and its role, as a team's infrastructure code makes them: the role holds
    ``invoke iam-policy --for instance`` (``INSTANCE_POLICY``), all the instances' credentials may do."""
    name = config.release.instance_profile
    if not name:
        return
    iam = aws.client("iam")
    if not any(p["InstanceProfileName"] == name for p in iam.list_instance_profiles()["InstanceProfiles"]):
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ],
        }
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
        iam.create_instance_profile(InstanceProfileName=name)
        iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
    iam.put_role_policy(
        RoleName=name, PolicyName=INSTANCE_POLICY, PolicyDocument=json.dumps(policy(config, (INSTANCE,)))
    )


def base_ami(aws: Any) -> str | None:
    """The seeded Debian AMI's id, if the stack has one."""
    return _ami_named(aws, BASE_AMI_NAME)


def initial_ami(aws: Any) -> str | None:
    """What blue runs before the first release: the live stack's placeholder app, else the base AMI."""
    from toolkit.local import seedimage

    return _ami_named(aws, seedimage.NAME) or base_ami(aws)


def _ami_named(aws: Any, name: str) -> str | None:
    images = aws.client("ec2").describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [name]}])["Images"]
    return images[0]["ImageId"] if images else None


def _load_balancer(config: Config, aws: Any, rel: Release) -> list[str]:
    """ALB (public subnets, the seeded load balancer group), target groups, weighted listener and alarms in the seeded VPC
    (a Classic ELB with ``release.load_balancer_type: classic``: ``_classic``)."""
    ec2, elbv2 = aws.client("ec2"), aws.client("elbv2")
    vpcs = ec2.describe_vpcs(Filters=SEEDED)["Vpcs"]
    if not vpcs:
        raise ReleaseError("the local VPC (tag rodeo:seed=local) does not exist", "run 'invoke local.up' first")
    vpc = vpcs[0]["VpcId"]
    subnets, sg = public_subnets(ec2, vpc), load_balancer_group(ec2, vpc)
    if rel.load_balancer_type == "classic":
        return _classic(aws, rel, subnets, sg) + _alarms(aws, rel, "")
    created = []
    try:
        lb = elbv2.describe_load_balancers(Names=[rel.load_balancer])["LoadBalancers"][0]
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) != "LoadBalancerNotFound":
            raise
        lb = elbv2.create_load_balancer(
            Name=rel.load_balancer, Subnets=subnets, SecurityGroups=[sg], Type="application", Scheme="internal"
        )["LoadBalancers"][0]
        created.append(f"load balancer {rel.load_balancer}")
    arns = {}
    for slot in SLOTS:
        try:
            arns[slot] = elbv2.describe_target_groups(Names=[rel.slots[slot]])["TargetGroups"][0]["TargetGroupArn"]
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) != "TargetGroupNotFound":
                raise
            # The sample app's port; checks as fast as AWS allows, so a local release waits seconds, not minutes.
            arns[slot] = elbv2.create_target_group(
                Name=rel.slots[slot],
                Protocol="HTTP",
                Port=APP_PORT,
                VpcId=vpc,
                TargetType="instance",
                HealthCheckPath="/health",
                HealthCheckIntervalSeconds=5,
                HealthCheckTimeoutSeconds=2,
                HealthyThresholdCount=2,
                UnhealthyThresholdCount=2,
            )["TargetGroups"][0]["TargetGroupArn"]
            elbv2.modify_target_group_attributes(
                TargetGroupArn=arns[slot],
                Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": str(DRAIN_SECONDS)}],
            )
            created.append(f"target group {rel.slots[slot]}")
    listeners = elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
    if not any(listener["Port"] == rel.listener_port for listener in listeners):
        forward = {
            "TargetGroups": [
                {"TargetGroupArn": arns["blue"], "Weight": 100},
                {"TargetGroupArn": arns["green"], "Weight": 0},
            ]
        }
        elbv2.create_listener(
            LoadBalancerArn=lb["LoadBalancerArn"],
            Protocol="HTTP",
            Port=rel.listener_port,
            DefaultActions=[{"Type": "forward", "ForwardConfig": forward}],
        )
        created.append(f"listener :{rel.listener_port}")
    created += _access_logs(aws, rel, lb["LoadBalancerArn"])
    created += _alarms(aws, rel, lb["LoadBalancerArn"])
    return created


def _classic(aws: Any, rel: Release, subnets: list[str], sg: str) -> list[str]:
    """The Classic ELB the seed team had: a listener to the app's port, the ALB's checks, connection draining on."""
    elb = aws.client("elb")
    try:
        elb.describe_load_balancers(LoadBalancerNames=[rel.load_balancer])
        return []
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) != "LoadBalancerNotFound":
            raise
    elb.create_load_balancer(
        LoadBalancerName=rel.load_balancer,
        Listeners=[
            {
                "Protocol": "HTTP",
                "LoadBalancerPort": rel.listener_port,
                "InstanceProtocol": "HTTP",
                "InstancePort": APP_PORT,
            }
        ],
        Subnets=subnets,
        SecurityGroups=[sg],
        Scheme="internal",
    )
    elb.configure_health_check(
        LoadBalancerName=rel.load_balancer,
        HealthCheck={
            "Target": f"HTTP:{APP_PORT}/health",
            "Interval": 5,
            "Timeout": 2,
            "HealthyThreshold": 2,
            "UnhealthyThreshold": 2,
        },
    )
    elb.modify_load_balancer_attributes(
        LoadBalancerName=rel.load_balancer,
        LoadBalancerAttributes={"ConnectionDraining": {"Enabled": True, "Timeout": DRAIN_SECONDS}},
    )
    return [f"classic load balancer {rel.load_balancer}"]


def _access_logs(aws: Any, rel: Release, lb_arn: str) -> list[str]:
    """The load balancer's access logs on, into its region's ``ACCESS_LOG_BUCKET`` (the live stack writes them:
    ``toolkit.local.accesslogs``).

    On AWS the bucket's policy must let Elastic Load Balancing write to it; the local stack does not check that.
    """
    elbv2 = aws.client("elbv2")
    attrs = {
        a["Key"]: a["Value"] for a in elbv2.describe_load_balancer_attributes(LoadBalancerArn=lb_arn)["Attributes"]
    }
    if attrs.get("access_logs.s3.enabled") == "true":
        return []
    region = lb_arn.split(":")[3]
    bucket = ACCESS_LOG_BUCKET.format(region=region)
    where = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    try:
        aws.client("s3", region).create_bucket(Bucket=bucket, **where)
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    elbv2.modify_load_balancer_attributes(
        LoadBalancerArn=lb_arn,
        Attributes=[
            {"Key": "access_logs.s3.enabled", "Value": "true"},
            {"Key": "access_logs.s3.bucket", "Value": bucket},
            {"Key": "access_logs.s3.prefix", "Value": rel.load_balancer},
        ],
    )
    return [f"access logs of {rel.load_balancer} into s3://{bucket}/{rel.load_balancer}/"]


def _alarms(aws: Any, rel: Release, lb_arn: str) -> list[str]:
    """Each alarm in ``release.alarms``, as a 5xx-count alarm on the load balancer (no ``lb_arn``: the Classic ELB's).

    The live stack evaluates it (``toolkit.local.monitor``) on the load
    balancer's real 5xx. Its period is 10 s so a release's watch of 20 s
    (``toolkit.release.watch``: one 10 s datapoint, one 10 s evaluation; the
    local ``pause_seconds``) catches a bad build: on AWS a period under 60 s
    needs a high-resolution metric, and ALB metrics are standard resolution
    (there, use ``Period=60``, and a watch of 180 s).
    """
    cw = aws.client("cloudwatch")
    existing = (
        {a["AlarmName"] for a in cw.describe_alarms(AlarmNames=list(rel.alarms))["MetricAlarms"]}
        if rel.alarms
        else set()
    )
    created = []
    for name in rel.alarms:
        if name in existing:
            continue
        metric = (  # the instances' 5xx, as each kind of load balancer names them
            {
                "Namespace": "AWS/ApplicationELB",
                "MetricName": "HTTPCode_Target_5XX_Count",
                "Dimensions": [{"Name": "LoadBalancer", "Value": lb_arn.split(":loadbalancer/")[-1]}],
            }
            if lb_arn
            else {
                "Namespace": "AWS/ELB",
                "MetricName": "HTTPCode_Backend_5XX",
                "Dimensions": [{"Name": "LoadBalancerName", "Value": rel.load_balancer}],
            }
        )
        cw.put_metric_alarm(
            AlarmName=name,
            **metric,
            Statistic="Sum",
            Period=ALARM_PERIOD,
            EvaluationPeriods=1,
            Threshold=ALARM_THRESHOLD,
            ComparisonOperator="GreaterThanThreshold",
            TreatMissingData="notBreaching",
        )
        created.append(f"alarm {name}")
    return created
