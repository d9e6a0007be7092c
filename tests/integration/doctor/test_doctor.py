"""``invoke doctor`` against account shapes on a moto server: a healthy one passes, each broken one fails with its line.

Every shape is built fresh (its own VPC, load balancer, names and AMI, see
``accounts.healthy``) and broken in one way; the doctor's function runs for
most, the command line (exit code, --json) for two.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.doctor import accounts
from tests.support.stacks import moto_stack
from toolkit.doctor import rights
from toolkit.doctor.run import doctor

ROOT = Path(__file__).resolve().parents[3]
PACKER = (1, 6, 6)  # Debian's; the Packer check's line names it


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A moto server (toolkit.local.motoserver, with doctor's calls) of this module's own: (state folder, endpoint)."""
    folder = tmp_path_factory.mktemp("doctor-stack")
    with moto_stack(folder) as (_, url):
        yield folder, url


def run(shape: accounts.Shape, root: Path, caller=None, environ=None):
    """doctor on ``shape`` as written under ``root``; by default as the stack's own caller, with no AWS_* of this machine."""
    cfg = shape.write(root)
    return doctor(cfg, caller or shape.aws, environ={} if environ is None else environ, packer_version=lambda: PACKER)


def test_a_healthy_account_passes_every_check(server, tmp_path, monkeypatch):
    shape = accounts.healthy(server[1])
    cfg = shape.write(tmp_path)
    caller = accounts.user_with(shape, accounts.rodeo_policy(cfg), monkeypatch)
    result = doctor(cfg, caller, environ=dict(os.environ), packer_version=lambda: PACKER)
    assert [(c.name, c.status) for c in result.checks if c.status != "ok"] == []
    actions = {a for q in rights.questions(cfg, "123456789012") for a in q.actions}
    user = f"arn:aws:iam::123456789012:user/{shape.name}-caller"
    assert (
        result.check("rights").line
        == f"{user} may call all {len(actions)} actions of 'invoke iam-policy --for all --env {shape.name}'"
    )
    assert result.check("network").line == f"2 instance subnet(s) reach SSM, Logs and S3 (NAT gateway {shape.nat})"
    assert result.check("lb-to-instances").line == "the instances' security groups admit the load balancer on port 8080"
    assert len(result.checks) == 14


# --- broken shapes: each returns the check that must fail and its exact line ----------------------------


def source_ami_name(shape, ctx):
    shape.settings["images"]["base"]["source_ami"] = {"name": "nothing-*", "owners": ["self"]}
    return (
        "source-ami base",
        f"images.base.source_ami: no AMI named 'nothing-*' owned by self in {shape.region}; fix it in rodeo.yml",
    )


def source_ami_id(shape, ctx):
    shape.settings["images"]["base"]["source_ami"] = "ami-0123456789abcdef0"
    return "source-ami base", (
        f"images.base.source_ami: ami-0123456789abcdef0 does not exist (or is not shared with this account) "
        f"in {shape.region}; fix it in rodeo.yml"
    )


def _subnets(ids, zones):
    return f"subnet{'s' if len(ids) > 1 else ''} " + ", ".join(f"{s} ({z})" for s, z in zip(ids, zones))


NETWORK_FIX = (
    ": instances there cannot load their config or ship logs; route 0.0.0.0/0 to a NAT gateway or add the endpoints"
)


def private_without_nat(shape, ctx):
    shape.ec2.delete_route(RouteTableId=shape.private_table, DestinationCidrBlock="0.0.0.0/0")
    return (
        "network",
        f"{_subnets(shape.private, shape.zones)}: no route to a NAT or internet gateway, and no VPC endpoint for ssm, logs, s3{NETWORK_FIX}",
    )


def public_without_public_ips(shape, ctx):
    shape.settings["release"]["subnets"] = list(shape.public)
    return "network", (
        f"{_subnets(shape.public, shape.zones)}: a route to internet gateway {shape.igw} but no public IP on launch (or the gateway is not attached), "
        f"and no VPC endpoint for ssm, logs, s3{NETWORK_FIX}"
    )


