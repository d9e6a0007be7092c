"""Notification messages and how targets are shown (pure tables), and what a refusal says (a loopback webhook)."""

from __future__ import annotations

import pytest

from tests.support.webhook import Hook
from toolkit import notify


def test_a_message_has_slacks_text_and_the_facts_as_data():
    ev = notify.Event(
        "release.rolled_back",
        "web",
        "production",
        "release of ami-1 rolled back: alarm web-5xx",
        {"ami": "ami-1", "reason": "alarm web-5xx"},
    )
    assert notify.message(ev) == {
        "text": "↩️ web (production): release of ami-1 rolled back: alarm web-5xx",
        "rodeo": {
            "event": "release.rolled_back",
            "app": "web",
            "env": "production",
            "ami": "ami-1",
            "reason": "alarm web-5xx",
        },
    }


@pytest.mark.parametrize(
    "url,shown",
    [
        ("https://hooks.slack.com/services/T000/B000/SECRETSECRET", "https://hooks.slack.com/…"),
        ("http://127.0.0.1:8123/hook?token=abc", "http://127.0.0.1:8123/…"),
        ("${SLACK_WEBHOOK}", "${SLACK_WEBHOOK}"),
    ],
)
def test_a_webhook_is_shown_without_its_secret_path(url, shown):
    assert notify.shown(url) == shown


def test_an_unknown_kind_is_a_programming_error():
    from toolkit.config import Config

    with pytest.raises(ValueError):
        notify.event(Config(app="web", region="us-east-1", images={}), "release.maybe", "x")


def test_without_notify_settings_nothing_is_sent():
    from toolkit.config import Config

    assert (
        notify.send(
            Config(app="web", region="us-east-1", images={}),
            aws=None,
            ev=notify.Event("bake.done", "web", "local", "x"),
        )
        == []
    )


LONG = "release of ami-0123456789abcdef0 rolled back: alarm web-5xx fired\nat step 10% (" + "x" * 80 + ")"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("✅ web (production): release of ami-1 done", "web (production): release of ami-1 done"),
        ("↩️ web (local): rolled back:\n\talarm web-5xx", "web (local): rolled back: alarm web-5xx"),
        ("⚙️ ", "config.changed"),
        (LONG, ("release of ami-0123456789abcdef0 rolled back: alarm web-5xx fired at step 10% (" + "x" * 80)[:99]),
    ],
)
def test_an_sns_subject_is_what_sns_takes(text, expected):
    got = notify.subject(notify.Event("config.changed", "web", "local", "x"), text)
    assert got == expected
    assert len(got) < 100 and all(" " <= c <= "~" for c in got) and not got.startswith(" ")


def test_a_fifo_topic_gets_a_message_group_and_a_deduplication_id():
    ev = notify.Event("release.done", "web", "production", "done")
    body = notify.message(ev)
    standard = notify.publish_args("arn:aws:sns:us-east-1:1:deploys", ev, body, "d1")
    fifo = notify.publish_args("arn:aws:sns:us-east-1:1:deploys.fifo", ev, body, "d1")
    assert "MessageGroupId" not in standard and "MessageDeduplicationId" not in standard
    assert (fifo["MessageGroupId"], fifo["MessageDeduplicationId"]) == ("rodeo-web-production", "d1")
    same = ("Subject", "Message", "MessageAttributes")
    assert [fifo[k] for k in same] == [standard[k] for k in same] and fifo["TopicArn"].endswith(".fifo")


def test_a_refusal_says_which_server_refused():
    """A 403 from a proxy in front of the webhook and one from the webhook's own service read differently."""
    hook = Hook(status=403)
    try:
        delivery = notify._post(hook.url, {"text": "t"}, timeout=5)
    finally:
        hook.close()
    assert delivery == notify.Delivery(
        f"http://127.0.0.1:{hook.server_address[1]}/…", False, f"it answered HTTP 403 (server: {hook.server})"
    )
