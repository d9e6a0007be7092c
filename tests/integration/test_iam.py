"""The IAM policy grants exactly what Rodeo calls: recorded from the real flows against a moto server.

Each test runs one purpose's flows in-process with every client ``Aws.client``
makes hooked (``aws_calls.Recorder``), as an IAM user holding only that
purpose's policy (``invoke iam-policy --for <purpose>``) on a stack that
enforces IAM (``toolkit.local.auth``): a call the policy leaves out fails
with AccessDenied, Packer's own calls in a bake included. Then it checks
both ways against ``toolkit.iam.policy``: no recorded action is missing from
the policy (moto checks actions, not resources or conditions: the recorder
covers what moto cannot see, such as tags at creation), and no action of
Rodeo's own (non-Packer) statements went uncalled. Seeding the local stack
and the tests' own set-up run paused, as the stack's admin, and are not
counted. The unit test holds Packer's part to Packer's documented list.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import itertools
import re
import subprocess
import time
import types
import urllib.request
from datetime import datetime, timedelta, timezone

import botocore.exceptions
import pytest

from tests.integration.aws_calls import Recorder
from tests.integration.bakes import ROOT, Project
from tests.integration.release.conftest import World, make_config
from tests.support.principals import acting_as
from tests.support.stacks import moto_stack
from toolkit import config as config_mod
from toolkit import configchange as change
from toolkit import iam, table
from toolkit import lineage as images
from toolkit import lock as release_lock
from toolkit.config import Scaling, Schedule, SmokeCheck, TargetTracking
from toolkit.errors import LockError, ReleaseError, VerifyError
from toolkit.hosts.ec2 import Ec2Hosts
from toolkit.images import check as ami_check
from toolkit.images.prune import prune
from toolkit.local import seed, stack
from toolkit.local.environment import LocalEnvironment
from toolkit.local.hosts import LocalHosts
from toolkit.release import history, ledger, report, resize, rollout, smoke
from toolkit.release import setup as infra
from toolkit.release import status as release_status
from toolkit.ui import Silent

pytestmark = pytest.mark.integration

E, W = "us-east-1", "us-west-2"
_ids = itertools.count(1)


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    """One moto server for this module (seeded: VPC, subnets, base AMI), stopped at the end."""
    with moto_stack(tmp_path_factory.mktemp("iam-stack"), E) as started:
        yield started


@pytest.fixture
def recorder(monkeypatch) -> Recorder:
    rec = Recorder()
    rec.patch(monkeypatch)
    return rec


@pytest.fixture
def project(tmp_path):
    for rel in ("playbooks/base.yml", "playbooks/app.yml", "tests/image/test_base.py", "tests/image/test_app.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    return tmp_path


def covered(document: dict, action: str) -> bool:
    """True when a statement of ``document`` allows ``action`` (IAM matching: case-insensitive, wildcards)."""
    for statement in document["Statement"]:
        granted = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if any(fnmatch.fnmatch(action.lower(), g.lower()) for g in granted):
            return True
    return False


def check(cfg, rec: Recorder, purpose: str, phase: str = "", unused_ok: tuple[str, ...] = ()) -> None:
    """The policy for ``purpose`` covers every call recorded in ``phase`` (default: the purpose),
    and Rodeo's own grants were all called (but ``unused_ok``, which another test calls)."""
    phase = phase or purpose
    called = rec.actions(phase)
    assert called, f"nothing recorded for {phase}"
    print(f"{purpose}: {len(called)} actions called: {', '.join(sorted(called))}")  # shown with -s, or on failure
    document = iam.policy(cfg, (purpose,))
    missing = sorted(a for a in called if not covered(document, a))
    assert not missing, f"{purpose}: called but not in the policy: {missing}"
    lowered = {a.lower() for a in called}
    unused = sorted(
        a for a in iam.actions(cfg, (purpose,), packer=False) if a.lower() not in lowered and a not in unused_ok
    )
    assert not unused, f"{purpose}: granted to Rodeo but never called: {unused}"
    outside = rec.regions(phase) - set(iam.regions(cfg))
    assert not outside, f"{purpose}: calls in regions the policy does not allow: {outside}"