def endpoints_missing(shape, ctx):
    ec2 = shape.ec2
    ec2.delete_route(RouteTableId=shape.private_table, DestinationCidrBlock="0.0.0.0/0")
    service = f"com.amazonaws.{shape.region}"
    ec2.create_vpc_endpoint(
        VpcId=shape.vpc,
        ServiceName=f"{service}.ssm",
        VpcEndpointType="Interface",
        SubnetIds=shape.private[:1],
        PrivateDnsEnabled=True,
    )
    # Without private DNS the SDK's logs host name still resolves to the public endpoint; S3's gateway is on another table.
    ec2.create_vpc_endpoint(
        VpcId=shape.vpc,
        ServiceName=f"{service}.logs",
        VpcEndpointType="Interface",
        SubnetIds=shape.private[:1],
        PrivateDnsEnabled=False,
    )
    ec2.create_vpc_endpoint(
        VpcId=shape.vpc, ServiceName=f"{service}.s3", VpcEndpointType="Gateway", RouteTableIds=[shape.public_table]
    )
    return (
        "network",
        f"{_subnets(shape.private, shape.zones)}: no route to a NAT or internet gateway, and no VPC endpoint for logs, s3{NETWORK_FIX}",
    )


def instances_outside_the_load_balancers_zones(shape, ctx):
    ec2 = shape.ec2
    third = ec2.create_subnet(
        VpcId=shape.vpc,
        CidrBlock=shape.settings["app"].replace("doc", "10.") + ".20.0/24",
        AvailabilityZone=shape.zones[2],
    )["Subnet"]["SubnetId"]
    ec2.associate_route_table(RouteTableId=shape.private_table, SubnetId=third)
    shape.settings["release"]["subnets"] = [*shape.private, third]
    return "lb-zones", (
        f"instances launch in {shape.zones[2]}, where load balancer {shape.name} has no subnet: their targets stay unused; "
        "enable that zone on it or fix release.subnets"
    )


def _closed(shape, groups, default=""):
    return "lb-to-instances", (
        f"the instances' security groups {groups}{default} do not admit the load balancer's {shape.lb_sg} on port 8080: "
        f"health checks time out; allow tcp 8080 from {shape.lb_sg}"
    )


def app_group_shut(shape, ctx):
    shape.ec2.revoke_security_group_ingress(
        GroupId=shape.app_sg,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "UserIdGroupPairs": [{"GroupId": shape.lb_sg}]}
        ],
    )
    return _closed(shape, shape.app_sg)


def app_group_on_another_port(shape, ctx):
    ec2 = shape.ec2
    ec2.revoke_security_group_ingress(
        GroupId=shape.app_sg,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "UserIdGroupPairs": [{"GroupId": shape.lb_sg}]}
        ],
    )
    ec2.authorize_security_group_ingress(
        GroupId=shape.app_sg,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "UserIdGroupPairs": [{"GroupId": shape.lb_sg}]}
        ],
    )
    return _closed(shape, shape.app_sg)


def vpc_default_group(shape, ctx):
    shape.settings["release"]["security_groups"] = []
    default = shape.ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [shape.vpc]}, {"Name": "group-name", "Values": ["default"]}]
    )
    return _closed(shape, default["SecurityGroups"][0]["GroupId"], " (the VPC's default)")


def alarm_slower_than_a_step(shape, ctx):
    shape.settings["release"]["pause_seconds"] = 120
    return "alarms", (
        f"release.pause_seconds 120 is shorter than alarm {shape.name}-5xx needs to fire: 180s (1 datapoint(s) of 60s, 60s to "
        "publish, 60s to evaluate); a bad step would be over before it could; set release.pause_seconds to at least 180 in "
        "rodeo.yml, or give the alarm a shorter period or fewer datapoints to alarm"
    )


def alarm_missing(shape, ctx):
    shape.settings["release"]["alarms"] = [f"{shape.name}-latency"]
    return "alarms", f"alarm(s) {shape.name}-latency do not exist in {shape.region}; create them or fix release.alarms"


