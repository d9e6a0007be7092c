"""Issue 9, case 4: ``invoke rollback --break-lock`` reaches the rollback (tasks stay thin)."""

from __future__ import annotations

from invoke import Context

import tasks
from toolkit.release import rollout
from toolkit.release.rollout import ReleaseResult


def test_rollback_passes_break_lock(monkeypatch, capsys):
    seen = {}

    def fake_rollback(cfg, aws, **kwargs):
        seen.update(kwargs)
        return ReleaseResult(outcome="unchanged", kind="rollback", ami="ami-aaaaaaaa", git_sha=None, active_slot="blue")

    monkeypatch.setattr(tasks, "_config", lambda env: "cfg")
    monkeypatch.setattr(tasks, "_connect", lambda cfg, **kwargs: ("aws", None))
    monkeypatch.setattr(rollout, "rollback", fake_rollback)
    tasks.rollback.body(Context(), break_lock=True)
    assert seen["break_lock"] is True
    assert "unchanged: ami-aaaaaaaa" in capsys.readouterr().out
    assert "break_lock" in tasks.rollback.help