class _Answer:
    status = 200

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_release_rollback_status_setup(moto, project, recorder, monkeypatch):
    st, url = moto
    with recorder.paused():
        world = World(make_config(project, smoke_check=SmokeCheck()), url, st).seed()
        # With scaling: a schedule and a policy move to the new slot; their processes are suspended and resumed.
        world.cfg = dataclasses.replace(
            world.cfg,
            scaling=Scaling(
                schedules=(Schedule("night", "0 22 * * *", min=2, max=4, desired=2),),
                target_tracking=(TargetTracking("cpu", "cpu", 50),),
            ),
        )
        infra.ensure(world.cfg, world.aws)
        ami = world.ami(sha="feed123")
        fresh = World(make_config(project), url, st).seed()  # setup below makes its Rodeo-owned half again
        _remove_rodeo_owned(fresh)
        fresh.ami()  # its first bake: setup makes the template and groups only once an AMI exists
        aws, fresh_aws = acting_as(world.cfg, url, "release"), acting_as(fresh.cfg, url, "release")
        # A killed release's test listener, left on the smoke port: the release finds it by its tag and deletes it.
        world.observer.client("elbv2").create_listener(
            LoadBalancerArn=smoke._balancer(world.env),
            Protocol="HTTP",
            Port=SmokeCheck().port,
            Tags=[{"Key": smoke.TAG, "Value": "killed"}],
            DefaultActions=[{"Type": "forward", "TargetGroupArn": world.env.target_groups["blue"]}],
        )
    smoked = []
    # The smoke check goes to the load balancer's DNS name (a made-up one in moto): it must never send a packet.
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: smoked.append(url) or _Answer())
    cfg = world.cfg
    with recorder.phase("release"):
        assert rollout.release(cfg, aws, ami=ami, plan_only=True, reporter=Silent()).outcome == "planned"
        assert rollout.release(cfg, aws, ami=ami, reporter=Silent()).outcome == "released"
        assert release_status.status(cfg, aws)["ami"] == ami
        assert rollout.rollback(cfg, aws, reporter=Silent()).outcome == "restored"
        # Config vars: a plain and a secret value, then a config-only release that reads them back.
        change.set_vars(cfg, aws, {"GREETING": "hi"}, release=False, reporter=Silent())
        assert change.set_vars(cfg, aws, {"API_TOKEN": "t0ken"}, secret=True, reporter=Silent()).outcome == "released"
        assert change.list_vars(cfg, aws, show_secrets=True).vars["API_TOKEN"]["value"] == "t0ken"
        change.unset_vars(cfg, aws, ["GREETING"], release=False, reporter=Silent())
        assert set(change.list_vars(cfg, aws).vars) == {"API_TOKEN"}
        assert infra.ensure(cfg, aws)["created"] == []  # setup on a complete environment only checks
        created = infra.ensure(fresh.cfg, fresh_aws)["created"]
    with recorder.paused():
        entry = ledger.recent(cfg, world.observer, 3)[-1]  # the release (the rollback and the config release are newer)
    assert entry["kind"] == "release" and entry["smoke"].startswith("passed")  # ran: reached or skipped each instance
    with recorder.phase(
        "release"
    ):  # scale, the numbered history, and a rollback to v1 (the first release): the same user
        assert resize.scale(cfg, aws, resize.parse("3"), reporter=Silent()).outcome == "scaled"
        first = history.read(cfg, aws).runs[-1]
        assert rollout.rollback(cfg, aws, to=first.number, reporter=Silent()).outcome == "restored"
        # Every release's picture reads the load balancer's access logs (analysis on or off): the same user.
        newest = ledger.recent(cfg, aws, 1)[-1]
        notes = report.gather(cfg, aws, world.env, newest, time.time()).notes
        assert not [n for n in notes if n.startswith("No traffic drawn")], notes  # the logs were read
    assert re.fullmatch(rf"arn:aws:iam::\d{{12}}:user/rodeo-release-{cfg.app}-\d+", first.aws_caller), (
        first.aws_caller
    )  # who: the policy's user
    assert all(u.endswith(":8080/health") for u in smoked)
    assert len(created) == 4, created  # table, launch template, both slot groups
    with recorder.paused():
        asg = fresh.observer.client("autoscaling")
        asg.detach_load_balancer_target_groups(
            AutoScalingGroupName=fresh.cfg.release.slots["blue"], TargetGroupARNs=[fresh.env.target_groups["blue"]]
        )
    with recorder.phase("release"):
        assert infra.ensure(fresh.cfg, fresh_aws)["created"] == []  # re-attaches the target group
    # FilterLogEvents reads the new slot's journals while its instances are not healthy: instances here are at once
    # (no live stack); the live crash test releases as a user holding only this policy (test_release_live.py).
    # s3:GetObject: moto's load balancer serves no request, so it writes no access log file to read (a live stack's
    # does: test_release_live draws a release's picture from them).
    check(cfg, recorder, "release", unused_ok=("logs:FilterLogEvents", "s3:GetObject"))
    assert "elasticloadbalancing:ModifyListener" in recorder.actions("release")
    assert "autoscaling:AttachLoadBalancerTargetGroups" in recorder.actions("release")


