"""The provision step's handler and task counter on a real Ansible run: a tiny playbook against localhost.

No build host: the inventory's build-host is this machine (connection local),
so these check what Ansible really sends for a delegated command and a script.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import pytest

from toolkit import progress
from toolkit.bake.provision import CALLBACKS, TASK_COUNT, TaskPrinter, provision_error

pytestmark = pytest.mark.integration

PLAY = """- name: Tiny
  hosts: all
  gather_facts: false
  roles: [r1]
"""
TASKS = {
    "delegated": """---
- name: Fine
  ansible.builtin.command: /bin/true
  changed_when: false

- name: Delegated failing command
  ansible.builtin.command: sh -c 'echo out; echo first err >&2; echo second err >&2; exit 3'
  delegate_to: localhost
""",
    "script": """---
- name: Failing script
  ansible.builtin.script: bad.sh

- name: Never reached
  ansible.builtin.include_tasks: more.yml
""",
}
SCRIPT = "#!/bin/sh\necho script says hi\necho script broke here >&2\nexit 4\n"


def run_playbook(root: Path, tasks: str, monkeypatch) -> tuple[object, TaskPrinter, list]:
    import ansible_runner

    role = root / "playbooks/roles/r1"
    (role / "tasks").mkdir(parents=True)
    (role / "files").mkdir()
    (role / "tasks/main.yml").write_text(tasks)
    (role / "files/bad.sh").write_text(SCRIPT)
    (root / "playbooks/site.yml").write_text(PLAY)
    (root / "hosts.yml").write_text(
        f"all: {{hosts: {{build-host: {{ansible_connection: local, ansible_python_interpreter: {sys.executable}}}}}}}\n"
    )
    private = root / "ansible"
    private.mkdir()
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    out = io.StringIO()
    printer = TaskPrinter(out, {}, root, private / "artifacts" / "provision" / TASK_COUNT)
    result = ansible_runner.run(
        private_data_dir=str(private),
        playbook=str(root / "playbooks/site.yml"),
        inventory=str(root / "hosts.yml"),
        ident="provision",
        envvars={
            "ANSIBLE_ROLES_PATH": str(root / "playbooks/roles"),
            "ANSIBLE_CALLBACK_PLUGINS": str(CALLBACKS),
            "ANSIBLE_NOCOLOR": "True",
        },
        event_handler=printer,
        quiet=True,
        rotate_artifacts=0,
        cancel_callback=lambda: (
            False
        ),  # as provision.run: without one, ansible-runner takes over this worker's Ctrl-C for good
    )
    events = [progress.parse(line) for line in out.getvalue().splitlines()]
    return result, printer, events


def test_a_delegated_command_names_the_delegate_its_stderr_and_the_role_file(tmp_path, monkeypatch):
    result, printer, events = run_playbook(tmp_path, TASKS["delegated"], monkeypatch)
    assert result.status == "failed"
    assert [e for e in events if e is not None] == [
        progress.Task(1, "Fine", 2),
        progress.Task(2, "Delegated failing command", 2),
    ]
    error = provision_error(printer.failure, "playbooks/site.yml", tmp_path / "ansible/artifacts/provision")
    assert error.message == (
        "Ansible task 'Delegated failing command' failed on localhost (delegated from build-host): "
        "non-zero return code (rc 3): first err | second err"
    )
    assert error.hint.startswith("fix playbooks/roles/r1/tasks/main.yml:6 (artifacts: ")


def test_a_script_says_its_rc_and_stderr_and_a_dynamic_include_makes_the_count_approximate(tmp_path, monkeypatch):
    result, printer, events = run_playbook(tmp_path, TASKS["script"], monkeypatch)
    assert result.status == "failed"
    assert events[0] == progress.Task(1, "Failing script", 2, approx=True)
    assert printer.failure.host == "build-host"
    assert printer.failure.path == "playbooks/roles/r1/tasks/main.yml:2"
    assert printer.failure.lines() == [
        "FAILED: 'Failing script' on build-host at playbooks/roles/r1/tasks/main.yml:2",
        "  non-zero return code (rc 4)",
        "  stderr: script broke here",
    ]
