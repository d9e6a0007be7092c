"""``invoke bake --image a,b``: independent images bake at once, their parent once (issue 13, item 4).

One-task images layered on a one-task base, in a copy of the project: each
bake costs seconds. Whether two bakes overlapped is read from their own
records (each bake.json keeps when its Packer run started and ended), never
from the wall clock.
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from pathlib import Path

import pytest
import yaml

from tests.integration.bake.test_bake import last_json, one_error_line
from tests.integration.bakes import Project, residue
from tests.support.webhook import Hook

pytestmark = pytest.mark.integration

RODEO_YML = "inventories/local/rodeo.yml"
SLOW_STEP = "    - name: Slow step\n      ansible.builtin.command: sleep 30\n      changed_when: false\n"


def add_images(project: Project, parents: dict[str, str | None]) -> None:
    """One-task images (image -> parent; None: from base's source AMI) next to the minimal base and app."""
    project.minimal_images()
    cfg = yaml.safe_load(project.read(RODEO_YML))
    for name, parent in parents.items():
        origin = {"parent": parent} if parent else {"source_ami": cfg["images"]["base"]["source_ami"]}
        cfg["images"][name] = {**origin, "playbook": f"playbooks/{name}.yml", "tests": f"tests/image/test_{name}.py"}
        project.write(
            f"playbooks/{name}.yml",
            f"- name: {name} image\n  hosts: all\n  gather_facts: false\n  tasks:\n"
            "    - name: Mark the image\n      ansible.builtin.command: /bin/true\n      changed_when: false\n",
        )
        project.write(
            f"tests/image/test_{name}.py",
            "def test_the_host_answers(host):\n    assert host.file('/etc/os-release').exists\n",
        )
    project.write(RODEO_YML, yaml.safe_dump(cfg, sort_keys=False))


def amis_of(ec2, image: str) -> list[str]:
    return sorted(
        i["ImageId"]
        for i in ec2.describe_images(Owners=["self"], Filters=[{"Name": "tag:rodeo:image", "Values": [image]}])[
            "Images"
        ]
    )


def no_bake_key_pairs(ec2) -> bool:
    return ec2.describe_key_pairs(Filters=[{"Name": "key-name", "Values": ["rodeo-*"]}])["KeyPairs"] == []


def test_independent_images_bake_at_once_their_parent_once_and_a_failure_skips_only_its_children(project: Project, ec2):
    add_images(project, {"one": "base", "two": "base", "bad": "base", "below": "bad"})
    project.write(
        "tests/image/test_bad.py",
        "def test_the_marker_is_there(host):\n    assert host.file('/etc/rodeo-marker').exists\n",
    )
    project.append(
        "playbooks/base.yml", f"# {uuid.uuid4()}\n"
    )  # new inputs for base: it must bake, once, for all three
    hook = Hook()
    project.append(RODEO_YML, f"notify: {{webhooks: ['{hook.url}']}}\n")
    before = {
        name: amis_of(ec2, name) for name in ("one", "two", "bad", "below")
    }  # the session's moto holds other tests' images
    try:
        result = project.invoke("bake", "--image", "one,two,below", "--json")
    finally:
        hook.close()
    assert one_error_line(result) == "error: 2 of 5 images did not bake: bad (failed), below (skipped)", result.stderr[
        -4000:
    ]
    assert "hint: fix what each failed image's line says, then run the same command again" in result.stderr
    run = last_json(result.stdout)
    assert [(o["image"], o["status"]) for o in run["images"]] == [
        ("base", "baked"),
        ("one", "baked"),
        ("two", "baked"),
        ("bad", "failed"),
        ("below", "skipped"),
    ]
    by = {o["image"]: o for o in run["images"]}
    base = by["base"]["result"]
    # Each bake that ran told the webhook how it ended; the skipped one ran no bake.
    told = sorted((b["rodeo"]["event"], b["rodeo"]["image"]) for b in hook.bodies)
    assert told == [("bake.done", "base"), ("bake.done", "one"), ("bake.done", "two"), ("bake.failed", "bad")], told
    assert {
        b["rodeo"]["ami"] for b in hook.bodies if b["rodeo"]["event"] == "bake.done" and b["rodeo"]["image"] == "base"
    } == {base["ami"]["us-east-1"]}
    assert by["one"]["result"]["source_ami"] == by["two"]["result"]["source_ami"] == base["ami"]["us-east-1"]

    # The parent once: one bake of its inputs, one Packer run in the progress.
    records = [json.loads(p.read_text()) for p in (project.state / "bakes").glob("base-*/bake.json")]
    assert [r["bake_id"] for r in records if r["inputs_hash"] == base["inputs_hash"]] == [base["bake_id"]]
    assert result.stderr.count("[base]  → provision") == 1

    # The children's Packer runs overlapped, by their own records, and began after their parent's ended.
    windows = [
        json.loads((Path(by[name]["result"]["artifacts"]) / "bake.json").read_text())["packer_window"]
        for name in ("one", "two")
    ]
    (start_one, end_one), (start_two, end_two) = windows
    assert start_one < end_two and start_two < end_one, windows
    assert json.loads((Path(base["artifacts"]) / "bake.json").read_text())["packer_window"][1] <= min(
        start_one, start_two
    )

    # Each image's progress is its own prefixed lines; the failed one ends in one line saying why.
    lines = result.stderr.splitlines()
    for name in ("one", "two", "bad"):
        assert any(ln.startswith(f"[{name}]") and "task 1 of 1: Mark the image" in ln for ln in lines), result.stderr
    failed = [ln for ln in lines if ln.startswith("[bad]") and "✗ failed:" in ln]
    assert (
        len(failed) == 1
        and "image test failed: test_the_marker_is_there" in failed[0]
        and "no AMI was made" in failed[0]
    )
    assert by["bad"]["error"] == failed[0].split("✗ failed: ", 1)[1] and by["bad"]["hint"].startswith(
        "fix the playbook or the test"
    )
    assert "[below] - skipped: its parent bad failed" in lines

    after = {name: amis_of(ec2, name) for name in before}
    for name in ("one", "two"):
        assert sorted(set(after[name]) - set(before[name])) == [by[name]["result"]["ami"]["us-east-1"]]
    assert (
        after["bad"] == before["bad"] and after["below"] == before["below"]
    )  # the failed image left no AMI, its child never started
    assert no_bake_key_pairs(ec2)
    assert residue(project.state) == {"mounts": [], "processes": []}

    # Run again: the plan says what is reused now and what would bake (the failed image and its child), in order.
    plan = project.invoke("bake", "--image", "one,two,below", "--plan")
    assert plan.returncode == 0, plan.stderr
    assert plan.stdout.splitlines() == [
        f"base: reuse {base['ami']['us-east-1']} (inputs unchanged)",
        f"one: reuse {by['one']['result']['ami']['us-east-1']} (inputs unchanged)",
        f"two: reuse {by['two']['result']['ami']['us-east-1']} (inputs unchanged)",
        "bad: bake because no verified AMI has these inputs",
        "below: bake because its parent bad bakes first",
        "order: base; then one, two, bad; then below (every ready image at once; an image starts when its parent's AMI is known)",
    ]


def test_ctrl_c_during_two_bakes_stops_both_and_leaves_nothing(project: Project, ec2):
    add_images(project, {"one": None, "two": None})  # no parent to bake first
    for name in ("one", "two"):
        project.append(f"playbooks/{name}.yml", SLOW_STEP)
    before = {name: amis_of(ec2, name) for name in ("one", "two")}  # the session's moto may hold earlier tests' images
    proc = project.start("bake", "--image", "one,two", "--force")
    seen, slow = [], set()
    deadline = time.monotonic() + 180
    for line in proc.stdout:
        seen.append(line)
        if "Slow step" in line:
            slow |= {name for name in ("one", "two") if line.startswith(f"[{name}]")}
        if slow == {"one", "two"} or time.monotonic() > deadline:
            break
    assert slow == {"one", "two"}, "".join(seen[-30:])
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 130, err[-3000:]
    assert "error: interrupted" in err and "Traceback" not in out + err
    assert {name: amis_of(ec2, name) for name in ("one", "two")} == before
    assert no_bake_key_pairs(ec2)
    assert residue(project.state) == {"mounts": [], "processes": []}
    assert out.count("interrupted") >= 2, out  # each bake says so on its own lines
