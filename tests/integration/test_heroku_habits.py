"""Heroku's habits against the local stack (moto's side, RODEO_LOCAL_LIVE=0): scale web=N, config.set A=1 B=2, and the words of a rollback.

One deploy, then each command through ``invoke`` as a user types it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.bakes import Project
from tests.integration.test_deploy import deploy, last_json, quick
from toolkit.local.environment import LocalEnvironment

pytestmark = pytest.mark.integration


def group(local_stack, name: str) -> dict:
    aws = LocalEnvironment(region="us-east-1", endpoint=local_stack[1])
    return aws.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]


def test_scale_config_set_and_rollback_as_a_heroku_user_types_them(project: Project, local_stack):
    quick(project)  # one instance per slot, at most one: widened below so there is room to scale
    project.write(
        "inventories/local/rodeo.yml",
        project.read("inventories/local/rodeo.yml").replace(
            "capacity: {min: 1, max: 1, desired: 1}", "capacity: {min: 1, max: 3, desired: 1}"
        ),
    )
    # A worker's stack is shared by the modules it runs: releases are numbered after those already in its ledger.
    before = project.invoke("releases", "--json")
    assert before.returncode == 0, before.stderr[-2000:]
    base = max((r["number"] for r in last_json(before.stdout)["releases"]), default=0)
    first = deploy(project)
    assert first.returncode == 0, first.stderr[-3000:]
    released = last_json(first.stdout)["release"]
    slot, ami = released["active_slot"], released["ami"]
    name = f"web-{slot}"
    # The release started its slot at what the live one ran (a shared stack's earlier seeding may have run 2): one, to begin.
    one = project.invoke("scale", "web=1", "--min", "1", "--max", "3")
    assert one.returncode == 0, one.stderr[-2000:]
    assert group(local_stack, name)["DesiredCapacity"] == 1

    # scale web=N: the serving slot's group, within its min and max; --plan changes nothing.
    planned = project.invoke("scale", "web=2", "--plan")
    assert planned.returncode == 0, planned.stderr
    assert f"scale web from 1 to 2 instance(s) of {ami} in {slot} (group {name}, min 1, max 3)" in planned.stdout
    assert group(local_stack, name)["DesiredCapacity"] == 1
    scaled = project.invoke("scale", "web+1", "--json")
    assert scaled.returncode == 0, scaled.stderr[-2000:]
    assert last_json(scaled.stdout)["outcome"] == "scaled" and group(local_stack, name)["DesiredCapacity"] == 2
    assert (group(local_stack, name)["MinSize"], group(local_stack, name)["MaxSize"]) == (1, 3)  # its limits stay
    refused = project.invoke("scale", "web=9")
    assert (
        refused.returncode == 1
        and refused.stderr.splitlines()[0] == f"error: web=9 is outside what {name} allows: 1 to 3 instance(s)"
    )
    assert group(local_stack, name)["DesiredCapacity"] == 2
    again = project.invoke("scale", "web=2")
    assert again.returncode == 0 and again.stdout.strip().endswith(
        f"nothing to scale: {slot} already runs web=2 (group {name}, min 1, max 3)"
    )
    below = project.invoke("scale", "0")
    assert below.returncode == 1 and below.stderr.splitlines()[0] == "error: web=0 is below release.capacity.min (1)"

    # config.set with several KEY=VALUE: one config version holding them all.
    staged = project.invoke("config.set", "GREETING=hello", "WORKERS=4", "--no-release", "--json")
    assert staged.returncode == 0, staged.stderr[-2000:]
    made = last_json(staged.stdout)
    assert (made["outcome"], made["version"], sorted(made["changed"])) == ("staged", 1, ["GREETING", "WORKERS"])

    # A release of that config, then a rollback: each says what happened, once, in plain words.
    out = project.invoke("release", "--config-only")
    assert out.returncode == 0, out.stderr[-2000:]
    other = "green" if slot == "blue" else "blue"
    said = out.stdout.strip().splitlines()
    assert said[-2].startswith(f"released {ami} (app ") and said[-2].endswith(
        f": {other} serves it now, in place of {ami} (config v0)"
    )
    assert said[-1].startswith("its picture: ") and Path(said[-1].removeprefix("its picture: ")).is_file()
    back = project.invoke("rollback")
    assert back.returncode == 0, back.stderr[-2000:]
    said = back.stdout.strip().splitlines()
    assert said[-2].startswith(f"rolled back to {ami} (app ") and said[-2].endswith(
        f": {slot} serves it again, in place of {ami} (config v1)"
    )
    assert said[-1].startswith("its picture: ") and Path(said[-1].removeprefix("its picture: ")).is_file()
    assert not any(
        line.lstrip("✓→ ").startswith(("release ", "released")) or "rollback target" in line for line in said
    ), said
    assert json.loads(project.invoke("rollback", "--json").stdout.strip().splitlines()[-1])["outcome"] == "unchanged"

    # heroku releases, heroku rollback v2: numbered runs, and a rollback to one of them that the next config change builds on.
    listed = project.invoke("releases", "--json")
    assert listed.returncode == 0, listed.stderr[-2000:]
    runs = last_json(listed.stdout)["releases"]
    assert [(r["number"] - base, r["kind"], r["outcome"], r["config_version"]) for r in runs[:3]] == [
        (3, "rollback", "restored", 2),
        (2, "release", "released", 1),
        (1, "release", "released", 0),
    ]
    assert len(runs) == base + 3
    to = project.invoke("rollback", f"v{base + 2}", "--json")
    assert to.returncode == 0, to.stderr[-2000:]
    assert {k: last_json(to.stdout)[k] for k in ("outcome", "number", "config_version")} == {
        "outcome": "restored",
        "number": base + 4,
        "config_version": 3,
    }
    config = last_json(project.invoke("config.list", "--json").stdout)
    assert (config["version"], config["live"], sorted(config["vars"])) == (3, 3, ["GREETING", "WORKERS"])
    assert project.invoke("releases").stdout.splitlines()[1].lstrip().startswith(f"v{base + 4}  ")
    # invoke scale N is kept: every release since started at 2, and status shows it
    assert group(local_stack, f"web-{last_json(to.stdout)['active_slot']}")["DesiredCapacity"] == 2
    assert "  scaled to web=2 (min 1, max 3) by " in project.invoke("status").stdout