def stickiness_outlasts_the_drain(shape, ctx):
    shape.elbv2.modify_listener(
        ListenerArn=shape.listener,
        DefaultActions=shape.forward(TargetGroupStickinessConfig={"Enabled": True, "DurationSeconds": 3600}),
    )
    return "stickiness", (
        "listener :80 keeps a client on a slot for 3600 s (target group stickiness), longer than the old slot's 30 s drain "
        "before it scales to 0: stuck clients get 503s; lower the duration to 30 s or set release.keep_old_slot_warm: true"
    )


def smoke_port_taken(shape, ctx):
    shape.elbv2.create_listener(
        LoadBalancerArn=shape.lb_arn, Protocol="HTTP", Port=8081, DefaultActions=shape.forward()
    )
    return (
        "smoke-port",
        f"load balancer {shape.name} already has a listener on :8081, which the smoke check would replace; give release.smoke_check.port a free port",
    )


def listener_forwards_to_blue_only(shape, ctx):
    only_blue = [
        {
            "Type": "forward",
            "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": shape.groups["blue"], "Weight": 100}]},
        }
    ]
    shape.elbv2.modify_listener(ListenerArn=shape.listener, DefaultActions=only_blue)
    return "listener", (
        f"listener :80 does not forward to {shape.name}-green; give its default action a weighted forward to both slot target groups "
        "(blue 100, green 0)"
    )


def load_balancer_missing(shape, ctx):
    shape.settings["release"]["load_balancer"] = f"{shape.name}-gone"
    return (
        "lb-zones",
        f"load balancer '{shape.name}-gone' does not exist in {shape.region}; create it in your infrastructure code or fix release.load_balancer",
    )


def rights_denied(shape, ctx):
    policy = accounts.rodeo_policy(shape.write(ctx["root"]))
    policy["Statement"].append({"Effect": "Deny", "Action": "ec2:RunInstances", "Resource": "*"})
    ctx["caller"] = accounts.user_with(shape, policy, ctx["monkeypatch"])
    actions = {a for q in rights.questions(shape.write(ctx["root"]), "123456789012") for a in q.actions}
    return "rights", (
        f"arn:aws:iam::123456789012:user/{shape.name}-caller may not call 1 of the {len(actions)} actions Rodeo calls: ec2:RunInstances; "
        f"attach 'invoke iam-policy --for all --env {shape.name}' to it"
    )


def packer_with_an_sso_profile(shape, ctx):
    config_file = ctx["root"] / "aws-config"
    config_file.write_text(
        "[profile team]\nsso_start_url = https://acme.awsapps.com/start\nsso_region = us-east-1\n"
        "sso_account_id = 123456789012\nsso_role_name = Deployer\nregion = us-east-1\n"
    )
    ctx["caller"] = accounts.user_with(shape, accounts.rodeo_policy(shape.write(ctx["root"])), ctx["monkeypatch"])
    ctx["environ"] = {
        "AWS_PROFILE": "team",
        "AWS_CONFIG_FILE": str(config_file),
    }  # what Packer gets: no keys, the profile
    return "packer", (
        f"Packer 1.6.6 cannot use the SSO profile 'team' (sso_account_id, sso_region, sso_role_name, sso_start_url in {config_file}; "
        'hashicorp/packer#10525); export its keys first: eval "$(aws configure export-credentials --profile team --format env)", '
        "or install Packer 1.7+"
    )


def ebs_key_without_rights(shape, ctx):
    key = shape.aws.client("kms").create_key(Description="team EBS key")["KeyMetadata"]
    shape.ec2.modify_ebs_default_kms_key_id(KmsKeyId=key["KeyId"])
    # A team's own policy without Rodeo's grants of the default EBS key through EC2.
    policy = accounts.rodeo_policy(shape.write(ctx["root"]))
    policy["Statement"] = [s for s in policy["Statement"] if not all(a.startswith("kms:") for a in s["Action"])]
    ctx["caller"] = accounts.user_with(shape, policy, ctx["monkeypatch"])
    return "ebs-key", (
        f"default EBS key {key['Arn']} is customer-managed and the caller may not kms:CreateGrant, kms:Decrypt on it "
        "(through EC2): CopyImage and RunInstances of encrypted volumes fail; grant them in its key policy or the caller's policy"
    )


