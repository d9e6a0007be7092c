"""Secrets reach Ansible and nothing else; the seal step refuses an image that holds one or the bake key."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.integration.bakes import Project, residue
from toolkit import secrets

pytestmark = pytest.mark.integration

# Quotes, a backslash, non-ASCII letters, a dollar, spaces and markup: every tool of the bake escapes some of them.
SECRET = "pa\"ss\\wörd-ß $HOME <b>&'9f8e"
ENV = {"RODEO_SECRET_DB_PASSWORD": SECRET}
USES_SECRET = """
- name: Check the database password (build time only)
  ansible.builtin.assert: {that: db_password | length >= 8}
  no_log: true
"""


def with_secret(project: Project, extra_task: str = "") -> None:
    yml = project.read("inventories/local/rodeo.yml").replace(
        "copy_to_regions: []", "copy_to_regions: []\nsecrets: [db_password]"
    )
    project.write("inventories/local/rodeo.yml", yml)
    project.append("playbooks/roles/base/tasks/main.yml", USES_SECRET + extra_task)


def minimal(project: Project, extra_task: str) -> None:
    """A one-play base image (the secret's task and ``extra_task``, no base role) with one passing test: a fast bake."""
    yml = project.read("inventories/local/rodeo.yml").replace(
        "copy_to_regions: []", "copy_to_regions: []\nsecrets: [db_password]"
    )
    project.write("inventories/local/rodeo.yml", yml)
    tasks = "".join("    " + line + "\n" if line else "\n" for line in (USES_SECRET + extra_task).splitlines())
    project.write(
        "playbooks/base.yml",
        f"- name: Base image\n  hosts: all\n  gather_facts: false\n  become: true\n  tasks:\n{tasks}",
    )
    project.write(
        "tests/image/test_base.py", "def test_the_host_answers(host):\n    assert host.file('/etc/os-release').exists\n"
    )


def error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0 and "Traceback" not in result.stderr
    (line,) = [ln for ln in result.stderr.splitlines() if ln.startswith("error: ")]
    return line


def files_holding(folder: Path, value: str) -> list[str]:
    """Every file under ``folder`` holding ``value`` in any of the forms a tool writes it (raw, JSON, repr, XML...)."""
    forms = [form.encode() for form in secrets.forms(value)]
    return [
        str(p)
        for p in folder.rglob("*")
        if p.is_file() and not p.is_symlink() and any(f in p.read_bytes() for f in forms)
    ]


def nowhere_in(text: str) -> bool:
    return not any(form in text for form in secrets.forms(SECRET))


def test_a_secret_is_used_but_kept_out_of_template_logs_artifacts_and_image(project: Project, ec2):
    with_secret(project)
    result = project.invoke("bake", "--image", "base", "--json", "--force", env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert nowhere_in(result.stdout + result.stderr)
    assert "Check the database password" in result.stderr  # the task ran
    assert files_holding(project.root / "packer", SECRET) == []
    assert files_holding(Path(record["artifacts"]), SECRET) == []
    layers = json.loads((project.state / "local/images" / f"{record['ami']['us-east-1']}.json").read_text())["layers"]
    top = Path(layers[-1])
    assert files_holding(top, SECRET) == []
    assert not (top / "home/admin/.ssh/authorized_keys").exists()  # the bake key is gone from the image
    assert not list((top / "etc/ssh").glob("ssh_host_*"))


def test_a_named_secret_without_a_value_is_refused(project: Project, ec2):
    with_secret(project)
    before = project.amis(ec2)
    line = error_line(project.invoke("bake", "--image", "base", "--force"))
    assert line == "error: secret db_password has no value"
    assert project.amis(ec2) == before


@pytest.mark.parametrize(
    "planted,message",
    [
        (
            "- name: Leak it into the image\n  ansible.builtin.copy: {dest: /etc/leak.conf, content: 'pw={{ db_password }}', mode: '0600'}\n  no_log: true\n",
            "secret db_password was found on the build instance in /etc/leak.conf",
        ),
        (
            "- name: Print it\n  ansible.builtin.debug: {msg: 'pw={{ db_password }}'}\n",
            "secret db_password was written to the bake's artifacts",
        ),
        (
            "- name: Copy the bake key\n  ansible.builtin.copy: {src: '{{ ansible_ssh_private_key_file }}', dest: /root/bake-key, mode: '0600'}\n",
            "the bake's private SSH key was found on the build instance in /root/bake-key",
        ),
    ],
    ids=["secret-in-image", "secret-in-log", "bake-key-in-image"],
)
def test_a_planted_secret_or_key_fails_the_bake_before_the_ami(project: Project, ec2, planted, message):
    minimal(project, planted)
    before = project.amis(ec2)
    result = project.invoke("bake", "--image", "base", "--force", env=ENV)
    line = error_line(result)
    assert message in line and "no AMI was made" in line
    assert project.amis(ec2) == before
    assert nowhere_in(line)
    bake_dir = max((project.state / "bakes").glob("base-*"), key=lambda p: p.stat().st_mtime)
    assert files_holding(bake_dir, SECRET) == []
    assert residue(project.state) == {"mounts": [], "processes": []}


def test_a_failing_task_that_prints_a_secret_is_redacted_everywhere(project: Project, ec2):
    """No no_log, and the task fails printing the value: the error line, packer.log, failure.json and artifacts hold none of it."""
    # stdin, not an environment variable: Ansible's `environment:` passes values through a shell unquoted.
    minimal(
        project,
        "- name: Fail loudly\n  ansible.builtin.shell: cat >&2; exit 3\n  args: {stdin: 'connecting with {{ db_password }}'}\n",
    )
    before = project.amis(ec2)
    result = project.invoke("bake", "--image", "base", "--force", env=ENV)
    line = error_line(result)
    assert "Ansible task 'Fail loudly' failed" in line and "[secret db_password]" in line
    assert nowhere_in(result.stdout + result.stderr)
    bake_dir = max((project.state / "bakes").glob("base-*"), key=lambda p: p.stat().st_mtime)
    assert (bake_dir / "failure.json").is_file() and (bake_dir / "packer.log").is_file()
    assert files_holding(bake_dir, SECRET) == []
    assert "[secret db_password]" in (bake_dir / "failure.json").read_text()
    assert project.amis(ec2) == before
    assert residue(project.state) == {"mounts": [], "processes": []}


def test_an_image_test_that_prints_a_secret_is_redacted_everywhere(project: Project, ec2):
    """The image test fails with the value in its assertion (pytest's repr, JUnit's XML): no form of it is kept."""
    minimal(
        project,
        "- name: Leave it for the test\n  ansible.builtin.copy: {dest: /etc/app.conf, content: '{{ db_password }}', mode: '0644'}\n"
        "  no_log: true\n",
    )
    project.write(
        "tests/image/test_base.py",
        "def test_the_password_is_not_there(host):\n"
        "    assert host.file('/etc/app.conf').content_string == 'expected'\n",
    )
    before = project.amis(ec2)
    result = project.invoke("bake", "--image", "base", "--force", env=ENV)
    line = error_line(result)
    assert "image test failed: test_the_password_is_not_there" in line
    assert nowhere_in(result.stdout + result.stderr)
    bake_dir = max((project.state / "bakes").glob("base-*"), key=lambda p: p.stat().st_mtime)
    assert "[secret db_password]" in (bake_dir / "verify.xml").read_text()
    assert files_holding(bake_dir, SECRET) == []
    assert project.amis(ec2) == before
    assert residue(project.state) == {"mounts": [], "processes": []}
