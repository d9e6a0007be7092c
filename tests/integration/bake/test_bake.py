"""`invoke bake` for real: moto server, Packer 1.6.6, the sandbox, Ansible and testinfra.

Each test runs the command line as a user would, in a copy of the project, and
checks what it leaves in AWS (moto) and on the machine.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.integration.bakes import Project, residue

pytestmark = pytest.mark.integration

LINEAGE = {
    "rodeo:app",
    "rodeo:image",
    "rodeo:git-sha",
    "rodeo:source-ami",
    "rodeo:inputs-hash",
    "rodeo:verified",
    "rodeo:toolkit-version",
    "rodeo:built-at",
}


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def test_bake_app_makes_a_verified_tagged_ami_on_its_base(project: Project, ec2):
    result = project.invoke("bake", "--image", "app", "--json", "--force")
    assert result.returncode == 0, result.stderr[-3000:]
    record = last_json(result.stdout)
    assert set(record) >= {"image", "ami", "tags", "duration_s", "artifacts"}
    assert record["image"] == "app" and record["cached"] is False
    ami = record["ami"]["us-east-1"]

    image = ec2.describe_images(ImageIds=[ami])["Images"][0]
    tags = {t["Key"]: t["Value"] for t in image["Tags"]}
    assert LINEAGE <= set(tags)
    assert tags["rodeo:image"] == "app" and tags["rodeo:app"] == "web"
    # The template writes rodeo:verified=true as a literal: what proves the image was tested is the report.
    report = json.loads((Path(record["artifacts"]) / "verify.json").read_text())
    assert report["tests"] >= 5 and report["failures"] == report["errors"] == 0 and report["exit_code"] == 0
    assert record["tags"] == {k: v for k, v in tags.items() if k.startswith("rodeo:")}
    base = ec2.describe_images(ImageIds=[tags["rodeo:source-ami"]])["Images"][0]
    assert {t["Key"]: t["Value"] for t in base["Tags"]}["rodeo:image"] == "base"
    snapshot_ids = [m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"] if "Ebs" in m]
    for snap in ec2.describe_snapshots(SnapshotIds=snapshot_ids)["Snapshots"]:
        assert LINEAGE <= {t["Key"] for t in snap.get("Tags", [])}

    artifacts = Path(record["artifacts"])
    assert (artifacts / "packer.log").stat().st_size > 0
    assert (artifacts / "ansible/artifacts/provision/rc").read_text().strip() == "0"
    assert set(record["phases"]) >= {"render", "boot", "provision", "verify", "snapshot"}

    layers = json.loads((project.state / "local/images" / f"{ami}.json").read_text())["layers"]
    assert len(layers) == 3  # Debian root fs, base layer, app layer
    assert (Path(layers[-1]) / "opt/web/app.py").is_file()
    assert not list(Path(layers[-1]).glob("home/*/.ssh/authorized_keys"))
    assert ec2.describe_key_pairs(Filters=[{"Name": "key-name", "Values": ["rodeo-*"]}])["KeyPairs"] == []
    running = ec2.describe_instances(
        Filters=[
            {"Name": "tag-key", "Values": ["rodeo:bake"]},
            {"Name": "instance-state-name", "Values": ["pending", "running"]},
        ]
    )
    assert running["Reservations"] == []
    assert residue(project.state) == {"mounts": [], "processes": []}


def test_readable_summary_without_json(project: Project):
    """Not a terminal: one plain line per event, each phase opened and closed once; Packer's own log in packer.log only."""
    project.minimal_images()
    result = project.invoke("bake", "--image", "base", "--force")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "base baked: us-east-1 ami-" in result.stdout
    progress = result.stdout.split("\nbase baked:")[0].splitlines()
    assert "  task 1 of 1: Mark the image" in progress  # Ansible's tasks streamed as they ran
    assert "  1 of 1 passed; test_the_host_answers" in progress  # and the image tests
    phases = ["boot", "provision", "verify", "seal", "snapshot", "copy"]
    assert [ln.split()[1] for ln in progress if ln.startswith("→ ")] == phases
    assert [ln.split()[1] for ln in progress if ln.startswith("✓ ")][2:] == phases  # after "planned" and render
    assert len(progress) == len(set(progress))  # nothing twice: no tag lines, no "AMIs were created"
    assert not any("amazon-ebs" in ln or "\x1b" in ln for ln in result.stdout.splitlines())
    log = (Path(last_line_with(result.stdout, "artifacts: ").split("artifacts: ")[1]) / "packer.log").read_text()
    assert log.count('Adding tag: "rodeo:image": "base"') == 2  # AMI and snapshot: Packer's whole log is kept
    assert ",artifact," in log and "AMIs were created" in log and '@rodeo {"event":"task"' in log


def last_line_with(text: str, needle: str) -> str:
    return [ln for ln in text.splitlines() if needle in ln][-1]


def test_failing_task_names_task_host_and_message(project: Project, ec2):
    # First in the role: the bake fails at once instead of after the whole base role.
    project.write(
        "playbooks/roles/base/tasks/main.yml",
        "- name: Deliberately failing step\n  ansible.builtin.command: /bin/false\n\n"
        + project.read("playbooks/roles/base/tasks/main.yml").removeprefix("---\n"),
    )
    before = project.amis(ec2)
    result = project.invoke("bake", "--image", "base")
    line = one_error_line(result)
    assert "Ansible task 'Deliberately failing step' failed on build-host" in line
    assert "no AMI was made" in line
    assert (
        "hint: fix playbooks/roles/base/tasks/main.yml:1 (artifacts: " in result.stderr
    )  # the role's file, not the playbook
    # The failing phase, then the step's own lines saying why, once; not Packer's "Script exited" three times.
    assert "✗ provision" in result.stdout
    assert (
        result.stdout.count(
            "FAILED: 'Deliberately failing step' on build-host at playbooks/roles/base/tasks/main.yml:1"
        )
        == 1
    )
    assert "Script exited" not in result.stdout + result.stderr
    assert project.amis(ec2) == before
    assert residue(project.state) == {"mounts": [], "processes": []}


