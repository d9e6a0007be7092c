"""Release, rollback, status and plan against a moto server."""

from __future__ import annotations

import pytest

from toolkit.errors import ImageError, ReleaseError
from toolkit.release import ledger, rollout
from toolkit.release import status as release_status


def test_happy_path_moves_all_traffic_and_records_it(world):
    before = world.state()
    ami = world.ami(sha="c0ffee1")
    result = rollout.release(world.cfg, world.aws, ami=ami, reporter=world.reporter)
    assert result.outcome == "released"
    assert result.active_slot == "green" and result.steps == [10, 50, 100]
    after = world.state()
    assert after.weights == {"blue": 0, "green": 100}
    assert (after.green.ami, after.green.instances, after.green.healthy) == (ami, 2, 2)
    assert (after.blue.desired, after.blue.instances, after.blue.ami) == (0, 0, before.blue.ami)
    entry = ledger.recent(world.cfg, world.aws, 1)[0]
    assert entry["outcome"] == "released" and entry["git_sha"] == "c0ffee1" and entry["steps"] == [10, 50, 100]
    assert entry["from_ami"] == before.blue.ami and entry["by"] and entry["ended_at"] >= entry["started_at"]
    template = world.aws.client("ec2").describe_launch_template_versions(
        LaunchTemplateName=f"rodeo-{world.cfg.app}", Versions=[str(after.green.version)]
    )
    assert template["LaunchTemplateVersions"][0]["LaunchTemplateData"]["MetadataOptions"]["HttpTokens"] == "required"
    status = release_status.status(world.cfg, world.aws)
    assert (
        status["active_slot"] == "green"
        and status["ami"] == ami
        and status["git_sha"] == "c0ffee1"
        and status["lock"] is None
    )
    assert status["slots"]["green"]["healthy"] == 2 and status["releases"][0]["outcome"] == "released"


def test_image_flag_picks_the_newest_verified(world):
    world.ami()
    newest = world.ami()
    world.ami(verified=False)
    result = rollout.release(world.cfg, world.aws, image="app", reporter=world.reporter)
    assert result.ami == newest


def test_releasing_the_active_ami_is_unchanged(world):
    ami = world.ami()
    rollout.release(world.cfg, world.aws, ami=ami, reporter=world.reporter)
    before = world.state()
    result = rollout.release(world.cfg, world.aws, ami=ami, reporter=world.reporter)
    assert result.outcome == "unchanged" and result.active_slot == "green"
    assert world.state() == before


def test_plan_changes_nothing(world):
    ami = world.ami()
    before = world.state()
    history = ledger.recent(world.cfg, world.aws)
    result = rollout.release(world.cfg, world.aws, ami=ami, plan_only=True, reporter=world.reporter)
    assert result.outcome == "planned" and result.steps == [10, 50, 100]
    assert result.plan["new_slot"] == "green" and result.plan["rollback_target"] == before.blue.ami
    assert world.state() == before and ledger.recent(world.cfg, world.aws) == history


def test_rollback_after_a_good_release(world):
    base = world.state().blue.ami
    ami = world.ami()
    rollout.release(world.cfg, world.aws, ami=ami, reporter=world.reporter)
    result = rollout.rollback(world.cfg, world.aws, reporter=world.reporter)
    assert result.outcome == "restored" and result.kind == "rollback" and result.ami == base
    after = world.state()
    assert after.weights == {"blue": 100, "green": 0}
    assert (after.blue.ami, after.blue.healthy, after.green.desired) == (base, 2, 0)
    assert result.steps == [100]


def test_keep_warm_makes_rollback_a_weight_shift(make_world):
    world = make_world(keep_old_slot_warm=True)
    base = world.state().blue.ami
    rollout.release(world.cfg, world.aws, ami=world.ami(), reporter=world.reporter)
    assert world.state().blue.instances == 2
    rollout.rollback(world.cfg, world.aws, reporter=world.reporter)
    after = world.state()
    assert after.weights == {"blue": 100, "green": 0} and after.blue.ami == base and after.green.instances == 2


