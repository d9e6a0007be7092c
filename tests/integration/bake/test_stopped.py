"""A bake that is stopped (Ctrl-C, SIGTERM, kill -9) or fails with --keep-on-failure: what it leaves, and what the next run does.

Each test runs the command line as a user would, in a copy of the project.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import time

import pytest

from tests.integration.bake.test_bake import last_json, one_error_line
from tests.integration.bakes import Project, residue

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_during_provisioning_cleans_up(project: Project, ec2, how):
    """Ctrl-C signals the whole foreground group; SIGTERM (a CI cancel) only Rodeo itself."""
    project.minimal_images()
    project.append("playbooks/base.yml", "    - name: Slow step\n      ansible.builtin.command: sleep 30\n")
    before, earlier = project.amis(ec2), set(project.state.glob("bakes/base-*"))
    proc = project.start("bake", "--image", "base")
    seen = []
    deadline = time.monotonic() + 120
    for line in proc.stdout:
        seen.append(line)
        if ": Slow step" in line or time.monotonic() > deadline:
            break
    assert any(": Slow step" in line for line in seen), "".join(seen[-20:])
    if how == "ctrl-c":
        os.killpg(proc.pid, signal.SIGINT)
    else:
        os.kill(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 130, err
    assert "error: interrupted" in err and "Traceback" not in err
    assert project.amis(ec2) == before
    assert ec2.describe_key_pairs(Filters=[{"Name": "key-name", "Values": ["rodeo-*"]}])["KeyPairs"] == []
    assert residue(project.state) == {"mounts": [], "processes": []}
    # The provision step stopped Ansible itself (not killed after a grace period): ansible-runner's own record says so.
    (bake,) = set(project.state.glob("bakes/base-*")) - earlier
    assert (bake / "ansible/artifacts/provision/status").read_text() == "canceled"


def test_a_bake_killed_with_sigkill_leaves_a_lock_the_rerun_takes_over(project: Project, ec2):
    """kill -9 runs no cleanup: the bake's lock stays, held by a dead pid; the same bake run again here takes it over."""
    project.minimal_images()
    project.append(
        "playbooks/base.yml",
        "    - name: Slow step\n      ansible.builtin.command: sleep 6\n      changed_when: false\n",
    )
    proc = project.start("bake", "--image", "base", "--force")
    seen, deadline = [], time.monotonic() + 120
    for line in proc.stdout:
        seen.append(line)
        if "Slow step" in line or time.monotonic() > deadline:
            break
    assert any("Slow step" in line for line in seen), "".join(seen[-20:])
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    rerun = project.invoke("bake", "--image", "base", "--json")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert last_json(rerun.stdout)["cached"] is False
    assert f"(pid {proc.pid}, since" in rerun.stderr and "its process is gone" in rerun.stderr
    # What Packer made for the killed bake is gone too: Packer, told to stop when Rodeo died, cleaned up after itself,
    # and the rerun cleans up whatever was left (it says so when there was something).
    (killed,) = {m for line in seen for m in re.findall(r"\bbase-\d{8}-\d{6}-[0-9a-f]{4}\b", line)}
    assert ("cleaned up after the killed bake" not in rerun.stderr) or (
        f"cleaned up after the killed bake {killed}:" in rerun.stderr
    )
    left = [
        i["State"]["Name"]
        for r in ec2.describe_instances(Filters=[{"Name": "tag:rodeo:bake", "Values": [killed]}])["Reservations"]
        for i in r["Instances"]
    ]
    assert left and set(left) == {"terminated"}
    assert ec2.describe_key_pairs(Filters=[{"Name": "key-name", "Values": [f"rodeo-{killed}"]}])["KeyPairs"] == []
    assert residue(project.state) == {"mounts": [], "processes": []}


def test_keep_on_failure_leaves_the_host_to_log_in_and_test_again_until_cleanup(project: Project, ec2):
    project.minimal_images()
    project.write(
        "tests/image/test_base.py",
        "def test_the_marker_is_there(host):\n    assert host.file('/etc/rodeo-marker').exists\n",
    )
    before = project.amis(ec2)
    failed = project.invoke("bake", "--image", "base", "--keep-on-failure")
    try:
        assert failed.returncode == 1 and "Traceback" not in failed.stderr
        assert one_error_line(failed).startswith("error: image test failed: test_the_marker_is_there")
        assert project.amis(ec2) == before  # no AMI from a failed bake, kept host or not
        lines = failed.stderr.splitlines()
        ssh = next(ln.split("log in:", 1)[1].strip() for ln in lines if "log in:" in ln)
        retest = next(ln.split("test again:", 1)[1].strip() for ln in lines if "test again:" in ln)
        assert any("remove it:     invoke bake --cleanup --env local" in ln for ln in lines)

        login = subprocess.run(
            [*shlex.split(ssh), "sudo", "-n", "touch", "/etc/rodeo-marker"], capture_output=True, text=True, timeout=60
        )
        assert login.returncode == 0, login.stderr
        again = subprocess.run(shlex.split(retest), cwd=project.root, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0 and "1 passed" in again.stdout, again.stdout[-2000:] + again.stderr[-2000:]

        bake_id = next(
            ln.split("kept the build host of ", 1)[1].split()[0] for ln in lines if "kept the build host of " in ln
        )
        kept = [
            i
            for r in ec2.describe_instances(Filters=[{"Name": "tag:rodeo:bake", "Values": [bake_id]}])["Reservations"]
            for i in r["Instances"]
        ]
        assert [i["State"]["Name"] for i in kept] == [
            "running"
        ]  # Packer left its instance (-on-error=abort), as it does on AWS
        cleaned = project.invoke("bake", "--image", "base", "--cleanup")
        assert cleaned.returncode == 0 and "removed the kept host of base-" in cleaned.stdout + cleaned.stderr, (
            cleaned.stderr
        )
        assert (
            ec2.describe_instances(InstanceIds=[kept[0]["InstanceId"]])["Reservations"][0]["Instances"][0]["State"][
                "Name"
            ]
            == "terminated"
        )
        assert residue(project.state) == {"mounts": [], "processes": []}
        assert "no kept build host" in project.invoke("bake", "--cleanup").stdout
    finally:  # a failing assertion must not leave the kept sandbox to the next tests
        project.invoke("bake", "--cleanup")
