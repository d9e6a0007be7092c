"""The settling window of the local stack's eventual consistency, on a fake clock."""

from __future__ import annotations

import pytest

from toolkit.local.awsrules import DEFAULT_SETTLE_SECONDS, Settling, settle_seconds


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_only_the_first_use_within_the_window_is_refused():
    clock = Clock()
    settling = Settling(5, clock)
    settling.made("sg-1")
    settling.made("sg-2")
    assert [settling.refuse("sg-1"), settling.refuse("sg-1")] == [True, False]
    clock.now += 5
    assert settling.refuse("sg-2") is False  # first used after the window: ready
    assert settling.refuse("sg-never-made") is False


def test_what_a_describe_found_is_settled():
    settling = Settling(5, Clock())
    settling.made("sg-1")
    settling.settle("sg-1")
    assert settling.refuse("sg-1") is False


def test_a_window_of_zero_refuses_nothing():
    settling = Settling(0, Clock())
    settling.made("lt-1")
    assert settling.refuse("lt-1") is False


@pytest.mark.parametrize("value, seconds", [(None, DEFAULT_SETTLE_SECONDS), ("0", 0.0), ("2.5", 2.5), ("-3", 0.0), ("soon", DEFAULT_SETTLE_SECONDS)])
def test_the_window_comes_from_the_environment(monkeypatch, value, seconds):
    if value is None:
        monkeypatch.delenv("RODEO_LOCAL_SETTLE_SECONDS", raising=False)
    else:
        monkeypatch.setenv("RODEO_LOCAL_SETTLE_SECONDS", value)
    assert settle_seconds() == seconds
