"""The live stack's host limits: enough inotify instances for every booted instance's systemd."""

from __future__ import annotations

from toolkit.local import instances


def test_the_inotify_limit_is_raised_only_when_lower(tmp_path):
    limit = tmp_path / "max_user_instances"
    limit.write_text("128\n")
    assert instances.raise_inotify_limit(limit, 1024) == (128, 1024) and limit.read_text() == "1024\n"
    assert instances.raise_inotify_limit(limit, 1024) is None and limit.read_text() == "1024\n"
    limit.write_text("4096\n")
    assert instances.raise_inotify_limit(limit, 1024) is None and limit.read_text() == "4096\n"
    assert instances.raise_inotify_limit(tmp_path / "missing", 1024) is None


def test_a_reason_holds_no_control_character():
    from toolkit.local.controller import printable

    assert (
        printable("nspawn exited with 255; [\x1b[0;1;31m!!!!!!\x1b[0m] Failed\tto allocate\x07")
        == "nspawn exited with 255; [!!!!!!] Failedto allocate"
    )
