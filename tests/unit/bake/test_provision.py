"""The provision step's failure: the host a task ran on, its file and line, its return code and stderr.

The event data below was recorded from ansible-runner 2.4 and ansible-core 2.19
(tests/integration/bake/test_provision_failures.py makes it again for real).
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from toolkit import progress
from toolkit.bake.provision import TaskFailure, TaskPrinter, provision_error, task_failure

ROOT = Path("/project")

DELEGATED_COMMAND = {
    "task": "Delegated failing command",
    "task_action": "ansible.builtin.command",
    "task_path": "/project/playbooks/roles/r1/tasks/main.yml:5",
    "role": "r1",
    "host": "build-host",
    "ignore_errors": None,
    "res": {
        "changed": True,
        "stdout": "out",
        "stderr": "first err\nsecond err",
        "rc": 3,
        "msg": "non-zero return code",
        "cmd": ["sh", "-c", "echo out; echo first err >&2; echo second err >&2; exit 3"],
        "_ansible_delegated_vars": {
            "ansible_host": "localhost",
            "ansible_port": None,
            "ansible_user": None,
            "ansible_connection": "local",
        },
    },
}
SCRIPT = {
    "task": "Failing script",
    "task_action": "ansible.builtin.script",
    "task_path": "/project/playbooks/roles/r1/tasks/script.yml:2",
    "role": "r1",
    "host": "build-host",
    "ignore_errors": None,
    "res": {
        "rc": 4,
        "stdout": "script says hi\n",
        "stderr": "script broke here\n",
        "changed": True,
        "msg": "non-zero return code",
    },
}
SCRIPT_STDOUT_ONLY = dict(
    SCRIPT, res={"rc": 1, "stdout": "checking\nno config found\n", "stderr": "", "msg": "non-zero return code"}
)
LOOP = {
    "task": "Loop",
    "task_path": "/project/playbooks/app.yml:9",
    "host": "build-host",
    "res": {
        "msg": "One or more items failed",
        "changed": True,
        "results": [
            {"item": 1, "rc": 0, "stderr": "", "failed": False},
            {"item": 2, "rc": 2, "stderr": "item two broke", "msg": "non-zero return code", "failed": True},
        ],
    },
}
UNREACHABLE = {
    "task": "Anything",
    "task_path": "/elsewhere/site.yml:3",
    "host": "build-host",
    "res": {"msg": "Failed to connect to the host via ssh: Connection refused", "unreachable": True},
}


@pytest.mark.parametrize(
    "data,expected",
    [
        (
            DELEGATED_COMMAND,
            TaskFailure(
                task="Delegated failing command",
                host="localhost (delegated from build-host)",
                message="non-zero return code (rc 3): first err | second err",
                path="playbooks/roles/r1/tasks/main.yml:5",
                reason="non-zero return code (rc 3)",
                output=("stderr: first err", "stderr: second err"),
            ),
        ),
        (
            SCRIPT,
            TaskFailure(
                task="Failing script",
                host="build-host",
                message="non-zero return code (rc 4): script broke here",
                path="playbooks/roles/r1/tasks/script.yml:2",
                reason="non-zero return code (rc 4)",
                output=("stderr: script broke here",),
            ),
        ),
        (
            SCRIPT_STDOUT_ONLY,
            TaskFailure(  # nothing on stderr: the end of stdout says why
                task="Failing script",
                host="build-host",
                message="non-zero return code (rc 1)",
                path="playbooks/roles/r1/tasks/script.yml:2",
                reason="non-zero return code (rc 1)",
                output=("stdout: checking", "stdout: no config found"),
            ),
        ),
        (
            LOOP,
            TaskFailure(  # the failed item, not "One or more items failed"
                task="Loop",
                host="build-host",
                message="non-zero return code (rc 2): item two broke",
                path="playbooks/app.yml:9",
                reason="non-zero return code (rc 2)",
                output=("stderr: item two broke",),
            ),
        ),
        (
            UNREACHABLE,
            TaskFailure(  # a path outside the project stays absolute
                task="Anything",
                host="build-host",
                message="Failed to connect to the host via ssh: Connection refused",
                path="/elsewhere/site.yml:3",
            ),
        ),
    ],
)
def test_a_failure_names_the_host_it_ran_on_and_the_tasks_file(data, expected):
    assert task_failure(data, ROOT) == expected


def test_the_error_names_the_delegate_and_the_hint_the_role_file():
    failure = task_failure(DELEGATED_COMMAND, ROOT)
    error = provision_error(failure, "playbooks/app.yml", Path("/bake/ansible/artifacts/provision"))
    assert error.message == (
        "Ansible task 'Delegated failing command' failed on localhost (delegated from build-host): "
        "non-zero return code (rc 3): first err | second err"
    )
    assert error.hint == "fix playbooks/roles/r1/tasks/main.yml:5 (artifacts: /bake/ansible/artifacts/provision)"


def test_a_run_that_failed_before_any_task_names_the_playbook():
    error = provision_error("ERROR! the playbook could not be parsed", "playbooks/app.yml", Path("/a"))
    assert error.message == "Ansible run of playbooks/app.yml failed: ERROR! the playbook could not be parsed"
    assert error.hint == "fix playbooks/app.yml (artifacts: /a)"


def test_the_printer_emits_a_task_event_with_the_count_and_prints_the_failure(tmp_path):
    count = tmp_path / "task-count.json"
    count.write_text('{"tasks": 2, "dynamic": false}')
    out = io.StringIO()
    printer = TaskPrinter(out, {"db_password": "s3cret-value"}, ROOT, count)
    printer({"event": "playbook_on_task_start", "event_data": {"task": "Fine"}})
    printer({"event": "playbook_on_task_start", "event_data": {"task": "Delegated failing command"}})
    printer(
        {
            "event": "runner_on_failed",
            "event_data": dict(DELEGATED_COMMAND, res=dict(DELEGATED_COMMAND["res"], stderr="pw s3cret-value wrong")),
        }
    )
    lines = out.getvalue().splitlines()
    assert [progress.parse(line) for line in lines[:2]] == [
        progress.Task(1, "Fine", 2),
        progress.Task(2, "Delegated failing command", 2),
    ]
    assert lines[2:] == [
        "FAILED: 'Delegated failing command' on localhost (delegated from build-host) at playbooks/roles/r1/tasks/main.yml:5",
        "  non-zero return code (rc 3)",
        "  stderr: pw [secret db_password] wrong",
    ]
    assert "s3cret-value" not in printer.failure.message


def test_without_a_count_a_task_has_no_total():
    out = io.StringIO()
    TaskPrinter(out, count_file=Path("/nonexistent/task-count.json"))(
        {"event": "playbook_on_task_start", "event_data": {"task": "A"}}
    )
    assert progress.parse(out.getvalue()) == progress.Task(1, "A", None)