def test_logs(moto, project, recorder):
    from toolkit.logs import group, tail, view

    st, url = moto
    with recorder.paused():
        world = World(make_config(project), url, st).seed()
        cfg, aws = world.cfg, acting_as(world.cfg, url, "logs")
        instance = world.observer.client("autoscaling").describe_auto_scaling_groups(
            AutoScalingGroupNames=[cfg.release.slots["blue"]]
        )["AutoScalingGroups"][0]["Instances"][0]["InstanceId"]
        group.ensure(cfg, world.observer)
        logs = world.observer.client("logs")
        logs.create_log_stream(logGroupName=group.name(cfg), logStreamName=instance)
        logs.put_log_events(
            logGroupName=group.name(cfg),
            logStreamName=instance,
            logEvents=[
                {
                    "timestamp": int(time.time() * 1000) - 60_000,
                    "message": '{"unit": "web.service", "message": "GET / 200"}',
                }
            ],
        )
    with recorder.phase("logs"):
        got = tail.lines(cfg, aws, view.query("1000w"))
    assert [(line.instance, line.slot) for line in got] == [(instance, "blue")]
    check(cfg, recorder, "logs")


def _remove_rodeo_owned(world: World) -> None:
    """Delete the table, launch template and slot groups Rodeo's setup makes (the load balancer side stays)."""
    cfg, aws = world.cfg, world.observer
    for name in cfg.release.slots.values():
        aws.client("autoscaling").delete_auto_scaling_group(AutoScalingGroupName=name, ForceDelete=True)
    aws.client("ec2").delete_launch_template(LaunchTemplateName=f"rodeo-{cfg.app}")
    aws.client("dynamodb").delete_table(TableName=table.table_name(cfg))


PRUNE_YML = """\
app: {app}
stack: local
region: us-east-1
copy_to_regions: [us-west-2]
images:
  app:
    source_ami: {{name: "debian-12-*", owners: ["self"]}}
    playbook: playbooks/app.yml
    tests: tests/image/test_app.py
release:
  load_balancer: {app}
  slots: {{blue: {app}-blue, green: {app}-green}}
  capacity: {{min: 1, max: 2, desired: 1}}
  pause_seconds: 0
  health_timeout_seconds: 3
"""


def test_prune_plan_and_for_real(moto, project, recorder):
    st, url = moto
    app = f"iam{next(_ids)}"
    path = project / "inventories" / "test" / "rodeo.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(PRUNE_YML.format(app=app))
    cfg = config_mod.load("test", project)
    admin = LocalEnvironment(region=cfg.region, endpoint=url)
    with recorder.paused():
        stack.up(st, E, seeders=(seed.seed_release(cfg),))
        for n in range(1, 5):
            _register_build(admin, app, n)
        # A legacy slot group (launch configuration) in the copy region: prune reads its AMI too.
        west = admin.client("autoscaling", W)
        west.create_launch_configuration(
            LaunchConfigurationName=f"{app}-legacy", ImageId=_register_build(admin, app, 9)[W], InstanceType="t3.micro"
        )
        west.create_auto_scaling_group(
            AutoScalingGroupName=f"{app}-blue",
            LaunchConfigurationName=f"{app}-legacy",
            MinSize=0,
            MaxSize=1,
            DesiredCapacity=0,
            AvailabilityZones=[f"{W}a"],
        )
        aws = acting_as(cfg, url, "prune")
    with recorder.phase("prune"):
        planned = prune(cfg, aws, "app", 1, plan_only=True, reporter=Silent()).to_dict()
        done = prune(cfg, aws, "app", 1, reporter=Silent()).to_dict()
    assert planned["delete"] and planned["deleted"] == []
    assert done["deleted"] and {d["region"] for d in done["deleted"]} == {E, W}
    assert any("pinned by slot group" in r for e in done["keep"] for r in e["reasons"])
    check(cfg, recorder, "prune")