BROKEN = [
    source_ami_name,
    source_ami_id,
    private_without_nat,
    public_without_public_ips,
    endpoints_missing,
    instances_outside_the_load_balancers_zones,
    app_group_shut,
    app_group_on_another_port,
    vpc_default_group,
    alarm_slower_than_a_step,
    alarm_missing,
    stickiness_outlasts_the_drain,
    smoke_port_taken,
    listener_forwards_to_blue_only,
    load_balancer_missing,
    rights_denied,
    packer_with_an_sso_profile,
]
# The default EBS key is the account's in a region: that shape has a region of its own on the shared server.
REGIONS = {ebs_key_without_rights: "us-west-2"}


@pytest.mark.parametrize("breaks", [*BROKEN, ebs_key_without_rights], ids=lambda f: f.__name__)
def test_a_broken_account_fails_with_its_line(server, tmp_path, monkeypatch, breaks):
    shape = accounts.healthy(server[1], REGIONS.get(breaks, "us-east-1"))
    ctx = {"root": tmp_path, "monkeypatch": monkeypatch}
    name, line = breaks(shape, ctx)
    result = run(shape, tmp_path, ctx.get("caller"), ctx.get("environ"))
    assert (result.check(name).status, result.check(name).line) == ("fail", line)
    assert result.failed  # what `invoke doctor` exits non-zero on


def test_an_authenticating_listener_is_a_warning_not_a_failure(server, tmp_path):
    shape = accounts.healthy(server[1])
    oidc = {
        "Type": "authenticate-oidc",
        "Order": 1,
        "AuthenticateOidcConfig": {
            "Issuer": "https://idp.example",
            "AuthorizationEndpoint": "https://idp.example/auth",
            "TokenEndpoint": "https://idp.example/token",
            "UserInfoEndpoint": "https://idp.example/me",
            "ClientId": "rodeo",
            "ClientSecret": "not-a-secret",
        },
    }
    shape.elbv2.modify_listener(ListenerArn=shape.listener, DefaultActions=[oidc, dict(shape.forward()[0], Order=2)])
    result = run(shape, tmp_path)
    assert (result.check("listener").status, result.check("listener").line) == (
        "warn",
        "listener :80 runs authenticate-oidc before its forward: each weight change must send it again (ModifyListener replaces the whole action list)",
    )
    assert result.failed == []


# --- the command line ---------------------------------------------------------------------------------


