"""``invoke deploy``: bake or reuse, then release; a failure names its half and leaves the previous version serving.

The releases here run on moto's side of the local stack (RODEO_LOCAL_LIVE=0):
tests/integration/local/ proves releases against booted instances.
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
    project.minimal_images()
    yml = re.sub(r"\n  pause_seconds: \d+", "\n  pause_seconds: 0", project.read("inventories/local/rodeo.yml"))
    yml = re.sub(r"\n  alarms: .*", "\n  alarms: []", yml)  # no pause, so no alarm it could not wait for (toolkit.release.watch)
    yml = re.sub(r"\n  smoke_check: .*", "", yml)  # moto's load balancer answers no request (tests/integration/local/ has real ones)
    assert "pause_seconds: 0" in yml and "alarms: []" in yml and "smoke_check" not in yml
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
    assert deploy(project).returncode == 0
    serving = last_json(project.invoke("status", "--json").stdout)["ami"]
    project.write("playbooks/app.yml", "- name: app image\n  hosts: all\n  gather_facts: false\n  tasks:\n"
                                       "    - name: Break\n      ansible.builtin.command: /bin/false\n")
    out = project.invoke("deploy")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "error: deploy stopped at the bake of app, nothing was released: Ansible task 'Break' failed" in out.stderr
    assert f"still serving: {serving}" in out.stdout
    assert last_json(project.invoke("status", "--json").stdout)["ami"] == serving
    assert residue(project.state) == {"mounts": [], "processes": []}


def test_a_refused_release_leaves_the_previous_version_serving(project: Project, ec2, local_stack):
    from types import SimpleNamespace

    from toolkit.local import seed
    from toolkit.local.environment import LocalEnvironment

    quick(project)
    assert deploy(project).returncode == 0
    serving = last_json(project.invoke("status", "--json").stdout)["ami"]
    project.write("examples/webapp/VERSION", "2.0.0\n")
    aws = LocalEnvironment(region="us-east-1", endpoint=local_stack[1])
    cloudwatch = aws.client("cloudwatch")
    # The gate alarm (as the stack seeds it), with the pause it needs: the release stops at its first check, before any weight moves.
    lb_arn = aws.client("elbv2").describe_load_balancers(Names=["web"])["LoadBalancers"][0]["LoadBalancerArn"]
    seed._alarms(aws, SimpleNamespace(alarms=("web-5xx",)), lb_arn)
    project.write("inventories/local/rodeo.yml", project.read("inventories/local/rodeo.yml").replace("alarms: []", "alarms: [web-5xx]")
                  .replace("pause_seconds: 0", "pause_seconds: 20"))
    cloudwatch.set_alarm_state(AlarmName="web-5xx", StateValue="ALARM", StateReason="a test holds it")
    try:
        out = project.invoke("deploy", "--json")
    finally:
        cloudwatch.set_alarm_state(AlarmName="web-5xx", StateValue="OK", StateReason="test over")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert f"but its release failed ({serving} still serves)" in out.stderr
    result = last_json(out.stdout)
    assert result["outcome"] == "release_failed" and result["bake"]["app"]["version"] == "2.0.0" and result["serving"] == serving
    assert last_json(project.invoke("status", "--json").stdout)["ami"] == serving