def _register_build(aws, app: str, n: int) -> dict[str, str]:
    tags = [
        {"Key": k, "Value": v}
        for k, v in {
            "rodeo:app": app,
            "rodeo:image": "app",
            "rodeo:verified": "true",
            "rodeo:built-at": f"2026-11-01T00:{n:02d}:00Z",
            "rodeo:inputs-hash": f"h{n:04d}",
        }.items()
    ]
    out = {}
    for region in (E, W):
        ec2 = aws.client("ec2", region)
        ami = ec2.register_image(
            Name=f"{app}-app-{n}", Architecture="x86_64", RootDeviceName="/dev/xvda", VirtualizationType="hvm"
        )["ImageId"]
        ec2.create_tags(Resources=[ami], Tags=tags)
        out[region] = ami
    return out


def test_verify_aws_path(moto, recorder, tmp_path):
    _, url = moto
    cfg = dataclasses.replace(config_mod.load("local", ROOT), stack="aws")
    with recorder.paused():
        ec2 = LocalEnvironment(region=E, endpoint=url).client("ec2")
        ami = ec2.register_image(
            Name=f"iam-verify-{next(_ids)}",
            Architecture="x86_64",
            RootDeviceName="/dev/xvda",
            VirtualizationType="hvm",
            BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8}}],
        )["ImageId"]
        ec2.create_tags(
            Resources=[ami], Tags=[{"Key": "rodeo:image", "Value": "base"}, {"Key": "rodeo:app", "Value": cfg.app}]
        )
        aws = acting_as(cfg, url, "verify")
    with recorder.phase("verify"):
        # ssh_timeout=0: moto's instances have public-looking addresses; never connect to one.
        with pytest.raises(VerifyError, match="did not answer SSH"):
            ami_check.verify_ami(
                cfg,
                aws,
                Ec2Hosts(aws, caller=lambda: "203.0.113.7", ssh_timeout=0),
                ami,
                state_dir=tmp_path,
                reporter=Silent(),
            )
        ami_check.record_verdict(aws, images.find_ami(aws, ami), True)  # the verdict a run with tests records
    check(cfg, recorder, "verify")


def test_bake_aws_helpers(moto, recorder, tmp_path):
    """Every AWS call a bake makes itself, through the helpers it uses (runs without root or Packer)."""
    from toolkit.bake import pipeline as bake

    _, url = moto
    cfg = config_mod.load("local", ROOT)
    with recorder.paused():
        aws = acting_as(cfg, url, "bake")
    key = tmp_path / "ssh_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    with recorder.phase("bake-helpers"):
        source = images.resolve_source(aws, cfg.image("base"))  # the seeded base AMI, by name filter
        assert images.find_ami(aws, source)["ImageId"] == source
        assert images.find_by_inputs(aws, cfg.app, "base", "0" * 64) is None  # the cache look-up
        said = types.SimpleNamespace(warnings=[])
        said.warn = said.warnings.append
        with bake._key_pair(aws, types.SimpleNamespace(bake_id=f"base-iam-{next(_ids)}"), key, said) as name:
            assert name.startswith("rodeo-base-iam-")
        assert said.warnings == []  # the key pair was deleted: the bake policy allows it
        # The bake lock, held by another run (a pid of this host that still runs: this test's own parent).
        with recorder.paused():
            table.ensure_table(
                cfg, LocalEnvironment(region=cfg.region, endpoint=url)
            )  # invoke setup's (as the admin), not the bake's
        key_of = release_lock.bake_key("base", "f" * 64)
        held = release_lock.acquire(cfg, aws, "bake by another run", lock_key=key_of, what="the bake of base")
        plan = types.SimpleNamespace(image="base", inputs_hash="f" * 64, bake_id="base-iam-lock")
        with pytest.raises(LockError, match="another bake of the same inputs is running"):
            with bake._bake_lock(cfg, aws, plan, False, False, Silent()):
                pass
        assert release_lock.free(aws, held)
    check(cfg, recorder, "bake", "bake-helpers")