def invoke(root: Path, state: Path, *args: str) -> subprocess.CompletedProcess:
    shutil.copy2(ROOT / "tasks.py", root / "tasks.py")
    env = dict(os.environ, RODEO_STATE_DIR=str(state), RODEO_LOCAL_LIVE="0")
    env.pop("RODEO_DEBUG", None)
    return subprocess.run(
        [str(Path(sys.executable).parent / "invoke"), "doctor", *args],
        check=False,
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_the_command_exits_zero_on_a_healthy_account(server, tmp_path):
    shape = accounts.healthy(server[1])
    shape.write(tmp_path)
    done = invoke(tmp_path, server[0], "--env", shape.name)
    assert done.returncode == 0, done.stderr
    # The stack's own caller is its admin user (toolkit.local.auth): its rights are simulated like anyone's.
    assert done.stdout.splitlines()[-1] == f"doctor --env {shape.name}: 0 failed, 0 warning(s), 14 passed"


def test_the_command_exits_non_zero_with_one_json_object_on_a_broken_account(server, tmp_path, monkeypatch):
    shape = accounts.healthy(server[1])
    name, line = smoke_port_taken(shape, {})
    shape.write(tmp_path)
    done = invoke(tmp_path, server[0], "--env", shape.name, "--json")
    assert done.returncode == 1
    found = json.loads(done.stdout.splitlines()[-1])
    assert found["ok"] is False
    assert [c for c in found["checks"] if c["status"] == "fail"] == [{"name": name, "status": "fail", "line": line}]
    assert done.stderr.splitlines() == [
        "error: 1 doctor check(s) failed: smoke-port",
        "  hint: fix each ✗ line above, then run 'invoke doctor' again",
    ]


def test_the_seeded_local_environment_passes_every_check(tmp_path):
    """The local stack is seeded in AWS's shape (public and private subnets, NAT, groups, an alarm the pause lets fire,
    access logs): doctor finds nothing to fix in it, so what the suite proves there is what a healthy account would see."""
    from toolkit import config

    result = doctor_on_a_seeded_stack(config.load("local", ROOT), tmp_path)
    # One warning: the local inventory's 20 s steps are judged locally, where access logs come every second; on AWS
    # they come in 5-minute files (README, "Canary analysis"), and doctor says so as it would there.
    assert [(c.name, c.status) for c in result.checks if c.status != "ok"] == [("analysis", "warn")]
    assert result.check("analysis").line.startswith("release.pause_seconds 20 is shorter than judging errors, latency")
    assert len(result.checks) == 14


def test_a_seeded_classic_elb_passes_every_check(tmp_path):
    """The same behind the seeded Classic ELB (``release.load_balancer_type: classic``): its listener, the instance
    port its groups must admit, its alarm on AWS/ELB; nothing to fix."""
    from tests.support.livebuilds import behind_classic
    from toolkit import config

    result = doctor_on_a_seeded_stack(behind_classic(config.load("local", ROOT)), tmp_path)
    assert [(c.name, c.status, c.line) for c in result.checks if c.status != "ok"] == []
    assert result.check("listener").line == "Classic ELB listener :80: a release attaches each slot's group in turn"
    assert result.check("lb-to-instances").line == "the instances' security groups admit the load balancer on port 8080"
    assert len(result.checks) == 14


def test_a_seeded_release_in_waves_is_checked_in_each_region(tmp_path):
    """``release.regions``: the second region's release side (its load balancer, network, groups, table) is checked
    too, each line named with its region; the seeded regions have nothing to fix but the local analysis warning."""
    import dataclasses

    from toolkit import config
    from toolkit.config import RegionWave
    from toolkit.local import seed

    cfg = config.load("local", ROOT)
    west = RegionWave("us-west-2", seed.private_subnets("us-west-2"), (seed.instance_sg("us-west-2"),))
    cfg = dataclasses.replace(
        cfg,
        copy_to_regions=("us-west-2",),
        release=dataclasses.replace(cfg.release, regions=("us-east-1", west)),
    )
    result = doctor_on_a_seeded_stack(cfg, tmp_path)
    assert [(c.name, c.status) for c in result.checks if c.status != "ok"] == [
        ("analysis", "warn"),
        ("analysis (us-west-2)", "warn"),
    ]
    # After region:'s 14: its release side's, EBS key's and table's checks (its 5th to 14th) again, for us-west-2.
    assert [c.name for c in result.checks[14:]] == [f"{c.name} (us-west-2)" for c in result.checks[4:14]]
    assert result.check("network (us-west-2)").line.startswith(
        "2 instance subnet(s) reach SSM, Logs and S3 (NAT gateway nat-"
    )


def doctor_on_a_seeded_stack(cfg, tmp_path):
    """doctor's result on a local stack of its own, seeded for ``cfg`` as ``invoke local.up`` seeds it."""
    from toolkit.local import seed, stack
    from toolkit.local.environment import LocalEnvironment

    st = stack.Stack(state_dir=tmp_path / "state", cache_dir=tmp_path / "cache")
    url = stack.up(st, cfg.region, seeders=(seed.seed_release(cfg),))
    try:
        return doctor(cfg, LocalEnvironment(region=cfg.region, endpoint=url), environ={}, packer_version=lambda: PACKER)
    finally:
        stack.down(st)
