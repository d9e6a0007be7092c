"""The bake's steps in one process: in order, each its own phase, the first failure stops the rest."""

from __future__ import annotations

import json

from toolkit import progress
from toolkit.bake import runner, ssh_steps
from toolkit.errors import ProvisionError


def flags(tmp_path) -> list[str]:
    return [
        "--env",
        "local",
        "--image",
        "base",
        "--bake-dir",
        str(tmp_path),
        "--host",
        "127.0.0.1",
        "--port",
        "2222",
        "--user",
        "admin",
        "--key",
        str(tmp_path / "key"),
    ]


def events(out: str) -> list[tuple[str, str]]:
    found = [progress.parse(line) for line in out.splitlines()]
    return [(type(e).__name__, e.name if isinstance(e, progress.Phase) else e.phase) for e in found if e is not None]


def test_the_steps_run_in_order_each_with_its_own_phase(tmp_path, capsys):
    ran = []

    def make(name):
        def run(args, host, values):
            ran.append((name, host.port, args.image))
            return f"{name} done"

        return run

    assert (
        runner.run_steps(
            [("provision", make("provision")), ("verify", make("verify")), ("seal", make("seal"))],
            flags(tmp_path),
            "test",
        )
        == 0
    )
    assert ran == [("provision", 2222, "base"), ("verify", 2222, "base"), ("seal", 2222, "base")]
    assert events(capsys.readouterr().out) == [
        ("Phase", "provision"),
        ("Done", "provision"),
        ("Phase", "verify"),
        ("Done", "verify"),
        ("Phase", "seal"),
        ("Done", "seal"),
    ]


def test_a_failing_step_leaves_its_reason_and_the_next_steps_do_not_run(tmp_path, capsys):
    ran = []

    def fails(args, host, values):
        raise ProvisionError("Ansible task 'x' failed on build-host: boom", "fix playbooks/base.yml")

    assert (
        runner.run_steps([("provision", fails), ("seal", lambda *a: ran.append("seal"))], flags(tmp_path), "test") == 1
    )
    assert ran == []
    assert events(capsys.readouterr().out) == [("Phase", "provision"), ("Failed", "provision")]
    failure = json.loads((tmp_path / "failure.json").read_text())
    assert failure == {
        "phase": "provision",
        "message": "Ansible task 'x' failed on build-host: boom",
        "hint": "fix playbooks/base.yml",
    }


def test_the_bake_runs_provision_then_verify_then_seal():
    assert [phase for phase, _ in ssh_steps.STEPS] == ["provision", "verify", "seal"]