def test_bake_own_calls(local_stack, tmp_path, recorder):
    """A real bake of ``base`` in-process: Rodeo's own calls are recorded (Packer's run in its own process)."""
    from toolkit.bake.pipeline import bake

    st, url = local_stack
    proj = Project(tmp_path / "project", st.state_dir)
    cfg = config_mod.load("local", proj.root)
    with recorder.paused():
        table.ensure_table(
            cfg, LocalEnvironment(region=cfg.region, endpoint=url)
        )  # the bake lock's table (invoke setup makes it, as the admin)
        aws = acting_as(cfg, url, "bake")  # Rodeo's calls and Packer's (its process gets these credentials)
    with recorder.phase("bake"):
        baked = bake(cfg, aws, LocalHosts(st, aws), "base", st.state_dir, Silent(), force=True)
        again = bake(cfg, aws, LocalHosts(st, aws), "base", st.state_dir, Silent())
    assert baked.cached is False and again.cached is True and again.ami == baked.ami
    # GetItem reads the lock only when another bake holds it: test_bake_aws_helpers calls it.
    check(cfg, recorder, "bake", unused_ok=("dynamodb:GetItem",))


def test_moto_refuses_what_the_policy_leaves_out(moto, project):
    """IAM is enforced, not assumed: a principal gets exactly its policy's actions, and an unknown or forged key nothing."""
    st, url = moto
    world = World(make_config(project), url, st).seed()
    logs_only = acting_as(world.cfg, url, "logs")
    assert logs_only.client("ec2").describe_instances()["Reservations"] is not None  # LogsDescribe
    refused = [  # (service, action, code: each protocol's own)
        ("ec2", "DescribeVpcs", "UnauthorizedOperation", lambda: logs_only.client("ec2").describe_vpcs()),
        (
            "elbv2",
            "elasticloadbalancing:DescribeLoadBalancers",
            "AccessDenied",
            lambda: logs_only.client("elbv2").describe_load_balancers(),
        ),
        (
            "ssm",
            "ssm:PutParameter",
            "AccessDeniedException",
            lambda: logs_only.client("ssm").put_parameter(Name="/rodeo/x", Value="1", Type="String"),
        ),
        (
            "dynamodb",
            "dynamodb:ListTables",
            "AccessDeniedException",
            lambda: logs_only.client("dynamodb").list_tables(),
        ),
        (
            "cloudwatch",
            "cloudwatch:DescribeAlarms",
            "AccessDeniedException",
            lambda: logs_only.client("cloudwatch").describe_alarms(),
        ),
    ]
    for service, action, code, call in refused:
        with pytest.raises(botocore.exceptions.ClientError) as err:
            call()
        assert (service, err.value.response["Error"]["Code"]) == (service, code)
        assert err.value.response["Error"]["Message"].endswith(
            f"is not authorized to perform: {action if ':' in action else 'ec2:' + action}"
        )
    forged = dict(logs_only.credentials, aws_secret_access_key="forged")
    unknown = {"aws_access_key_id": "AKIAUNKNOWNUNKNOWN00", "aws_secret_access_key": "x"}
    for creds, code in ((forged, "SignatureDoesNotMatch"), (unknown, "InvalidClientTokenId")):
        with pytest.raises(botocore.exceptions.ClientError) as err:
            LocalEnvironment(region=E, endpoint=url, credentials=creds).client("elbv2").describe_load_balancers()
        assert err.value.response["Error"]["Code"] == code
        with pytest.raises(botocore.exceptions.ClientError) as err:
            LocalEnvironment(region=E, endpoint=url, credentials=creds).client("ec2").describe_instances()
        assert err.value.response["Error"]["Code"] == "AuthFailure"


def test_a_release_fails_on_the_first_call_its_policy_leaves_out(moto, project):
    st, url = moto
    world = World(make_config(project), url, st).seed()
    ami = world.ami(sha="feed456")
    document = iam.policy(world.cfg, ("release",))
    for statement in document["Statement"]:
        statement["Action"] = [a for a in statement["Action"] if a != "elasticloadbalancing:ModifyListener"]
    document["Statement"] = [s for s in document["Statement"] if s["Action"]]
    aws = acting_as(world.cfg, url, "release", document)
    with pytest.raises(ReleaseError) as err:
        rollout.release(world.cfg, aws, ami=ami, reporter=Silent())
    assert err.value.message == (
        f"release of {ami} stopped: AWS refused ModifyListener: AccessDenied; "
        "rolling back failed too: AWS refused ModifyListener: AccessDenied"
    )
    state = world.state()
    assert (state.blue.weight, state.green.weight) == (100, 0)  # nothing shifted


