"""Logs without a jump box, on the live stack: instances' journals in CloudWatch Logs, read by ``invoke logs``.

One live stack for the module: blue starts on the stack's placeholder app
(no shipper: it is not a Rodeo base image); ``invoke logs --follow``
(``tail.follow``, in a thread) starts, then a release of a sample app build
boots green's instances, whose shipper sends their journal to
``/rodeo/web/local``. The tests then read what arrived, restart and kill a
shipper, and boot one instance without Rodeo's user data.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

import botocore.exceptions
import pytest

from tests.integration.local.conftest import BIN, CACHE, host_pid_of_container, leftovers
from tests.support import livebuilds
from toolkit.aws import Aws
from toolkit.local import stack
from toolkit.local.environment import LocalEnvironment
from toolkit.logs import tail, view
from toolkit.release import rollout, slots
from toolkit.ui import Silent

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[3]
REGION = "us-east-1"
GROUP = "/rodeo/web/local"


class Follower:
    """``tail.follow`` in a thread, keeping each line with the time it came; stops when told or after ``limit`` seconds."""

    def __init__(self, cfg, url: str, since: str = "1m", limit: float = 600.0) -> None:
        self.lines: list[tuple[float, view.LogLine]] = []
        self.stopped = threading.Event()
        deadline = time.monotonic() + limit
        aws = LocalEnvironment(region=REGION, endpoint=url)  # its own clients: this thread's
        follow = tail.follow(
            cfg,
            aws,
            view.query(since, everything=True),
            stop=lambda: self.stopped.is_set() or time.monotonic() > deadline,
        )
        self.thread = threading.Thread(
            target=lambda: self.lines.extend((time.monotonic(), line) for line in follow), daemon=True
        )
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=10)


class World:
    def __init__(self, cfg, st: stack.Stack, aws: Aws, project: Path) -> None:
        self.cfg, self.st, self.aws, self.project = cfg, st, aws, project
        self.env = slots.resolve(cfg, aws)

    def instances(self, slot: str) -> list[str]:
        group = self.aws.client("autoscaling").describe_auto_scaling_groups(
            AutoScalingGroupNames=[self.env.groups[slot]]
        )["AutoScalingGroups"][0]
        return sorted(i["InstanceId"] for i in group["Instances"])

    def urls(self) -> dict[int, str]:
        return stack.listener_urls(self.st, "web")

    def lines(self, **flags) -> list[view.LogLine]:
        return tail.lines(self.cfg, self.aws, view.query("10m", **flags))


def until(what, timeout: float, interval: float = 0.5):
    """``what()`` once it is truthy; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        got = what()
        if got or time.monotonic() > deadline:
            assert got, f"not within {timeout}s"
            return got
        time.sleep(interval)


