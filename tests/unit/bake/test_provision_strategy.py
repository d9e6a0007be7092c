"""Which failures of a Mitogen run make the provision step run the playbook again with plain Ansible (a table)."""

from __future__ import annotations

import io

import pytest

from toolkit.bake import provision


class Run:
    """What provision reads of an ansible-runner Runner."""

    def __init__(self, status: str, events: list[dict], stdout: str = "") -> None:
        self.status, self.events, self._stdout = status, events, stdout

    @property
    def stdout(self):
        return io.StringIO(self._stdout)


def failed(task: str, res: dict, event: str = "runner_on_failed") -> dict:
    return {"event": event, "event_data": {"task": task, "res": res}}


OK = {"event": "runner_on_ok", "event_data": {"task": "t", "res": {"changed": True}}}
PLAY = [{"event": "playbook_on_start"}, {"event": "playbook_on_play_start"}]

CASES = [
    # (run, fallback reason starts with, or None: the playbook's own failure)
    (Run("successful", PLAY + [OK]), None),
    # Stopped (Ctrl-C) while Mitogen was loading: the output names the strategy, but no fallback run.
    (Run("canceled", PLAY, "[WARNING]: ... mitogen_linear strategy ..."), None),
    (
        Run("failed", PLAY, "ERROR! Invalid play strategy specified: mitogen_linear"),
        "failed to load (ERROR! Invalid play strategy",
    ),
    (Run("failed", PLAY, "[ERROR]: Unexpected Exception: No module named 'mitogen'"), "failed to load"),
    (Run("failed", PLAY, "ERROR! the playbook: x.yml could not be found"), None),  # not Mitogen's doing
    (
        Run(
            "failed",
            PLAY + [failed("Install", {"msg": "Could not import the python3-apt module using /usr/bin/python3"})],
        ),
        "task 'Install' needs what Mitogen cannot do",
    ),
    (
        Run("failed", PLAY + [failed("Install", {"msg": "module '__main__' has no attribute '_module_fqn'"})]),
        "task 'Install' needs",
    ),
    (
        Run(
            "failed",
            PLAY
            + [
                failed(
                    "Connect",
                    {"msg": "EOF on stream; last 100 lines received: mitogen.core ..."},
                    "runner_on_unreachable",
                )
            ],
        ),
        "could not start on the host",
    ),
    (Run("failed", PLAY + [OK, failed("Copy", {"msg": "Destination directory /nope does not exist"})]), None),
    (
        Run(
            "failed", PLAY + [failed("Ping", {"msg": "Failed to connect to the host via ssh"}, "runner_on_unreachable")]
        ),
        None,
    ),
]


@pytest.mark.parametrize("run,reason", CASES)
def test_mitogen_failures_are_told_from_the_playbooks(run, reason):
    got = provision.mitogen_failure(run)
    assert (got is None) if reason is None else (got or "").startswith(reason), got


def test_without_mitogen_installed_plain_ansible_runs_once_announced(tmp_path, monkeypatch):
    monkeypatch.setattr(provision, "mitogen_plugins", lambda: None)
    envs, out = [], io.StringIO()

    def play(env):
        envs.append(env)
        return Run("successful", PLAY + [OK])

    _, how = provision.run_with_strategy("mitogen", {"A": "1"}, play, tmp_path, out)
    assert how == {"strategy": "linear", "fallback": "mitogen is not installed"}
    assert [e["ANSIBLE_STRATEGY"] for e in envs] == ["linear"]
    assert out.getvalue().count("\n") == 1 and out.getvalue().startswith("mitogen: mitogen is not installed")


def test_a_broken_mitogen_runs_the_playbook_again_with_linear(tmp_path):
    runs = iter(
        [Run("failed", PLAY, "ERROR! Invalid play strategy specified: mitogen_linear"), Run("successful", PLAY + [OK])]
    )
    envs = []

    def play(env):
        envs.append(env)
        (tmp_path / "artifacts" / "provision").mkdir(parents=True, exist_ok=True)
        return next(runs)

    result, how = provision.run_with_strategy("mitogen", {}, play, tmp_path, io.StringIO(), plugins=tmp_path)
    assert (
        result.status == "successful" and how["strategy"] == "linear" and how["fallback"].startswith("failed to load")
    )
    assert [e["ANSIBLE_STRATEGY"] for e in envs] == ["mitogen_linear", "linear"]
    assert "ANSIBLE_STRATEGY_PLUGINS" not in envs[1]
    assert (tmp_path / "artifacts" / "provision-mitogen").is_dir()  # the failed attempt's artifacts, kept


def test_the_fallback_reason_is_redacted_where_it_is_shown_and_kept(tmp_path):
    leaky = Run(
        "failed", PLAY + [failed("Install", {"msg": "Could not import the python3-apt module using hunter2hunter2"})]
    )
    runs = iter([leaky, Run("successful", PLAY + [OK])])
    out = io.StringIO()
    _, how = provision.run_with_strategy(
        "mitogen",
        {},
        lambda env: next(runs),
        tmp_path,
        out,
        plugins=tmp_path,
        redact=lambda text: text.replace("hunter2hunter2", "[secret db_password]"),
    )
    assert "hunter2hunter2" not in out.getvalue() + how["fallback"]
    assert "[secret db_password]" in how["fallback"]
