"""``invoke releases`` against a moto server: numbers handed out under concurrency, and the command's output."""

from __future__ import annotations

import json
import threading

from invoke import Context

import tasks
from toolkit.local.environment import LocalEnvironment
from toolkit.release import history, ledger, rollout


def test_concurrent_runs_never_share_a_number(world):
    """Eight runs recording at once, each with its own clients: numbers 1 to 8, once each (one atomic counter)."""
    barrier, numbers, errors = threading.Barrier(8), [], []

    def record(i):
        try:
            aws = LocalEnvironment(region=world.cfg.region, endpoint=world.url)
            barrier.wait(timeout=30)
            numbers.append(ledger.start(world.cfg, aws, {"kind": "release", "to_ami": f"ami-{i:08x}"})["number"])
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=record, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == [] and sorted(numbers) == list(range(1, 9))
    assert sorted(r.number for r in history.read(world.cfg, world.aws).runs) == list(range(1, 9))


def test_the_command_lists_every_run_newest_first(world, monkeypatch, capsys):
    base, ami = world.state().active.ami, world.ami(sha="feed123")
    rollout.release(world.cfg, world.aws, ami=ami, reporter=world.reporter)
    rollout.rollback(world.cfg, world.aws, reporter=world.reporter)
    monkeypatch.setattr(tasks, "_config", lambda env: world.cfg)
    monkeypatch.setattr(tasks, "_connect", lambda cfg, **kwargs: world.aws)
    tasks.releases.body(Context())
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"releases of {world.cfg.app}/test, newest first" and len(lines) == 3
    assert lines[1].startswith("   v2  ") and f"rolled back      {base} (config v0)" in lines[1]
    assert lines[2].startswith("   v1  ") and f"released         {ami} (config v0)" in lines[2]
    tasks.releases.body(Context(), json=True)
    shown = json.loads(capsys.readouterr().out)
    assert [(r["number"], r["kind"], r["outcome"], r["ami"], r["git_sha"]) for r in shown["releases"]] == [
        (2, "rollback", "restored", base, None),
        (1, "release", "released", ami, "feed123"),
    ]
    assert all(r["aws_caller"].startswith("arn:aws:iam::") and r["seconds"] is not None for r in shown["releases"])