def test_a_release_without_scaling_removes_what_an_earlier_config_put_on(moto, project):
    """Issue 19 item 16: the release policy of a config without scaling: still deletes Rodeo's schedules and policies."""
    st, url = moto
    world = World(make_config(project), url, st).seed()
    scaled = dataclasses.replace(
        world.cfg,
        scaling=Scaling(
            schedules=(Schedule("night", "0 22 * * *", min=2, max=4, desired=2),),
            target_tracking=(TargetTracking("cpu", "cpu", 50),),
        ),
    )
    assert rollout.release(scaled, world.aws, ami=world.ami(sha="5ca1ed1"), reporter=Silent()).outcome == "released"
    asg = world.observer.client("autoscaling")
    live = world.cfg.release.slots["green"]
    assert len(asg.describe_scheduled_actions(AutoScalingGroupName=live)["ScheduledUpdateGroupActions"]) == 1
    assert len(asg.describe_policies(AutoScalingGroupName=live)["ScalingPolicies"]) == 1
    unscaled = dataclasses.replace(world.cfg, scaling=None)
    aws = acting_as(unscaled, url, "release")
    assert rollout.release(unscaled, aws, ami=world.ami(sha="5ca1ed2"), reporter=Silent()).outcome == "released"
    for slot in world.cfg.release.slots.values():
        assert asg.describe_scheduled_actions(AutoScalingGroupName=slot)["ScheduledUpdateGroupActions"] == []
        assert asg.describe_policies(AutoScalingGroupName=slot)["ScalingPolicies"] == []


def test_review_up_update_list_prune_and_down(moto, project, recorder, monkeypatch, tmp_path):
    """A review app's whole life as a user holding only ``invoke iam-policy --for review``: made, rerun unchanged,
    updated (a new instance beside the old, the old one terminated), listed, pruned, removed again (absent).
    ``review.up`` bakes first; here it gets its AMI as a reuse would, without the bake's calls (test_bake_*)."""
    from toolkit.config import Review
    from toolkit.review import apps

    st, url = moto
    with recorder.paused():
        world = World(make_config(project), url, st).seed()
        cfg = dataclasses.replace(world.cfg, review=Review(domain="review.test"))
        ami = world.ami(sha="feed789")
        change.set_vars(cfg, world.aws, {"GREETING": "hi", "PLAN": "pro"}, release=False, reporter=Silent())
        aws = acting_as(cfg, url, "review", iam.policy(cfg, iam.purposes_for("review")))
    baked = types.SimpleNamespace(ami={cfg.region: ami}, app={"version": "1.0.0", "commit": "feed789"}, cached=True)
    monkeypatch.setattr(apps, "bake", lambda *args, **kwargs: baked)

    def up(**overrides):
        return apps.up(cfg, aws, None, tmp_path, name="pr-7", overrides=overrides, reporter=Silent()).outcome

    with recorder.phase("review"):
        assert up(GREETING="review") == "created"
        assert up() == "unchanged"
    with recorder.paused():  # someone pointed its rule at another host: the next up puts it back (ModifyRule)
        elbv2 = world.observer.client("elbv2")
        (rule,) = [
            r for r in elbv2.describe_rules(ListenerArn=world.env.listener_arn)["Rules"] if not r.get("IsDefault")
        ]
        host = [{"Field": "host-header", "HostHeaderConfig": {"Values": ["elsewhere.review.test"]}}]
        elbv2.modify_rule(RuleArn=rule["RuleArn"], Conditions=host)
    with recorder.phase("review"):
        assert up(GREETING="again") == "updated"
        (listed,) = apps.list_apps(cfg, aws).apps
        assert (listed.name, listed.state, listed.ami) == ("pr-7", "up", ami)
        later = datetime.now(timezone.utc) + timedelta(days=2)
        pruned = apps.prune(cfg, aws, 1, reporter=Silent(), clock=lambda: later)
        assert [r.outcome for r in pruned.removed] == ["removed"]
        assert apps.down(cfg, aws, "pr-7", reporter=Silent()).outcome == "absent"
    with recorder.paused():
        assert apps.list_apps(cfg, world.observer).apps == ()
    assert {"elasticloadbalancing:AddTags", "ec2:CreateTags", "ec2:RunInstances"} <= recorder.actions("review")
    check(cfg, recorder, "review")
