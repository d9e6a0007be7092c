"""Content-addressed bakes: unchanged inputs reuse their AMI; layered images rebake only what changed."""

from __future__ import annotations

import json

import pytest

from tests.integration.bakes import Project, residue

pytestmark = pytest.mark.integration


def bake(project: Project, *args: str) -> dict:
    result = project.invoke("bake", "--json", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def source_of(ec2, ami: str) -> str:
    image = ec2.describe_images(ImageIds=[ami])["Images"][0]
    return {t["Key"]: t["Value"] for t in image["Tags"]}["rodeo:source-ami"]


def test_unchanged_inputs_reuse_the_ami_and_force_bakes_anyway(project: Project, ec2):
    project.minimal_images()
    first = bake(project, "--image", "app")
    again = project.invoke("bake", "--image", "app", "--json")
    assert again.returncode == 0, again.stderr[-2000:]
    record = json.loads(again.stdout.strip().splitlines()[-1])
    assert record["cached"] is True and record["ami"] == first["ami"]
    assert f"reused {first['ami']['us-east-1']} built " in again.stderr and "inputs unchanged" in again.stderr
    assert "packer" not in again.stderr.lower()
    # The README's claim: a cache hit loads neither moto, boto3 nor python-hcl2 (python -X importtime's list).
    profiled = project.invoke("bake", "--image", "app", env={"PYTHONPROFILEIMPORTTIME": "1"})
    imported = {
        line.rsplit("|", 1)[-1].strip().split(".")[0]
        for line in profiled.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert profiled.returncode == 0 and {"toolkit", "botocore"} <= imported
    assert imported & {"moto", "boto3", "hcl2"} == set()

    project.append("README.md", "a change that is no input\n")
    assert bake(project, "--image", "app")["cached"] is True

    before = project.amis(ec2)
    forced = bake(project, "--image", "app", "--force")
    assert forced["cached"] is False and forced["ami"] != first["ami"]
    assert source_of(ec2, forced["ami"]["us-east-1"]) == source_of(ec2, first["ami"]["us-east-1"])  # base reused
    assert len(project.amis(ec2)) == len(before) + 1


def test_an_app_change_rebakes_only_the_app(project: Project, ec2):
    project.minimal_images()  # the mechanics of layering (test_bake.py bakes the sample's own images)
    first = bake(project, "--image", "app")
    base = source_of(ec2, first["ami"]["us-east-1"])
    project.append("playbooks/app.yml", "# a change to the app's playbook\n")
    second = bake(project, "--image", "app")
    assert second["cached"] is False and second["ami"] != first["ami"]
    assert source_of(ec2, second["ami"]["us-east-1"]) == base
    assert second["parent"] == {
        "image": "base",
        "ami": {"us-east-1": base},
        "cached": True,
        "duration_s": second["parent"]["duration_s"],
    }
    assert second["tags"]["rodeo:inputs-hash"] != first["tags"]["rodeo:inputs-hash"]


def test_a_base_change_rebakes_base_then_app(project: Project, ec2):
    project.minimal_images()
    first = bake(project, "--image", "app")
    project.append("inventories/local/group_vars/all.yml", "\nbase_marker: changed\n")
    second = bake(project, "--image", "app")
    assert second["cached"] is False
    assert source_of(ec2, second["ami"]["us-east-1"]) != source_of(ec2, first["ami"]["us-east-1"])


def test_copies_in_every_region_with_tags_and_a_per_region_cache(project: Project, ec2, local_stack):
    from toolkit.local.environment import LocalEnvironment

    project.minimal_images()
    yml = project.read("inventories/local/rodeo.yml").replace("copy_to_regions: []", "copy_to_regions: [us-west-2]")
    project.write("inventories/local/rodeo.yml", yml)
    record = bake(project, "--image", "base")
    assert set(record["ami"]) == {"us-east-1", "us-west-2"}
    west = LocalEnvironment(region="us-west-2", endpoint=local_stack[1]).client("ec2")
    copy = west.describe_images(ImageIds=[record["ami"]["us-west-2"]])["Images"][0]
    tags = {t["Key"]: t["Value"] for t in copy["Tags"]}
    assert tags["rodeo:inputs-hash"] == record["tags"]["rodeo:inputs-hash"]
    assert bake(project, "--image", "base")["cached"] is True

    west.deregister_image(ImageId=record["ami"]["us-west-2"])  # the copy is gone: the cache misses
    rebaked = bake(project, "--image", "base")
    assert rebaked["cached"] is False and set(rebaked["ami"]) == {"us-east-1", "us-west-2"}


def test_a_parent_that_cannot_be_baked_stops_the_child(project: Project, ec2):
    # First in the role: the base bake fails at once instead of after the whole role.
    project.write(
        "playbooks/roles/base/tasks/main.yml",
        "- name: Broken base step\n  ansible.builtin.command: /bin/false\n\n"
        + project.read("playbooks/roles/base/tasks/main.yml").removeprefix("---\n"),
    )
    before = project.amis(ec2)
    result = project.invoke("bake", "--image", "app")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith(
        "error: parent image base has no current verified AMI and its bake failed:"
    )
    assert "Broken base step" in errors[0]
    assert project.amis(ec2) == before
    assert residue(project.state) == {"mounts": [], "processes": []}


def test_a_second_bake_of_the_same_inputs_waits_and_reuses_its_ami(project: Project, ec2):
    """Two bakes of one image's inputs (CI and a laptop): one bakes, the other waits and reuses; --no-wait refuses."""
    import threading
    import uuid

    project.minimal_images()
    marker = ("--var", f"marker={uuid.uuid4().hex}")  # inputs no other test has baked
    bake(project, "--image", "base")  # the parent is ready: the race is the app's
    before = set(project.amis(ec2))
    first = project.start("bake", "--image", "app", "--json", *marker)
    seen: list[str] = []
    baking = threading.Event()

    def follow() -> None:
        for line in first.stderr:
            seen.append(line)
            if "baking app from" in line:
                baking.set()

    threading.Thread(target=follow, daemon=True).start()
    assert baking.wait(120), "".join(seen)[-2000:]
    refused = project.invoke("bake", "--image", "app", "--no-wait", *marker)
    second = project.invoke("bake", "--image", "app", "--json", *marker)
    out, _ = first.communicate(timeout=300)
    assert first.returncode == 0, "".join(seen)[-3000:]
    assert second.returncode == 0, second.stderr[-3000:]
    one, two = json.loads(out.strip().splitlines()[-1]), json.loads(second.stdout.strip().splitlines()[-1])
    assert one["cached"] is False and two["cached"] is True and two["ami"] == one["ami"]
    assert (
        "waiting: the bake of app with inputs" in second.stderr
        and "baked by the run this one waited for" in second.stderr
    )
    assert set(project.amis(ec2)) - before == {one["ami"]["us-east-1"]}

    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    errors = [ln for ln in refused.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1, refused.stderr
    assert errors[0].startswith(
        f"error: the bake of app with inputs {one['inputs_hash'][:12]} is locked by pid {first.pid}, which is still running"
    )
    assert (
        errors[0].endswith("another bake of the same inputs is running")
        and "hint: run without --no-wait" in refused.stderr
    )
