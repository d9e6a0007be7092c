"""Doctor's checks as tables: Facts in, (status, line) out (no AWS)."""

from __future__ import annotations

import dataclasses

import pytest

from toolkit.config import Analysis, JudgedMetric, Release, SmokeCheck
from toolkit.doctor import checks, network
from toolkit.doctor.facts import (
    AccessLogs,
    Ebs,
    Facts,
    Identity,
    Listener,
    Packer,
    SourceAmi,
    Subnet,
    TargetGroup,
)
from toolkit.doctor.rights import Decision
from toolkit.doctor.run import check_all
from toolkit.release.watch import AlarmTiming
from toolkit.vpc import Endpoint, Route, Rule, Vpc

REL = Release(
    load_balancer="web",
    slots={"blue": "web-blue", "green": "web-green"},
    pause_seconds=180,
    alarms=("web-5xx",),
    smoke_check=SmokeCheck(port=8081),
    security_groups=("sg-app",),
)
BLUE, GREEN = "arn:tg/web-blue", "arn:tg/web-green"
USER = "arn:aws:iam::111122223333:user/ci"
PRIVATE = (
    Subnet("subnet-a", "eu-west-1a", "10.0.10.0/24", False, "rtb-private", "nat-1"),
    Subnet("subnet-b", "eu-west-1b", "10.0.11.0/24", False, "rtb-private", "nat-1"),
)


def network_of(route: str = "", nat: bool = False, table: str = "rtb-1", endpoints: tuple = ()) -> Vpc:
    """subnet-a and -b routed by ``table`` (``0.0.0.0/0`` to ``route``), a public subnet routed to igw-1 (attached),
    nat-1 in it when ``nat`` (an available NAT gateway)."""
    return Vpc(
        subnets={
            "subnet-a": ("vpc-1", "10.0.10.0/24"),
            "subnet-b": ("vpc-1", "10.0.11.0/24"),
            "subnet-pub": ("vpc-1", "10.0.0.0/24"),
        },
        route_tables={
            table: (Route("0.0.0.0/0", route),) if route else (),
            "rtb-public": (Route("0.0.0.0/0", "igw-1"),),
        },
        associations={"subnet-a": table, "subnet-b": table, "subnet-pub": "rtb-public"},
        nat_gateways={"nat-1": "subnet-pub"} if nat else {},
        attached_gateways={"igw-1": "vpc-1"},
        endpoints=endpoints,
    )


HEALTHY = Facts(
    region="eu-west-1",
    env="staging",
    encrypt_boot=True,
    release=REL,
    table="rodeo-web",
    identity=Identity(USER, "111122223333", USER),
    rights=(Decision("ec2:RunInstances", "*", "allowed"), Decision("ec2:DescribeImages", "*", "allowed")),
    sources=(SourceAmi("base", "no AMI named 'debian-12-*' owned by 136693071363", "ami-0abc"),),
    packer=Packer((1, 6, 6), False, "staging"),
    load_balancer="web",
    lb_zones=("eu-west-1a", "eu-west-1b"),
    lb_subnet_cidrs=("10.0.0.0/24", "10.0.1.0/24"),
    lb_groups=("sg-lb",),
    listeners=(Listener(80, ("forward",), (BLUE, GREEN)),),
    target_groups=(TargetGroup("web-blue", BLUE, 8080, 30), TargetGroup("web-green", GREEN, 8080, 30)),
    subnets=PRIVATE,
    network=network_of("nat-1", nat=True, table="rtb-private"),
    instance_groups=("sg-app",),
    ingress=(Rule("tcp", 8080, 8080, groups=("sg-lb",)),),
    alarms=(AlarmTiming("web-5xx", 60, 1),),
    table_exists=True,
    ebs=Ebs(False, "alias/aws/ebs"),
)


def facts(**changes) -> Facts:
    return dataclasses.replace(HEALTHY, **changes)


def rel(**changes) -> Release:
    return dataclasses.replace(REL, **changes)


def test_a_healthy_account_passes_every_check():
    result = check_all(HEALTHY)
    assert [(c.name, c.status) for c in result.checks if c.status != "ok"] == []
    assert [c.name for c in result.checks] == [
        "identity",
        "rights",
        "source-ami base",
        "packer",
        "network",
        "lb-zones",
        "lb-to-instances",
        "listener",
        "smoke-port",
        "alarms",
        "analysis",
        "stickiness",
        "ebs-key",
        "table",
    ]
    assert result.lines()[-1] == "doctor --env staging: 0 failed, 0 warning(s), 14 passed"