def test_unhealthy_new_instances_roll_back(world):
    ami = world.ami()
    ec2 = world.aws.client("ec2")

    def stop_new_instances(http_response, parsed, model, **kwargs):
        if model.name == "UpdateAutoScalingGroup":
            group = world.aws.client("autoscaling").describe_auto_scaling_groups(
                AutoScalingGroupNames=[f"{world.cfg.app}-green"]
            )["AutoScalingGroups"][0]
            ids = [i["InstanceId"] for i in group["Instances"]]
            if ids:
                ec2.stop_instances(InstanceIds=ids)

    world.aws.client("autoscaling").meta.events.register(
        "after-call.autoscaling.UpdateAutoScalingGroup", stop_new_instances
    )
    with pytest.raises(ReleaseError) as caught:
        rollout.release(world.cfg, world.aws, ami=ami, reporter=world.reporter)
    assert caught.value.result.outcome == "rolled_back" and "healthy" in caught.value.message
    after = world.state()
    assert after.weights == {"blue": 100, "green": 0}
    assert after.green.desired == 0 and after.green.instances == 0 and after.blue.healthy == 2
    entry = ledger.recent(world.cfg, world.aws, 1)[0]
    assert entry["outcome"] == "rolled_back" and "healthy" in entry["reason"]


def test_alarm_mid_release_rolls_back(alarmed_world):
    world = alarmed_world
    ami = world.ami()
    cw = world.aws.client("cloudwatch")
    seen = []

    def fire_after_first_weight(model, **kwargs):
        if model.name != "ModifyListener":
            return
        seen.append(1)
        if len(seen) == 1:
            cw.set_alarm_state(AlarmName=f"{world.cfg.app}-5xx", StateValue="ALARM", StateReason="test: 5xx spike")

    world.aws.client("elbv2").meta.events.register("after-call", fire_after_first_weight)
    with pytest.raises(ReleaseError) as caught:
        rollout.release(world.cfg, world.aws, ami=ami, reporter=world.reporter)
    assert caught.value.result.outcome == "rolled_back" and caught.value.result.steps == [10]
    assert "ALARM" in caught.value.message
    after = world.state()
    assert after.weights == {"blue": 100, "green": 0} and after.green.desired == 0
    entry = ledger.recent(world.cfg, world.aws, 1)[0]
    assert entry["outcome"] == "rolled_back" and f"{world.cfg.app}-5xx" in entry["reason"]


def test_nonexistent_ami_is_refused(world):
    before = world.state()
    with pytest.raises(ImageError, match="does not exist"):
        rollout.release(world.cfg, world.aws, ami="ami-0123456789abcdef0", reporter=world.reporter)
    assert world.state() == before


def test_unverified_ami_is_refused_unless_allowed(world):
    ami = world.ami(verified=False)
    before = world.state()
    with pytest.raises(ImageError, match="not a verified"):
        rollout.release(world.cfg, world.aws, ami=ami, reporter=world.reporter)
    assert world.state() == before
    assert (
        rollout.release(world.cfg, world.aws, ami=ami, allow_unverified=True, reporter=world.reporter).outcome
        == "released"
    )


def test_missing_target_group_names_it(world):
    import dataclasses

    before = world.state()
    cfg = dataclasses.replace(
        world.cfg,
        release=dataclasses.replace(world.cfg.release, slots={"blue": f"{world.cfg.app}-blue", "green": "nope-green"}),
    )
    with pytest.raises(ReleaseError, match="nope-green"):
        rollout.release(cfg, world.aws, ami=world.ami(), reporter=world.reporter)
    assert world.state() == before


def test_missing_listener_names_the_port(world):
    import dataclasses

    before = world.state()
    cfg = dataclasses.replace(world.cfg, release=dataclasses.replace(world.cfg.release, listener_port=8443))
    with pytest.raises(ReleaseError, match="no listener on port 8443"):
        rollout.release(cfg, world.aws, ami=world.ami(), reporter=world.reporter)
    assert world.state() == before


def test_missing_load_balancer_and_bad_steps(world):
    import dataclasses

    rel = world.cfg.release
    with pytest.raises(ReleaseError, match="load balancer 'nope' does not exist"):
        rollout.release(
            dataclasses.replace(world.cfg, release=dataclasses.replace(rel, load_balancer="nope")),
            world.aws,
            ami=world.ami(),
            reporter=world.reporter,
        )
    with pytest.raises(ReleaseError, match="must increase and end at 100"):
        rollout.release(
            dataclasses.replace(world.cfg, release=dataclasses.replace(rel, steps=(50, 10))),
            world.aws,
            ami=world.ami(),
            reporter=world.reporter,
        )


