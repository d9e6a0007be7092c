"""``invoke deploy``: bake or reuse, then release; a failure names its half and leaves the previous version serving.

The shared stack is live (the build instances boot), so the releases here
boot their instances too: the minimal app image serves the health path.
"""

from __future__ import annotations

import json
import re
import uuid

import pytest

from tests.integration.bakes import Project, residue

pytestmark = pytest.mark.integration


def quick(project: Project) -> str:
    """Minimal images, a release without pauses, and an app version of this test's own (so its first deploy bakes); returns it."""
    version = f"1.0.{uuid.uuid4().hex[:8]}"
    project.write("examples/webapp/VERSION", version + "\n")
    project.minimal_images(serving=True)
    yml = re.sub(r"\n  pause_seconds: \d+", "\n  pause_seconds: 0", project.read("inventories/local/rodeo.yml"))
    yml = re.sub(r"\n  capacity: .*", "\n  capacity: {min: 1, max: 1, desired: 1}", yml)  # one instance boots per slot
    yml = re.sub(
        r"\n  alarms: .*", "\n  alarms: []", yml
    )  # no pause, so no alarm it could not wait for (toolkit.release.watch)
    yml = re.sub(
        r"\n  smoke_check: .*", "", yml
    )  # moto's load balancer answers no request (tests/integration/local/ has real ones)
    assert "pause_seconds: 0" in yml and "alarms: []" in yml and "smoke_check" not in yml and "desired: 1}" in yml
    project.write("inventories/local/rodeo.yml", yml)
    return version


def deploy(project: Project, *args: str):
    return project.invoke("deploy", "--json", *args)


def last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def test_deploy_bakes_then_releases_and_a_new_app_version_rebakes_only_the_app(project: Project, ec2):
    version = quick(project)
    first = deploy(project)
    assert first.returncode == 0, first.stderr[-3000:]
    one = last_json(first.stdout)
    assert one["outcome"] == "deployed" and one["release"]["outcome"] == "released"
    ami = one["bake"]["ami"]["us-east-1"]
    assert one["release"]["ami"] == ami and one["release"]["app_version"] == version
    assert one["url"].startswith("http://")

    again = deploy(project)
    assert again.returncode == 0, again.stderr[-2000:]
    same = last_json(again.stdout)
    assert same["outcome"] == "unchanged" and same["bake"]["cached"] is True and same["release"]["ami"] == ami

    project.write("examples/webapp/VERSION", "1.1.0\n")
    plan = project.invoke("deploy", "--plan")
    assert plan.returncode == 0, plan.stderr[-2000:]
    assert "base: reuse ami-" in plan.stdout and "app: bake because app source dir" in plan.stdout

    newer = deploy(project)
    assert newer.returncode == 0, newer.stderr[-2000:]
    two = last_json(newer.stdout)
    assert two["bake"]["cached"] is False and two["bake"]["parent"]["cached"] is True
    assert two["release"]["app_version"] == "1.1.0" and two["release"]["from_ami"] == ami

    status = project.invoke("status", "--json")
    info = last_json(status.stdout)
    assert info["ami"] == two["release"]["ami"] and info["app_version"] == "1.1.0"
    assert info["releases"][0]["app_version"] == "1.1.0"


def test_a_failed_bake_releases_nothing_and_says_so(project: Project, ec2):
    quick(project)
    status = project.invoke("status", "--json")  # whatever serves: the seeded placeholder, or an earlier test's release
    assert status.returncode == 0, status.stderr[-2000:]
    serving = last_json(status.stdout)["ami"]
    project.write(
        "playbooks/app.yml",
        "- name: app image\n  hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - name: Break\n      ansible.builtin.command: /bin/false\n",
    )
    out = project.invoke("deploy")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert (
        f"error: deploy of app stopped at its bake, so nothing was released ({serving} serves, as before): Ansible task 'Break' failed"
        in out.stderr
    )
    assert (out.stdout + out.stderr).count(serving) == 1  # said once, in the error
    assert last_json(project.invoke("status", "--json").stdout)["ami"] == serving
    assert residue(project.state) == {"mounts": [], "processes": []}


def test_a_refused_release_leaves_the_previous_version_serving(project: Project, ec2, local_stack):
    from toolkit.local.environment import LocalEnvironment

    quick(project)
    status = last_json(project.invoke("status", "--json").stdout)  # whatever serves, as above
    serving, slot = status["ami"], status["active_slot"]
    project.write("examples/webapp/VERSION", "2.0.0\n")
    cloudwatch = LocalEnvironment(region="us-east-1", endpoint=local_stack[1]).client("cloudwatch")
    # A gate alarm held in ALARM by its own rule (no data is breaching), which the live stack's evaluation keeps so, with
    # the pause it needs: the release stops at its first check, before any weight moves.
    name = f"held-{uuid.uuid4().hex[:6]}"
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        Namespace="Rodeo/Test",
        MetricName="Nothing",
        Statistic="Sum",
        Period=10,
        EvaluationPeriods=1,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="breaching",
    )
    cloudwatch.set_alarm_state(
        AlarmName=name, StateValue="ALARM", StateReason="no data is breaching"
    )  # as AWS's first evaluation would
    project.write(
        "inventories/local/rodeo.yml",
        project.read("inventories/local/rodeo.yml")
        .replace("alarms: []", f"alarms: [{name}]")
        .replace("pause_seconds: 0", "pause_seconds: 20"),
    )
    try:
        out = project.invoke("deploy", "--json")
    finally:
        cloudwatch.delete_alarms(AlarmNames=[name])
    assert out.returncode == 1 and "Traceback" not in out.stderr
    (error,) = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
    assert re.match(
        r"error: deploy of app: release of ami-\w+ \(app 2\.0\.0, config v0\) rolled back after \d+s before it took any traffic: "
        rf"alarm\(s\) in ALARM: {name} \(before the weight change\); {slot} serves {serving} \(config v0\), as before$",
        error,
    ), error
    result = last_json(out.stdout)
    assert (
        result["outcome"] == "release_failed"
        and result["bake"]["app"]["version"] == "2.0.0"
        and result["serving"] == serving
    )
    assert last_json(project.invoke("status", "--json").stdout)["ami"] == serving
