"""The scaling plan as tables: a group's scaling as AWS holds it, and rodeo.yml's, in; the AWS calls to make out (no I/O)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from toolkit.config import Capacity, Release, Scaling, Schedule, TargetTracking
from toolkit.release import scaling
from toolkit.release.planner import SlotState, State, plan
from toolkit.release.scaling import Action, Group, Policy

UTC = timezone.utc
LABEL = "app/web/50dc6c495c0c9188/targetgroup/web-green/73e2d6bc24d8a067"
CONFIG = Scaling(
    time_zone="Europe/Berlin",
    schedules=(
        Schedule("night", "0 22 * * *", min=2, max=4, desired=2),
        Schedule("peak", "0 9 * * MON-FRI", min=6, max=10, desired=6),
    ),
    target_tracking=(TargetTracking("cpu", "cpu", 50), TargetTracking("requests", "requests_per_target", 1000)),
)
ACTIONS, POLICIES = scaling.wanted(CONFIG, LABEL)
NIGHT, PEAK = ACTIONS
CPU, REQUESTS = POLICIES


def test_wanted_names_are_stable_and_crons_are_numbers():
    assert NIGHT == Action("rodeo-night", "0 22 * * *", "Europe/Berlin", 2, 4, 2)
    assert PEAK == Action("rodeo-peak", "0 9 * * 1-5", "Europe/Berlin", 6, 10, 6)
    assert CPU == Policy("rodeo-cpu", "ASGAverageCPUUtilization", 50.0, None)
    assert REQUESTS == Policy("rodeo-requests", "ALBRequestCountPerTarget", 1000.0, LABEL)
    assert scaling.wanted(None, LABEL) == ((), ())


def test_resource_label_from_the_arns():
    listener = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2"
    group = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-green/73e2d6bc24d8a067"
    assert scaling.resource_label(listener, group) == LABEL


def g(actions=(), policies=(), suspended=(), ours=(), since=None, tagged=None):
    return Group(
        "green",
        "web-green",
        tuple(actions),
        tuple(policies),
        tuple(suspended),
        tuple(ours),
        since,
        bool(ours) if tagged is None else tagged,
    )


HUMANS = Action("scale-out-friday", "0 8 * * 5", "Etc/UTC", desired=8)
# (name, group now, wanted, expected [(op, names)])
CONVERGE = [
    (
        "a bare group gets everything",
        g(),
        (ACTIONS, POLICIES),
        [
            ("batch_put_scheduled_update_group_action", ["rodeo-night", "rodeo-peak"]),
            ("put_scaling_policy", ["rodeo-cpu"]),
            ("put_scaling_policy", ["rodeo-requests"]),
        ],
    ),
    ("as wanted: no call", g(ACTIONS, POLICIES), (ACTIONS, POLICIES), []),
    (
        "names in a recurrence read the same",
        g([Action("rodeo-peak", "0 9 * * mon-fri", "Europe/Berlin", 6, 10, 6), NIGHT], POLICIES),
        (ACTIONS, POLICIES),
        [],
    ),
    (
        "a changed size",
        g([NIGHT, Action("rodeo-peak", "0 9 * * 1-5", "Europe/Berlin", 6, 10, 7)], POLICIES),
        (ACTIONS, POLICIES),
        [("batch_put_scheduled_update_group_action", ["rodeo-peak"])],
    ),
    (
        "a changed zone",
        g([Action("rodeo-night", "0 22 * * *", None, 2, 4, 2), PEAK], POLICIES),
        (ACTIONS, POLICIES),
        [("batch_put_scheduled_update_group_action", ["rodeo-night"])],
    ),
    (
        "a changed target",
        g(ACTIONS, [Policy("rodeo-cpu", "ASGAverageCPUUtilization", 60.0), REQUESTS]),
        (ACTIONS, POLICIES),
        [("put_scaling_policy", ["rodeo-cpu"])],
    ),
    (
        "the other slot's label",
        g(
            ACTIONS,
            [CPU, Policy("rodeo-requests", "ALBRequestCountPerTarget", 1000.0, "app/web/1/targetgroup/web-blue/2")],
        ),
        (ACTIONS, POLICIES),
        [("put_scaling_policy", ["rodeo-requests"])],
    ),
    (
        "stale ones go first",
        g(
            [NIGHT, Action("rodeo-lunch", "0 12 * * *", "Europe/Berlin", desired=3)],
            [CPU, Policy("rodeo-old", "ASGAverageCPUUtilization", 40.0)],
        ),
        (ACTIONS, POLICIES),
        [
            ("batch_delete_scheduled_action", ["rodeo-lunch"]),
            ("delete_policy", ["rodeo-old"]),
            ("batch_put_scheduled_update_group_action", ["rodeo-peak"]),
            ("put_scaling_policy", ["rodeo-requests"]),
        ],
    ),
    (
        "a person's own are never touched",
        g([HUMANS], [Policy("their-policy", "ASGAverageCPUUtilization", 30.0)]),
        ((), ()),
        [],
    ),
    (
        "removing everything",
        g([NIGHT, PEAK, HUMANS], POLICIES),
        ((), ()),
        [
            ("batch_delete_scheduled_action", ["rodeo-night", "rodeo-peak"]),
            ("delete_policy", ["rodeo-cpu"]),
            ("delete_policy", ["rodeo-requests"]),
        ],
    ),
]


def _names(call):
    args = call.args
    return (
        args.get("ScheduledActionNames")
        or [a["ScheduledActionName"] for a in args.get("ScheduledUpdateGroupActions", [])]
        or [args["PolicyName"]]
    )


@pytest.mark.parametrize("name,group,want,expected", CONVERGE, ids=[c[0] for c in CONVERGE])
def test_converge(name, group, want, expected):
    calls = scaling.converge(group, *want)
    assert [(c.op, _names(c)) for c in calls] == expected
    assert all(c.args["AutoScalingGroupName"] == "web-green" for c in calls)


def test_converge_sends_what_aws_takes():
    put, cpu, requests = scaling.converge(g(), ACTIONS, POLICIES)
    assert put.args["ScheduledUpdateGroupActions"][1] == {
        "ScheduledActionName": "rodeo-peak",
        "Recurrence": "0 9 * * 1-5",
        "TimeZone": "Europe/Berlin",
        "MinSize": 6,
        "MaxSize": 10,
        "DesiredCapacity": 6,
    }
    assert cpu.args["TargetTrackingConfiguration"] == {
        "PredefinedMetricSpecification": {"PredefinedMetricType": "ASGAverageCPUUtilization"},
        "TargetValue": 50.0,
    }
    assert requests.args["TargetTrackingConfiguration"]["PredefinedMetricSpecification"]["ResourceLabel"] == LABEL
    assert requests.args["PolicyType"] == "TargetTrackingScaling"


BOTH = ("AlarmNotification", "ScheduledActions")
SINCE = "2026-11-27T10:00:00+00:00"
# (name, group, expected [(op, processes or tag value)])
SUSPEND = [
    (
        "a fresh group: mark, then suspend",
        g(),
        [
            ("create_or_update_tags", f"AlarmNotification,ScheduledActions since {SINCE}"),
            ("suspend_processes", list(BOTH)),
        ],
    ),
    (
        "a person suspended ScheduledActions: only ours are marked and suspended",
        g(suspended=["ScheduledActions"]),
        [("create_or_update_tags", f"AlarmNotification since {SINCE}"), ("suspend_processes", ["AlarmNotification"])],
    ),
    (
        "already suspended by a killed release: nothing",
        g(suspended=BOTH, ours=BOTH, since="2026-11-26T10:00:00+00:00"),
        [],
    ),
    (
        "marked, but resumed before the mark went: suspended again",
        g(ours=BOTH, since=SINCE),
        [
            ("create_or_update_tags", f"AlarmNotification,ScheduledActions since {SINCE}"),
            ("suspend_processes", list(BOTH)),
        ],
    ),
]


def _what(call):
    return (
        call.args["Tags"][0]["Value"]
        if call.op == "create_or_update_tags"
        else call.args.get("ScalingProcesses") or call.args.get("DesiredCapacity")
    )


@pytest.mark.parametrize("name,group,expected", SUSPEND, ids=[c[0] for c in SUSPEND])
def test_suspend(name, group, expected):
    assert [(c.op, _what(c)) for c in scaling.suspend_calls(group, SINCE)] == expected


NOW = datetime(2026, 11, 27, 22, 30, tzinfo=UTC)  # a Friday, 23:30 in Berlin: "night" fired at 21:00 UTC
# (name, group, expected [(op, processes / desired capacity)])
RESUME = [
    (
        "ours: resume, then unmark",
        g(suspended=BOTH, ours=BOTH, since="2026-11-27T22:00:00+00:00"),
        [("resume_processes", list(BOTH)), ("delete_tags", None)],
    ),
    (
        "a schedule passed while suspended: apply it first",
        g([NIGHT, PEAK], suspended=BOTH, ours=BOTH, since="2026-11-27T20:00:00+00:00"),
        [("update_auto_scaling_group", 2), ("resume_processes", list(BOTH)), ("delete_tags", None)],
    ),
    (
        "the latest of those that passed",
        g([NIGHT, PEAK], suspended=BOTH, ours=BOTH, since="2026-11-27T07:00:00+00:00"),
        [("update_auto_scaling_group", 2), ("resume_processes", list(BOTH)), ("delete_tags", None)],
    ),
    (
        "a person's ScheduledActions: no catching up, not resumed",
        g(
            [NIGHT],
            suspended=["ScheduledActions", "AlarmNotification"],
            ours=["AlarmNotification"],
            since="2026-11-27T20:00:00+00:00",
        ),
        [("resume_processes", ["AlarmNotification"]), ("delete_tags", None)],
    ),
    (
        "resumed already, the mark left: unmark only",
        g([NIGHT], ours=BOTH, since="2026-11-27T20:00:00+00:00"),
        [("delete_tags", None)],
    ),
    ("a person's suspension and no mark: nothing", g([NIGHT], suspended=["Launch"]), []),
    (
        "a hand-edited mark: resume without catching up",
        g([NIGHT], suspended=BOTH, ours=BOTH, since="yesterday"),
        [("resume_processes", list(BOTH)), ("delete_tags", None)],
    ),
]


@pytest.mark.parametrize("name,group,expected", RESUME, ids=[c[0] for c in RESUME])
def test_resume(name, group, expected):
    got = scaling.resume_calls(group, NOW)
    assert [(c.op, None if c.op == "delete_tags" else _what(c)) for c in got] == expected


def test_catch_up_applies_the_sizes_of_the_action_that_passed():
    update = scaling.resume_calls(g([NIGHT, PEAK], suspended=BOTH, ours=BOTH, since="2026-11-27T07:00:00+00:00"), NOW)[
        0
    ]
    assert update.args == {"AutoScalingGroupName": "web-green", "MinSize": 2, "MaxSize": 4, "DesiredCapacity": 2}
    assert "rodeo-night" in update.what and "2026-11-27 21:00Z" in update.what
    morning = datetime(2026, 11, 27, 8, 5, tzinfo=UTC)
    assert scaling.catch_up((NIGHT, PEAK), datetime(2026, 11, 26, 20, tzinfo=UTC), morning)[0] == PEAK
    odd = Action("theirs", "not a cron", "Etc/UTC", desired=9)
    assert scaling.catch_up((odd, Action("once", None, desired=3)), datetime(2026, 1, 1, tzinfo=UTC), morning) is None


def test_earliest_suspension_of_either_group():
    now = datetime(2026, 11, 27, 12, tzinfo=UTC)
    groups = [
        g(ours=BOTH, since="2026-11-27T10:00:00+00:00"),
        g(ours=BOTH, since="2026-11-26T10:00:00+00:00"),
        g(),
        g(ours=BOTH, since="2026-11-27T10:00:00"),
    ]
    assert scaling.earliest(groups, now) == datetime(2026, 11, 26, 10, tzinfo=UTC)
    assert scaling.earliest([g()], now) == now


REL = Release(
    load_balancer="web", slots={"blue": "web-blue", "green": "web-green"}, capacity=Capacity(2, 4, 2), pause_seconds=0
)
A, B = "ami-aaaaaaaa", "ami-bbbbbbbb"


def slot(name, weight, desired, ami, version, min_size=2, max_size=4):
    return SlotState(
        name,
        weight=weight,
        desired=desired,
        instances=desired,
        healthy=desired,
        ami=ami,
        version=version,
        drain_seconds=30,
        min_size=min_size,
        max_size=max_size,
    )


PEAKS = [
    ("the live slot runs the capacity", slot("blue", 100, 2, A, 1), Capacity(2, 4, 2)),
    ("at peak the new slot starts at the live count", slot("blue", 100, 5, A, 1, 2, 6), Capacity(2, 6, 5)),
    ("a schedule raised min and max", slot("blue", 100, 6, A, 1, 6, 10), Capacity(6, 10, 6)),
    ("a quiet live slot never shrinks the new one", slot("blue", 100, 1, A, 1, 1, 2), Capacity(2, 4, 2)),
    ("max above desired of a person's resize", slot("blue", 100, 8, A, 1, 2, 4), Capacity(2, 8, 8)),
]


@pytest.mark.parametrize("name,live,expected", PEAKS, ids=[c[0] for c in PEAKS])
def test_a_release_at_peak_starts_the_new_slot_at_the_live_size(name, live, expected):
    p = plan(State(live, slot("green", 0, 0, A, 1, 0, 4), 1, A), REL, B)
    assert p.capacity == expected
    assert all(s.new_instances == expected.desired for s in p.steps)
    assert any("instead of release.capacity" in n for n in p.notes) == (expected != REL.capacity)


def test_describe_says_where_the_scaling_goes():
    p = plan(State(slot("blue", 100, 2, A, 1), slot("green", 0, 0, A, 1), 1, A), REL, B)
    lines = scaling.describe(CONFIG, p)
    assert "AlarmNotification, ScheduledActions suspended on both groups" in lines[0]
    assert (
        "rodeo-night, rodeo-peak, rodeo-cpu, rodeo-requests onto green before its first weight, off blue once it is drained"
        in lines[1]
    )
    assert scaling.describe(None, p) == []


def test_status_lines_are_loud_about_suspended_processes():
    info = g([NIGHT, PEAK], POLICIES, suspended=["AZRebalance", *BOTH], ours=BOTH, since=SINCE).to_dict()
    lines = scaling.status_lines(dict(info, differs=True), release_running=False)
    assert "scaling: rodeo-night, rodeo-peak (scheduled); rodeo-cpu, rodeo-requests (target tracking)" in lines[0]
    assert "differs from rodeo.yml" in lines[1] and "'invoke setup'" in lines[1]
    assert (
        f"SUSPENDED AlarmNotification, ScheduledActions since {SINCE} by a Rodeo release that did not finish"
        in lines[2]
    )
    assert "'invoke release' or 'invoke rollback' resumes them" in lines[2]
    assert "SUSPENDED AZRebalance, not by Rodeo" in lines[3] and "--scaling-processes AZRebalance" in lines[3]
    assert scaling.status_lines(g().to_dict(), release_running=False) == ["        scaling: none"]
    assert "by the release holding the lock; if that run died" in scaling.status_lines(info, release_running=True)[1]


class _Clients:
    """``aws.client("autoscaling")`` answered by botocore's Stubber (no network)."""

    def __init__(self):
        import botocore.session
        from botocore.stub import Stubber

        self.asg = botocore.session.get_session().create_client(
            "autoscaling", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
        )
        self.stub = Stubber(self.asg)

    def client(self, service):
        return self.asg


