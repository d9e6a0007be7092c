"""SIGINT or SIGTERM at any point of a release: the lock is freed, the invariant holds, a rerun finishes it."""

from __future__ import annotations

import json
import os
import re
import signal
import time

import pytest

from tests.integration.bakes import Project

pytestmark = pytest.mark.integration


def unwatched(yml: str) -> str:
    """rodeo.yml with a 2 s pause and no gate alarm (a 2 s watch is too short for one: toolkit.release.watch)."""
    return re.sub(r"\n  alarms: .*", "\n  alarms: []", re.sub(r"\n  pause_seconds: \d+", "\n  pause_seconds: 2", yml))


def verified_ami(ec2, name: str) -> str:
    ami = ec2.register_image(Name=name, Architecture="x86_64", RootDeviceName="/dev/xvda")["ImageId"]
    tags = {
        "rodeo:app": "web",
        "rodeo:image": "app",
        "rodeo:verified": "true",
        "rodeo:git-sha": "f" * 40,
        "rodeo:built-at": "2026-11-26T00:00:00Z",
    }
    ec2.create_tags(Resources=[ami], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    return ami


def status(project: Project) -> dict:
    result = project.invoke("status", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def assert_invariant(info: dict, need: int = 2) -> None:
    for name, slot in info["slots"].items():
        if slot["weight"] > 0:
            assert slot["healthy"] >= need, f"{name} holds weight {slot['weight']} with {slot['healthy']} healthy"


@pytest.fixture(autouse=True)
def serving(project: Project, ec2):
    """Each test starts from a live slot that meets the invariant (a module before on this worker may have left it
    smaller): the environment seeded by a first command, then sized to its capacity."""
    status(project)
    project.live_slot_at_capacity(ec2.meta.endpoint_url)


@pytest.mark.parametrize(
    "point,how",
    [
        ("waiting for 2 healthy", "sigterm"),
        ("weight 10% on", "sigint"),
        ("weight 50% on", "sigterm"),
        ("draining", "sigint"),
    ],
)
def test_interrupted_release_is_consistent_and_resumable(project: Project, ec2, point, how):
    yml = unwatched(project.read("inventories/local/rodeo.yml"))
    # A moto-only stack (RODEO_LOCAL_LIVE=0) has no load balancer that answers: no smoke check (the live tests have one).
    yml = re.sub(r"\n  smoke_check: .*", "", yml)
    project.write("inventories/local/rodeo.yml", yml)
    ami = verified_ami(ec2, f"interrupt-{point[:6]}-{how}-{time.time_ns()}")
    proc = project.start("release", "--ami", ami)
    seen = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()  # progress goes to stdout without --json
        if not line and proc.poll() is not None:
            break
        seen.append(line)
        if point in line:
            break
    assert any(point in line for line in seen), "".join(seen[-20:])
    if how == "sigint":
        os.killpg(proc.pid, signal.SIGINT)
    else:
        os.kill(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out + err
    assert "error: interrupted" in err and "Traceback" not in err

    info = status(project)
    assert info["lock"] is None
    assert_invariant(info)

    rerun = project.invoke("release", "--ami", ami, "--json")
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    result = json.loads(rerun.stdout.strip().splitlines()[-1])
    assert result["ami"] == ami and result["outcome"] in ("released", "unchanged")
    info = status(project)
    active = info["slots"][info["active_slot"]]
    assert active["ami"] == ami and active["weight"] == 100
    assert_invariant(info)


SCALING_YML = """
scaling:
  time_zone: Europe/Berlin
  schedules:
    - {name: night, cron: "0 22 * * *", min: 2, max: 4, desired: 2}
  target_tracking:
    - {name: cpu, metric: cpu, target: 50}
"""


def test_ctrl_c_resumes_the_scaling_processes(project: Project, ec2):
    """Scaling by clock and load: Ctrl-C at 50% resumes what the release suspended; the rerun leaves the scaling on the live slot only."""
    yml = re.sub(r"\n  smoke_check: .*", "", unwatched(project.read("inventories/local/rodeo.yml")))
    project.write("inventories/local/rodeo.yml", yml + SCALING_YML)
    ami = verified_ami(ec2, f"interrupt-scaling-{time.time_ns()}")
    proc = project.start("release", "--ami", ami)
    deadline, seen = time.monotonic() + 120, []
    while time.monotonic() < deadline and not any("weight 50% on" in line for line in seen):
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        seen.append(line)
    assert any("scaling processes suspended" in line for line in seen), "".join(seen[-20:])
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "error: interrupted" in err, out + err
    info = status(project)
    assert [s["scaling"]["suspended"] for s in info["slots"].values()] == [[], []], info["slots"]
    new = next(s for s in info["slots"].values() if s["ami"] == ami)
    assert new["weight"] > 0 and new["scaling"]["schedules"] == [
        "rodeo-night"
    ]  # it got the scaling before its first weight

    rerun = project.invoke("release", "--ami", ami)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    info = status(project)
    live, idle = (
        info["slots"][info["active_slot"]],
        [s for n, s in info["slots"].items() if n != info["active_slot"]][0],
    )
    assert (
        live["scaling"]["schedules"],
        live["scaling"]["policies"],
        idle["scaling"]["schedules"],
        idle["scaling"]["policies"],
    ) == (["rodeo-night"], ["rodeo-cpu"], [], [])
    project.write("inventories/local/rodeo.yml", yml)  # leave the shared stack's groups without Rodeo's scaling
    assert project.invoke("setup").returncode == 0