def test_without_a_release_only_the_account_checks_run():
    assert [c.name for c in check_all(facts(release=None)).checks] == [
        "identity",
        "rights",
        "source-ami base",
        "packer",
        "ebs-key",
        "table",
    ]


SSO = Packer((1, 6, 6), False, "team", ("sso_account_id", "sso_role_name", "sso_start_url"), "/home/me/.aws/config")
CASES = [
    # (name, check, facts, (status, line))
    (
        "no credentials",
        checks.identity,
        facts(identity=None, errors={"identity": "no AWS credentials found"}),
        ("fail", "no AWS credentials found; set AWS_PROFILE (or run 'aws sso login')"),
    ),
    (
        "rights denied",
        checks.iam_rights,
        facts(
            rights=(
                Decision("ec2:RunInstances", "*", "implicitDeny"),
                Decision("ec2:DescribeImages", "*", "allowed"),
                Decision("iam:PassRole", "arn:role", "explicitDeny"),
            )
        ),
        (
            "fail",
            f"{USER} may not call 2 of the 3 actions Rodeo calls: ec2:RunInstances, iam:PassRole; attach 'invoke iam-policy --for all --env staging' to it",
        ),
    ),
    (
        "many denied are cut short",
        checks.iam_rights,
        facts(rights=tuple(Decision(f"ec2:Action{i}", "*", "implicitDeny") for i in range(6))),
        (
            "fail",
            (
                f"{USER} may not call 6 of the 6 actions Rodeo calls: ec2:Action0, ec2:Action1, ec2:Action2, ec2:Action3 and 2 more; "
                "attach 'invoke iam-policy --for all --env staging' to it"
            ),
        ),
    ),
    (
        "root cannot be simulated",
        checks.iam_rights,
        facts(rights=None, errors={"rights": "arn:aws:iam::1:root is not an IAM user or role"}),
        (
            "warn",
            "cannot simulate the caller's rights (arn:aws:iam::1:root is not an IAM user or role); make sure it holds 'invoke iam-policy --for all --env staging'",
        ),
    ),
    (
        "packer missing",
        checks.packer_credentials,
        facts(packer=Packer(None, False, "default"), errors={"packer": "packer is not installed"}),
        ("fail", "packer is not installed; run 'make setup' (or apt-get install packer)"),
    ),
    (
        "packer 1.6.6 and an SSO profile",
        checks.packer_credentials,
        facts(packer=SSO),
        (
            "fail",
            (
                "Packer 1.6.6 cannot use the SSO profile 'team' (sso_account_id, sso_role_name, sso_start_url in /home/me/.aws/config; hashicorp/packer#10525); "
                'export its keys first: eval "$(aws configure export-credentials --profile team --format env)", or install Packer 1.7+'
            ),
        ),
    ),
    (
        "packer 1.6.6 with keys in the environment",
        checks.packer_credentials,
        facts(packer=dataclasses.replace(SSO, static_keys=True)),
        ("ok", "Packer 1.6.6 gets keys from the environment (AWS_ACCESS_KEY_ID)"),
    ),
    (
        "packer 1.9 and a legacy SSO profile",
        checks.packer_credentials,
        facts(packer=dataclasses.replace(SSO, version=(1, 9, 4))),
        ("ok", "Packer 1.9.4 reads profile 'team' (SSO)"),
    ),
    (
        "packer 1.9 and an sso-session profile",
        checks.packer_credentials,
        facts(packer=dataclasses.replace(SSO, version=(1, 9, 4), sso_keys=("sso_session",))),
        (
            "warn",
            (
                "Packer 1.9.4 reads the sso-session profile 'team' only with an amazon plugin from 2023-09 on (packer-plugin-amazon#415); "
                "run 'packer plugins installed' to check"
            ),
        ),
    ),
    (
        "alarm too slow for ALB metrics: the release's own rule",
        checks.alarm_timing,
        facts(release=rel(pause_seconds=120)),
        (
            "fail",
            (
                "release.pause_seconds 120 is shorter than alarm web-5xx needs to fire: 180s (1 datapoint(s) of 60s, 60s to publish, 60s to "
                "evaluate); a bad step would be over before it could; set release.pause_seconds to at least 180 in rodeo.yml, or give the alarm "
                "a shorter period or fewer datapoints to alarm"
            ),
        ),
    ),
    (
        "a high-resolution alarm",
        checks.alarm_timing,
        facts(release=rel(pause_seconds=40), alarms=(AlarmTiming("web-5xx", 10, 3),)),
        ("ok", "1 alarm(s) can fire within release.pause_seconds (40 s)"),
    ),
    (
        "alarm missing",
        checks.alarm_timing,
        facts(alarms=()),
        ("fail", "alarm(s) web-5xx do not exist in eu-west-1; create them or fix release.alarms"),
    ),
    (
        "sticky longer than the drain",
        checks.stickiness,
        facts(listeners=(Listener(80, ("forward",), (BLUE, GREEN), 600),)),
        (
            "fail",
            (
                "listener :80 keeps a client on a slot for 600 s (target group stickiness), longer than the old slot's 30 s drain before it scales to 0: "
                "stuck clients get 503s; lower the duration to 30 s or set release.keep_old_slot_warm: true"
            ),
        ),
    ),
    (
        "sticky but the old slot stays warm",
        checks.stickiness,
        facts(release=rel(keep_old_slot_warm=True), listeners=(Listener(80, ("forward",), (BLUE, GREEN), 600),)),
        ("ok", "stickiness of 600 s ends before the old slot scales down"),
    ),
    (
        "listener authenticates",
        checks.listener_actions,
        facts(listeners=(Listener(80, ("authenticate-cognito", "forward"), (BLUE, GREEN)),)),
        (
            "warn",
            "listener :80 runs authenticate-cognito before its forward: each weight change must send it again (ModifyListener replaces the whole action list)",
        ),
    ),
    (
        "no listener on the port",
        checks.listener_actions,
        facts(listeners=(Listener(443, ("forward",), (BLUE, GREEN)),)),
        ("fail", "load balancer web has no listener on :80 (ports: 443); create it in your infrastructure code"),
    ),
    (
        "listener redirects only",
        checks.listener_actions,
        facts(listeners=(Listener(80, ("redirect",)),)),
        (
            "fail",
            "listener :80 does not forward to web-blue, web-green; give its default action a weighted forward to both slot target groups (blue 100, green 0)",
        ),
    ),
    (
        "smoke port taken",
        checks.smoke_port,
        facts(listeners=(*HEALTHY.listeners, Listener(8081, ("fixed-response",)))),
        (
            "fail",
            "load balancer web already has a listener on :8081, which the smoke check would replace; give release.smoke_check.port a free port",
        ),
    ),
    ("no smoke check", checks.smoke_port, facts(release=rel(smoke_check=None)), ("ok", "no smoke check configured")),
    (
        "table missing",
        checks.table,
        facts(table_exists=False),
        ("ok", "DynamoDB table rodeo-web does not exist yet; 'invoke setup --env staging' makes it"),
    ),
    (
        "table unreadable",
        checks.table,
        facts(table_exists=None, errors={"table": "AWS refused DescribeTable: AccessDeniedException"}),
        ("fail", "cannot read DynamoDB table rodeo-web: AWS refused DescribeTable: AccessDeniedException"),
    ),
    (
        "customer key without rights",
        checks.ebs_key,
        facts(
            ebs=Ebs(
                True,
                "arn:key/1",
                True,
                (
                    Decision("kms:CreateGrant", "arn:key/1", "implicitDeny"),
                    Decision("kms:Decrypt", "arn:key/1", "allowed"),
                ),
            )
        ),
        (
            "fail",
            (
                "default EBS key arn:key/1 is customer-managed and the caller may not kms:CreateGrant on it (through EC2): CopyImage and RunInstances "
                "of encrypted volumes fail; grant them in its key policy or the caller's policy"
            ),
        ),
    ),
    (
        "customer key, nothing encrypted",
        checks.ebs_key,
        facts(encrypt_boot=False, ebs=Ebs(False, "arn:key/1", True)),
        ("ok", "default EBS key arn:key/1 (not used: no encryption)"),
    ),
    (
        "source AMI not found",
        lambda f: checks.source_amis(f)[0],
        facts(sources=(SourceAmi("base", "no AMI named 'debian-12-*' owned by 136693973656", None),)),
        (
            "fail",
            "images.base.source_ami: no AMI named 'debian-12-*' owned by 136693973656 in eu-west-1; fix it in rodeo.yml",
        ),
    ),
    (
        "load balancer missing",
        network.lb_zones,
        facts(load_balancer=None, errors={"load_balancer": "load balancer 'web' does not exist in eu-west-1"}),
        (
            "fail",
            "load balancer 'web' does not exist in eu-west-1; create it in your infrastructure code or fix release.load_balancer",
        ),
    ),
    (
        "one zone",
        network.lb_zones,
        facts(lb_zones=("eu-west-1a",), subnets=PRIVATE[:1]),
        (
            "fail",
            "load balancer web spans 1 zone (eu-west-1a); an Application Load Balancer needs subnets in at least two zones",
        ),
    ),
    (
        "one zone, a Classic ELB",
        network.lb_zones,
        facts(lb_zones=("eu-west-1a",), subnets=PRIVATE[:1], release=rel(load_balancer_type="classic")),
        (
            "warn",
            "Classic ELB web spans 1 zone (eu-west-1a); give it subnets in two zones or more, or a lost zone takes every instance with it",
        ),
    ),
    (
        "a Classic ELB's listener",
        checks.listener_actions,
        facts(release=rel(load_balancer_type="classic"), listeners=(Listener(80, ("forward",)),)),
        ("ok", "Classic ELB listener :80: a release attaches each slot's group in turn"),
    ),
    (
        "instances outside its zones",
        network.lb_zones,
        facts(subnets=(*PRIVATE, Subnet("subnet-c", "eu-west-1c", "10.0.12.0/24", False, "rtb-private", "nat-1"))),
        (
            "fail",
            "instances launch in eu-west-1c, where load balancer web has no subnet: their targets stay unused; enable that zone on it or fix release.subnets",
        ),
    ),
    (
        "group closed",
        network.lb_to_instances,
        facts(ingress=()),
        (
            "fail",
            "the instances' security groups sg-app do not admit the load balancer's sg-lb on port 8080: health checks time out; allow tcp 8080 from sg-lb",
        ),
    ),
    (
        "the VPC's default group",
        network.lb_to_instances,
        facts(
            release=rel(security_groups=()),
            instance_groups=("sg-default",),
            ingress=(Rule("-1", None, None, groups=("sg-default",)),),
        ),
        (
            "fail",
            (
                "the instances' security groups sg-default (the VPC's default) do not admit the load balancer's sg-lb on port 8080: health checks time out; "
                "allow tcp 8080 from sg-lb"
            ),
        ),
    ),
    (
        "the VPC's range admits it",
        network.lb_to_instances,
        facts(ingress=(Rule("tcp", 8000, 8100, cidrs=("10.0.0.0/16",)),)),
        ("ok", "the instances' security groups admit the load balancer on port 8080"),
    ),
    (
        "a range missing one LB subnet",
        network.lb_to_instances,
        facts(ingress=(Rule("tcp", 8080, 8080, cidrs=("10.0.0.0/24",)),)),
        (
            "fail",
            "the instances' security groups sg-app do not admit the load balancer's sg-lb on port 8080: health checks time out; allow tcp 8080 from sg-lb",
        ),
    ),
    (
        "udp does not count",
        network.lb_to_instances,
        facts(ingress=(Rule("udp", 8080, 8080, groups=("sg-lb",)),)),
        (
            "fail",
            "the instances' security groups sg-app do not admit the load balancer's sg-lb on port 8080: health checks time out; allow tcp 8080 from sg-lb",
        ),
    ),
]