@pytest.mark.parametrize("status,rolled_back", [(500, True), (404, True), (200, False)])
def test_a_failing_smoke_check_rolls_the_release_back(make_world, status, rolled_back):
    """The test listener answers ``status``: anything but 2xx rolls back before any weight moves.

    moto's load balancer answers nothing: a loopback server stands in for what
    the test listener serves (the live stack's tests send it through HAProxy).
    """
    import http.server
    import threading

    from toolkit.config import SmokeCheck

    class Answer(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        world = make_world(smoke_check=SmokeCheck(path="/health", port=8081, timeout_seconds=2, requests=3))
        world.made_listeners = []
        world.aws.client("elbv2").meta.events.register(
            "provide-client-params",
            lambda params, model, **kw: world.made_listeners.append(params) if model.name == "CreateListener" else None,
        )
        world.aws.listener_url = lambda load_balancer, port: {8081: f"http://127.0.0.1:{server.server_address[1]}"}.get(
            port
        )
        ami = world.ami()
        if rolled_back:
            with pytest.raises(ReleaseError) as caught:
                rollout.release(world.cfg, world.aws, ami=ami, reporter=world.reporter)
            assert caught.value.result.outcome == "rolled_back" and caught.value.result.steps == []
            assert f"answered {status} (3 of 3 bad)" in caught.value.message
            after = world.state()
            assert after.weights == {"blue": 100, "green": 0} and after.green.desired == 0
        else:
            assert rollout.release(world.cfg, world.aws, ami=ami, reporter=world.reporter).outcome == "released"
            assert ledger.recent(world.cfg, world.aws, 1)[0]["smoke"] == "passed 3"
        # The test listener existed for the check only, and sent everything to the slot under test (green).
        elbv2 = world.aws.client("elbv2")
        lb_arn = elbv2.describe_load_balancers(Names=[world.cfg.release.load_balancer])["LoadBalancers"][0][
            "LoadBalancerArn"
        ]
        assert [listener["Port"] for listener in elbv2.describe_listeners(LoadBalancerArn=lb_arn)["Listeners"]] == [80]
        (made,) = world.made_listeners
        assert [g["TargetGroupArn"] for g in made["DefaultActions"][0]["ForwardConfig"]["TargetGroups"]] == [
            world.env.target_groups["green"]
        ]
    finally:
        server.shutdown()


def test_a_release_keeps_the_listeners_authenticate_action_before_the_forward(world):
    """ModifyListener replaces the whole list (as on AWS): each weight change must send the OIDC action again."""
    elbv2 = world.aws.client("elbv2")
    oidc = {
        "Type": "authenticate-oidc",
        "Order": 1,
        "AuthenticateOidcConfig": {
            "Issuer": "https://idp.example.com",
            "AuthorizationEndpoint": "https://idp.example.com/auth",
            "TokenEndpoint": "https://idp.example.com/token",
            "UserInfoEndpoint": "https://idp.example.com/userinfo",
            "ClientId": "rodeo",
            "ClientSecret": "s3cret",
        },
    }
    forward = {
        "Type": "forward",
        "Order": 2,
        "ForwardConfig": {
            "TargetGroups": [
                {"TargetGroupArn": world.env.target_groups["blue"], "Weight": 100},
                {"TargetGroupArn": world.env.target_groups["green"], "Weight": 0},
            ]
        },
    }
    elbv2.modify_listener(ListenerArn=world.env.listener_arn, DefaultActions=[oidc, forward])
    assert rollout.release(world.cfg, world.aws, ami=world.ami(), reporter=world.reporter).outcome == "released"
    actions = elbv2.describe_listeners(ListenerArns=[world.env.listener_arn])["Listeners"][0]["DefaultActions"]
    assert [(a["Type"], a.get("Order")) for a in actions] == [("authenticate-oidc", 1), ("forward", 2)]
    assert actions[0]["AuthenticateOidcConfig"]["Issuer"] == "https://idp.example.com"
    assert world.state().weights == {"blue": 0, "green": 100}
