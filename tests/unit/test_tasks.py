"""The tasks stay thin: flags reach the toolkit (issue 9, case 4), and --help is never taken for an argument."""

from __future__ import annotations

import inspect

import pytest
from invoke import Context, Exit

import tasks
from toolkit.release import waves
from toolkit.release.result import ReleaseResult


def test_rollback_passes_break_lock(monkeypatch, capsys):
    seen = {}

    def fake_rollback(cfg, aws, **kwargs):
        seen.update(kwargs)
        return ReleaseResult(outcome="unchanged", kind="rollback", ami="ami-aaaaaaaa", git_sha=None, active_slot="blue")

    monkeypatch.setattr(tasks, "_config", lambda env: "cfg")
    monkeypatch.setattr(tasks, "_connect", lambda cfg, **kwargs: "aws")
    monkeypatch.setattr(waves, "rollback", fake_rollback)
    tasks.rollback.body(Context(), break_lock=True)
    assert seen["break_lock"] is True
    assert "nothing to roll back: ami-aaaaaaaa already serves from blue" in capsys.readouterr().out
    assert "break_lock" in tasks.rollback.help


@pytest.mark.parametrize(
    "task,name,argument",
    [
        (tasks.config_set, "config.set", "pair"),
        (tasks.config_unset, "config.unset", "key"),
        (tasks.verify, "verify", "ami"),
    ],
)
def test_help_where_a_positional_argument_goes_points_to_the_help(task, name, argument, capsys):
    with pytest.raises(Exit) as stopped:
        task.body(Context(), **{argument: "--help"})  # how invoke hands it over: `invoke config.set --help`
    assert stopped.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: --help came where {name}'s first argument goes",
        f"  hint: for its help: invoke --help {name}",
    ]


@pytest.mark.parametrize(
    "flags, back_s", [({"follow": True}, 0), ({"tail": True}, 0), ({"tail": True, "since": "5m"}, 300), ({}, 600)]
)
def test_logs_follow_starts_at_now_and_tail_is_follow(monkeypatch, flags, back_s):
    import time

    from toolkit.logs import tail

    seen = {}
    monkeypatch.setattr(tasks, "_config", lambda env: "cfg")
    monkeypatch.setattr(tasks, "_aws", lambda cfg, plan=False: "aws")
    monkeypatch.setattr(tail, "follow", lambda cfg, aws, query: seen.update(how="follow", query=query) or iter(()))
    monkeypatch.setattr(tail, "lines", lambda cfg, aws, query: seen.update(how="lines", query=query) or [])
    tasks.logs.body(Context(), **flags)
    assert seen["how"] == ("lines" if not flags else "follow")
    assert abs(seen["query"].since_ms - (time.time() - back_s) * 1000) < 5000
    assert seen["query"].everything is False


def test_every_task_is_in_the_collection():
    """A task left out of ``ns`` is one invoke says it has no idea of (``releases`` once was)."""
    from invoke import Task

    defined = {id(t) for t in vars(tasks).values() if isinstance(t, Task)}
    listed = {id(t) for t in tasks.ns.tasks.values()} | {
        id(t) for c in tasks.ns.collections.values() for t in c.tasks.values()
    }
    assert defined == listed


@pytest.mark.parametrize(
    "task", [tasks.release, tasks.rollback, tasks.deploy, tasks.promote, tasks.config_set, tasks.config_unset]
)
def test_every_command_that_releases_can_open_its_picture(task):
    assert "report" in task.help and inspect.signature(task.body).parameters["report"].default is False


def _released(report):
    return ReleaseResult(
        outcome="released", kind="release", ami="ami-1", git_sha=None, active_slot="green", report=report
    )


@pytest.mark.parametrize("failed", [False, True], ids=["released", "rolled back"])
def test_the_picture_opened_is_the_release_inside_a_deploy_or_config_change(monkeypatch, failed):
    from toolkit.configchange import ConfigResult
    from toolkit.deploy import DeployResult
    from toolkit.errors import ReleaseError

    opened = []
    monkeypatch.setattr(tasks, "_open_page", opened.append)
    monkeypatch.setattr(tasks, "_show", lambda result, json_mode: None)
    results = [
        _released("/p/v1.html"),
        DeployResult(image="app", outcome="deployed", release=_released("/p/v2.html")),
        ConfigResult(
            outcome="released", app="web", env="local", version=2, previous=1, release=_released("/p/v3.html")
        ),
        DeployResult(image="app", outcome="bake_failed"),
    ]
    for result in results:

        def action(result=result):
            if failed:
                raise ReleaseError("rolled back", result=result)
            return result

        if failed:
            with pytest.raises(ReleaseError):
                tasks._with_result(False, action, open_report=True)
        else:
            tasks._with_result(False, action, open_report=True)
    assert opened == ["/p/v1.html", "/p/v2.html", "/p/v3.html", None]
