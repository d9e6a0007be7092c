"""Notification messages and how targets are shown: pure tables."""

from __future__ import annotations

import pytest

from toolkit import notify


def test_a_message_has_slacks_text_and_the_facts_as_data():
    ev = notify.Event("release.rolled_back", "web", "production", "release of ami-1 rolled back: alarm web-5xx", {"ami": "ami-1", "reason": "alarm web-5xx"})
    assert notify.message(ev) == {
        "text": "↩️ web (production): release of ami-1 rolled back: alarm web-5xx",
        "rodeo": {"event": "release.rolled_back", "app": "web", "env": "production", "ami": "ami-1", "reason": "alarm web-5xx"},
    }


@pytest.mark.parametrize("url,shown", [
    ("https://hooks.slack.com/services/T000/B000/SECRETSECRET", "https://hooks.slack.com/…"),
    ("http://127.0.0.1:8123/hook?token=abc", "http://127.0.0.1:8123/…"),
    ("${SLACK_WEBHOOK}", "${SLACK_WEBHOOK}"),
])
def test_a_webhook_is_shown_without_its_secret_path(url, shown):
    assert notify.shown(url) == shown


def test_an_unknown_kind_is_a_programming_error():
    from toolkit.config import Config

    with pytest.raises(ValueError):
        notify.event(Config(app="web", region="us-east-1", images={}), "release.maybe", "x")


def test_without_notify_settings_nothing_is_sent():
    from toolkit.config import Config

    assert notify.send(Config(app="web", region="us-east-1", images={}), aws=None, ev=notify.Event("bake.done", "web", "local", "x")) == []