def test_run_treats_what_is_already_gone_as_done_and_names_any_other_refusal():
    aws = _Clients()
    drop = scaling.converge(g([NIGHT], [CPU]), (), ())
    aws.stub.add_response(
        "batch_delete_scheduled_action",
        {
            "FailedScheduledActions": [
                {
                    "ScheduledActionName": "rodeo-night",
                    "ErrorCode": "ValidationError",
                    "ErrorMessage": "Scheduled action name not found",
                }
            ]
        },
    )
    aws.stub.add_client_error("delete_policy", "ValidationError", "Policy rodeo-cpu not found")
    with aws.stub:
        scaling.run(aws, drop)
    aws.stub.assert_no_pending_responses()

    put = scaling.converge(g(), ACTIONS, ())
    aws.stub.add_response(
        "batch_put_scheduled_update_group_action",
        {
            "FailedScheduledUpdateGroupActions": [
                {
                    "ScheduledActionName": "rodeo-peak",
                    "ErrorCode": "AlreadyExists",
                    "ErrorMessage": "a scheduled action at this time already exists",
                }
            ]
        },
    )
    with aws.stub, pytest.raises(scaling.ScalingFailed) as caught:
        scaling.run(aws, put)
    assert (
        "rodeo-peak: a scheduled action at this time already exists" in caught.value.message
        and "rodeo.yml" in caught.value.hint
    )

    aws.stub.add_client_error("put_scaling_policy", "ValidationError", "ResourceLabel is not valid")
    with aws.stub, pytest.raises(scaling.ScalingFailed, match="AWS refused to put policy rodeo-requests on web-green"):
        scaling.run(aws, scaling.converge(g(), (), (REQUESTS,)))