@pytest.mark.parametrize("check, given, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_check(check, given, expected):
    found = check(given)
    assert (found.status, found.line) == expected


def subnet(route="", public=False, table="rtb-1"):
    return Subnet("subnet-a", "eu-west-1a", "10.0.10.0/24", public, table, route)


ALL = (
    Endpoint("vpc-1", "ssm", "Interface"),
    Endpoint("vpc-1", "logs", "Interface"),
    Endpoint("vpc-1", "s3", "Gateway", ("rtb-1",), private_dns=False),
)
WAYS = [
    # (name, subnet, its VPC, (way, missing))
    ("NAT gateway", subnet("nat-1"), network_of("nat-1", nat=True), ("NAT gateway nat-1", [])),
    ("NAT gateway not available", subnet("nat-1"), network_of("nat-1"), ("VPC endpoints", ["ssm", "logs", "s3"])),
    (
        "internet gateway with public IPs",
        subnet("igw-1", public=True),
        network_of("igw-1"),
        ("internet gateway igw-1 with public IPs", []),
    ),
    (
        "internet gateway without public IPs",
        subnet("igw-1"),
        network_of("igw-1"),
        ("VPC endpoints", ["ssm", "logs", "s3"]),
    ),
    ("every endpoint", subnet(), network_of(endpoints=ALL), ("VPC endpoints", [])),
    (
        "interface endpoint without private DNS",
        subnet(),
        network_of(endpoints=(Endpoint("vpc-1", "ssm", "Interface", private_dns=False), *ALL[1:])),
        ("VPC endpoints", ["ssm"]),
    ),
    (
        "S3 gateway on another route table",
        subnet(table="rtb-2"),
        network_of(table="rtb-2", endpoints=ALL),
        ("VPC endpoints", ["s3"]),
    ),
    (
        "S3 as an interface endpoint",
        subnet(),
        network_of(endpoints=(*ALL[:2], Endpoint("vpc-1", "s3", "Interface"))),
        ("VPC endpoints", []),
    ),
]


@pytest.mark.parametrize("given, network_, expected", [w[1:] for w in WAYS], ids=[w[0] for w in WAYS])
def test_way_out(given, network_, expected):
    assert network.way_out(given, facts(network=network_)) == expected


def test_network_names_each_way_out_and_groups_the_subnets_that_have_none():
    ok = network.instance_network(HEALTHY)
    assert (ok.status, ok.line) == ("ok", "2 instance subnet(s) reach SSM, Logs and S3 (NAT gateway nat-1)")
    cut = tuple(dataclasses.replace(s, default_route="") for s in PRIVATE)
    bad = network.instance_network(facts(subnets=cut, network=network_of(table="rtb-private", endpoints=ALL[:1])))
    assert (bad.status, bad.line) == (
        "fail",
        (
            "subnets subnet-a (eu-west-1a), subnet-b (eu-west-1b): no route to a NAT or internet gateway, and no VPC "
            "endpoint for logs, s3: instances there cannot load their config or ship logs; route 0.0.0.0/0 to a NAT "
            "gateway or add the endpoints"
        ),
    )


def test_instances_reading_their_config_in_another_region_need_a_nat_or_internet_gateway():
    """A release in waves: instances outside region: read their config vars there; their own SSM endpoint does not
    serve another region's SSM (https://docs.aws.amazon.com/vpc/latest/privatelink/privatelink-access-aws-services.html)."""
    elsewhere = facts(network=network_of(endpoints=ALL), config_region="eu-west-1")
    assert network.way_out(subnet(), elsewhere) == ("VPC endpoints", ["ssm"])
    assert network.way_out(
        subnet("nat-1"), facts(network=network_of("nat-1", nat=True), config_region="eu-west-1")
    ) == (
        "NAT gateway nat-1",
        [],
    )
    cut = tuple(dataclasses.replace(s, default_route="") for s in PRIVATE)
    bad = network.instance_network(
        facts(
            subnets=cut,
            network=network_of(
                table="rtb-private",
                endpoints=(*ALL[:2], Endpoint("vpc-1", "s3", "Gateway", ("rtb-private",), private_dns=False)),
            ),
            config_region="us-east-1",
        )
    )
    assert (bad.status, bad.line) == (
        "fail",
        (
            "subnets subnet-a (eu-west-1a), subnet-b (eu-west-1b): no route to a NAT or internet gateway, and no VPC "
            "endpoint for ssm (config vars are read in us-east-1, which no VPC endpoint here serves): instances there "
            "cannot load their config or ship logs; route 0.0.0.0/0 to a NAT gateway or add the endpoints"
        ),
    )


ANALYSIS = Analysis(enabled=True)
LOGS = AccessLogs(True, "web-logs", "web")


@pytest.mark.parametrize(
    ("release", "found", "status", "line"),
    [
        (rel(), LOGS, "ok", "canary analysis is off (release.analysis.enabled)"),
        (
            rel(analysis=ANALYSIS, pause_seconds=600),
            LOGS,
            "ok",
            "each step of 600s can be judged from s3://web-logs/web",
        ),
        (
            rel(analysis=ANALYSIS, pause_seconds=180),
            LOGS,
            "warn",
            "release.pause_seconds 180 is shorter than judging errors, latency needs on AWS (600s for latency: access "
            "logs arrive in 5-minute files, written after their 5 minutes): such steps are judged on too little data, "
            "which goes on by on_insufficient (continue); raise pause_seconds or wait_seconds",
        ),
        (
            rel(analysis=ANALYSIS, pause_seconds=600),
            AccessLogs(False),
            "fail",
            "release.analysis judges steps on the load balancer's access logs, and they are off; turn on access_logs.s3 "
            "(a bucket ELB may write to) or set release.analysis.enabled: false",
        ),
        (
            rel(
                analysis=dataclasses.replace(
                    ANALYSIS, metrics=(JudgedMetric(name="q", namespace="Web", metric="Q", period=10),)
                ),
                pause_seconds=300,
            ),
            AccessLogs(False),  # not needed for a named metric only
            "warn",
            "release.pause_seconds 300 is shorter than judging q needs on AWS (500s for q: 50 datapoints of 10s): "
            "such steps are judged on too little data, "
            "which goes on by on_insufficient (continue); raise pause_seconds or wait_seconds",
        ),
    ],
)
def test_analysis(release, found, status, line):
    check = checks.analysis(facts(release=release, access_logs=found))
    assert (check.status, check.line) == (status, line)