def test_failing_image_test_stops_before_the_ami(project: Project, ec2):
    project.minimal_images()
    project.append(
        "tests/image/test_base.py",
        "\n\ndef test_deliberately_failing(host):\n    assert host.file('/etc/rodeo-missing').exists\n",
    )
    before = project.amis(ec2)
    result = project.invoke("bake", "--image", "base")
    line = one_error_line(result)
    assert "image test failed: test_deliberately_failing" in line
    assert "Packer" not in line
    assert project.amis(ec2) == before
    assert residue(project.state) == {"mounts": [], "processes": []}


def test_playbook_syntax_error(project: Project, ec2):
    project.write(
        "playbooks/base.yml", "- hosts: all\n  tasks:\n    - name: broken\n      ansible.builtin.command: [unclosed\n"
    )
    before = project.amis(ec2)
    line = one_error_line(project.invoke("bake", "--image", "base"))
    assert "failed" in line and "no AMI was made" in line
    assert project.amis(ec2) == before
    assert residue(project.state) == {"mounts": [], "processes": []}


def test_config_typo_is_one_line(project: Project):
    project.write(
        "inventories/local/rodeo.yml",
        project.read("inventories/local/rodeo.yml").replace(
            "playbook: playbooks/app.yml", "playbok: playbooks/app.yml"
        ),
    )
    line = one_error_line(project.invoke("bake"))
    assert line == "error: inventories/local/rodeo.yml: images.app.playbok: unknown key"


def test_unknown_image_lists_the_valid_ones(project: Project):
    result = project.invoke("bake", "--image", "nope")
    assert one_error_line(result) == "error: inventories/local/rodeo.yml: no image named 'nope'"
    assert "choose one of: app, base" in result.stderr


def test_packer_missing(project: Project, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("unshare", "git", "ssh-keygen", "ssh"):
        os.symlink(subprocess.run(["which", tool], capture_output=True, text=True).stdout.strip(), bin_dir / tool)
    result = project.invoke("bake", "--image", "base", path=f"{project.venv_bin}:{bin_dir}")
    assert one_error_line(result) == "error: packer is not installed"
    assert "make setup" in result.stderr


def test_debug_shows_the_traceback(project: Project):
    result = project.invoke("bake", "--image", "nope", "--debug")
    assert result.returncode != 0 and "Traceback" in result.stderr and "ConfigError" in result.stderr


def test_not_root_says_so_before_anything_starts(project: Project, ec2):
    """Run the real CLI with the uid reported as 1000 (this venv's Python is root's, so no real user can run it)."""
    before = project.amis(ec2)
    code = "import os, sys; os.geteuid = lambda: 1000; from invoke.main import program; sys.argv = ['invoke', 'bake']; program.run()"
    result = subprocess.run(
        [str(project.venv_bin / "python"), "-c", code],
        cwd=project.root,
        env=project.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert one_error_line(result) == "error: the local build instance needs root (mounts and chroot)"
    assert "sudo make bake" in result.stderr
    assert project.amis(ec2) == before


def test_a_bake_leaves_the_checkout_clean_and_says_why_it_rebakes(project: Project, ec2):
    """The committed template differs from what this Packer renders: the bake must not rewrite it (no '-dirty')."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=project.root, capture_output=True, text=True, check=True
        ).stdout.strip()

    project.minimal_images()
    git("init", "-q")
    project.append("packer/base.pkr.hcl", "# committed by another Packer version\n")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "init")
    head = git("rev-parse", "HEAD")
    first = last_json(project.invoke("bake", "--image", "base", "--json", "--force").stdout)
    assert first["tags"]["rodeo:git-sha"] == head
    assert git("status", "--porcelain") == ""

    project.append(
        "playbooks/base.yml",
        "    - name: One more step\n      ansible.builtin.command: /bin/true\n      changed_when: false\n",
    )
    result = project.invoke("bake", "--image", "base", "--json")
    second = last_json(result.stdout)
    assert second["cached"] is False and second["why"] == ["playbooks/base.yml changed"]
    assert "base: playbooks/base.yml changed" in result.stderr
    assert second["tags"]["rodeo:git-sha"] == f"{head}-dirty"  # the user's own edit, not Rodeo's write


def test_a_bake_logs_in_once_besides_packer_and_records_how_ansible_ran(project: Project):
    """Provision, image tests and seal share one SSH connection; Packer's own is the other login."""
    project.minimal_images()
    project.append(
        "playbooks/base.yml",
        "    - name: Leave a mark\n      ansible.builtin.copy: {dest: /etc/rodeo-marker, content: baked}\n      become: true\n",
    )
    result = project.invoke("bake", "--image", "base", "--json", "--force")
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((Path(last_json(result.stdout)["artifacts"]) / "bake.json").read_text())
    assert record["provision"]["strategy"] == "mitogen" and record["provision"]["fallback"] is None
    assert record["provision"]["counts"]["changed"] > 0
    # The build instance's sshd logged to its journal, which its disk (now the AMI's local layer) keeps.
    journal = project.state / "local/images/layers" / record["bake_id"] / "var/log/journal"
    log = subprocess.run(
        ["journalctl", "-D", str(journal), "-t", "sshd", "-o", "cat", "--no-pager"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert len([ln for ln in log if ln.startswith("Accepted publickey")]) == 2, log