def in_instance(instance_id: str, *command: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        ["nsenter", "-t", str(host_pid_of_container(instance_id)), "-a", *command],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, (command, done.stdout, done.stderr)
    return done


@pytest.fixture(scope="module")
def world(layers, tmp_path_factory):
    folder = tmp_path_factory.mktemp("logs-live")
    with livebuilds.live_release(folder, ROOT, CACHE, pause=1) as (cfg, st, aws):
        w = World(cfg, st, aws, folder / "project")
        w.before = set(w.instances("blue"))
        w.follower = Follower(cfg, aws.endpoint)
        try:
            w.ami = ami = livebuilds.build(st, aws.client("ec2"), layers, folder, "1.0.0")
            result = rollout.release(cfg, aws, ami=ami, reporter=Silent())
            assert result.outcome == "released" and result.active_slot == "green", result
            w.green = w.instances("green")
            yield w
        finally:
            w.follower.stop()  # before the stack stops: it polls the stack's endpoint
    assert leftovers(st) == {"processes": [], "mounts": [], "netns": [], "cgroups": []}


def request(world: World, probe: str) -> None:
    with urllib.request.urlopen(f"{world.urls()[80]}/?{probe}", timeout=5) as reply:
        assert reply.status == 200


def test_a_request_to_the_load_balancer_appears_in_invoke_logs_with_instance_slot_and_version(world):
    probe = f"probe-{uuid.uuid4().hex[:12]}"
    request(world, probe)
    (line,) = until(lambda: world.lines(grep=probe), 30)
    assert (line.slot, line.version, line.unit) == ("green", "1.0.0", "web.service")
    assert line.instance in world.green
    assert f'"GET /?{probe} HTTP/1.1" 200' in line.message
    assert line.text().endswith(f"{line.instance} green 1.0.0 web.service: {line.message}")
    # The other flags narrow what the same query shows.
    assert world.lines(grep=probe, slot="blue") == []
    assert world.lines(grep=probe, instance=line.instance) == [line]
    other = next(i for i in world.green if i != line.instance)
    assert world.lines(grep=probe, instance=other) == []


def test_follow_shows_the_instances_that_started_during_the_release(world):
    probe = f"probe-{uuid.uuid4().hex[:12]}"
    sent = time.monotonic()
    request(world, probe)
    came, line = until(lambda: next(((t, ln) for t, ln in list(world.follower.lines) if probe in ln.message), None), 30)
    assert (line.slot, line.version) == ("green", "1.0.0")
    started = {ln.instance for _, ln in world.follower.lines if ln.slot == "green"}
    assert started == set(world.green) and not started & world.before  # none of them existed when --follow began
    assert {ln.unit for _, ln in world.follower.lines if ln.instance == line.instance} >= {
        "web.service",
        "rodeo-logs.service",
        "systemd",
    }
    print(f"request -> its line in follow: {came - sent:.2f}s")


def test_a_stopped_restarted_or_killed_shipper_loses_and_repeats_no_line(world):
    instance, tag = world.green[0], uuid.uuid4().hex[:8]

    def mark(phase: str, count: int = 20) -> None:
        in_instance(instance, "sh", "-c", f"for i in $(seq 1 {count}); do logger -t marker {tag}-{phase}-$i; done")

    def shipped() -> Counter:
        return Counter(
            line.message for line in world.lines(instance=instance, grep=tag, everything=True)
        )  # logger's lines: the system's

    mark("before")
    until(lambda: len(shipped()) == 20, 30)
    in_instance(instance, "systemctl", "restart", "rodeo-logs")
    mark("restarted")
    in_instance(instance, "systemctl", "stop", "rodeo-logs")
    mark("stopped")  # written while no shipper runs
    in_instance(instance, "systemctl", "start", "rodeo-logs")
    until(lambda: len(shipped()) == 60, 30)

    # kill -9: Restart=on-failure starts it again 5 s later, from the cursor of the last batch CloudWatch accepted.
    def main_pid() -> str:
        return in_instance(instance, "systemctl", "show", "-p", "MainPID", "--value", "rodeo-logs").stdout.strip()

    killed = main_pid()
    in_instance(instance, "kill", "-KILL", killed)
    mark("killed")
    until(lambda: len(shipped()) == 80, 60)
    assert main_pid() not in (killed, "0")  # a new shipper sent them
    counts = shipped()
    expected = {f"{tag}-{phase}-{i}" for phase in ("before", "restarted", "stopped", "killed") for i in range(1, 21)}
    assert set(counts) == expected and set(counts.values()) == {1}, {m: n for m, n in counts.items() if n != 1}


def test_an_instance_without_rodeos_user_data_has_a_shipper_that_says_so_and_stays_down(world):
    ec2 = world.aws.client("ec2")
    (instance,) = [
        i["InstanceId"]
        for i in ec2.run_instances(ImageId=world.ami, MinCount=1, MaxCount=1, UserData="#!/bin/sh\necho not rodeo's\n")[
            "Instances"
        ]
    ]
    try:
        until(
            lambda: (
                ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]["State"]["Name"]
                == "running"
            ),
            90,
        )
        until(
            lambda: (
                "nothing to ship"
                in in_instance(instance, "journalctl", "-u", "rodeo-logs", "-o", "cat", "--no-pager").stdout
            ),
            30,
        )
        state = in_instance(
            instance, "systemctl", "show", "-p", "ActiveState", "-p", "Result", "-p", "NRestarts", "rodeo-logs"
        ).stdout.split()
        assert sorted(state) == ["ActiveState=inactive", "NRestarts=0", "Result=success"]  # exited 0, not restarted
        streams = world.aws.client("logs").describe_log_streams(logGroupName=GROUP, logStreamNamePrefix=instance)[
            "logStreams"
        ]
        assert streams == []
    finally:
        ec2.terminate_instances(InstanceIds=[instance])


def test_setup_made_the_group_with_its_retention_and_moto_refuses_batches_aws_refuses(world):
    logs = world.aws.client("logs")
    (group,) = logs.describe_log_groups(logGroupNamePrefix=GROUP)["logGroups"]
    assert group["retentionInDays"] == 30
    stream, now = world.green[0], int(time.time() * 1000)
    for events in (
        [{"timestamp": now, "message": "x"}] * 10_001,
        [{"timestamp": now, "message": "x" * 600_000}] * 2,
        [{"timestamp": now - 25 * 3600 * 1000, "message": "old"}, {"timestamp": now, "message": "new"}],
    ):
        with pytest.raises(botocore.exceptions.ClientError) as refused:
            logs.put_log_events(logGroupName=GROUP, logStreamName=stream, logEvents=events)
        assert refused.value.response["Error"]["Code"] == "InvalidParameterException"


def test_invoke_logs_follow_prints_json_lines_and_ends_on_ctrl_c_with_exit_0(world):
    env = dict(os.environ, RODEO_STATE_DIR=str(world.st.state_dir), RODEO_CACHE_DIR=str(CACHE))
    proc = subprocess.Popen(
        [str(BIN / "invoke"), "logs", "--follow", "--json", "--since", "5m", "--grep", "GET /health"],
        cwd=world.project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = json.loads(proc.stdout.readline())  # health checks come every few seconds: a line is there at once
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "error" not in err, err
    assert (
        first["slot"] == "green"
        and first["version"] == "1.0.0"
        and first["unit"] == "web.service"
        and "GET /health" in first["message"]
    )
    assert set(first) == {"time", "timestamp", "instance", "slot", "version", "unit", "message", "priority"}


def test_invoke_logs_shows_the_apps_units_and_with_all_the_systems_too(world):
    app, everything = world.lines(), world.lines(everything=True)
    assert app and not any(view.is_system(line.unit) for line in app)
    assert {"web.service"} <= {line.unit for line in app}
    assert {"systemd", "rodeo-logs.service"} <= {line.unit for line in everything} and len(everything) > len(app)
