"""Notifications from real releases: a loopback webhook, a webhook that fails, and SNS (into an SQS queue) on moto."""

from __future__ import annotations

import dataclasses
import json
import socket

import pytest

from tests.support.webhook import Hook
from toolkit.config import Notify
from toolkit.errors import ReleaseError
from toolkit.release import rollout
from toolkit.ui import Reporter


@pytest.fixture
def hooks():
    made = []

    def make(status=200):
        made.append(Hook(status))
        return made[-1]

    yield make
    for hook in made:
        hook.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _notifying(world, *webhooks, sns_topic=None):
    world.cfg = dataclasses.replace(world.cfg, notify=Notify(webhooks=webhooks, sns_topic=sns_topic, timeout_seconds=2))
    return world


def test_a_release_says_it_started_and_is_done_even_when_one_webhook_fails(world, hooks, capsys, monkeypatch):
    good, broken = hooks(), hooks(status=500)
    monkeypatch.setenv("RODEO_TEST_HOOK", good.url)
    _notifying(
        world,
        good.url,
        broken.url,
        f"http://127.0.0.1:{_free_port()}/hook",
        "${RODEO_TEST_HOOK}",
        "${RODEO_TEST_UNSET_HOOK}",
    )
    ami = world.ami()
    result = rollout.release(world.cfg, world.aws, ami=ami, reporter=Reporter(live=False))
    assert result.outcome == "released" and world.state().weights == {"blue": 0, "green": 100}
    # Sent directly and through the environment variable: twice each.
    assert good.kinds() == ["release.started", "release.started", "release.done", "release.done"]
    done = good.bodies[-1]
    assert done["rodeo"] | {"ami": ami, "slot": "green", "app": world.cfg.app, "outcome": "released"} == done["rodeo"]
    assert done["text"].endswith(f"release of {ami} done: green holds all traffic")
    assert broken.kinds() == ["release.started", "release.done"]
    out = capsys.readouterr().out
    assert (
        out.count(f"it answered HTTP 500 (server: {broken.server})") == 2
        and out.count("RODEO_TEST_UNSET_HOOK is not set") == 2
    )
    assert out.count("Connection refused") == 2
    assert "secret-part" not in out


def test_a_rolled_back_release_says_why(alarmed_world, hooks):
    world = alarmed_world
    hook = hooks()
    _notifying(world, hook.url)
    cw = world.aws.client("cloudwatch")

    def fire_at_first_weight(model, **kwargs):
        if model.name == "ModifyListener":
            cw.set_alarm_state(AlarmName=f"{world.cfg.app}-5xx", StateValue="ALARM", StateReason="test: 5xx spike")

    world.aws.client("elbv2").meta.events.register("after-call", fire_at_first_weight)
    with pytest.raises(ReleaseError):
        rollout.release(world.cfg, world.aws, ami=world.ami(), reporter=world.reporter)
    assert hook.kinds() == ["release.started", "release.rolled_back"]
    data = hook.bodies[-1]["rodeo"]
    assert f"{world.cfg.app}-5xx" in data["reason"] and data["slot"] == "blue" and data["outcome"] == "rolled_back"


def test_sns_gets_the_same_message(world):
    sns, sqs = world.aws.client("sns"), world.aws.client("sqs")
    topic = sns.create_topic(Name=f"{world.cfg.app}-deploys")["TopicArn"]
    queue = sqs.create_queue(QueueName=f"{world.cfg.app}-deploys")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    _notifying(world, sns_topic=topic)
    rollout.release(world.cfg, world.aws, ami=world.ami(), reporter=world.reporter)
    got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    assert [json.loads(m["Body"])["rodeo"]["event"] for m in got] == ["release.started", "release.done"]


def test_a_config_change_names_its_keys_never_a_value(world, hooks):
    from toolkit import configchange as change

    hook = hooks()
    _notifying(world, hook.url)
    change.set_vars(
        world.cfg,
        world.aws,
        {"GREETING": "hello-there", "API_TOKEN": "s3cr3t-value"},
        secret=False,
        release=False,
        reporter=world.reporter,
    )
    assert hook.kinds() == ["config.changed"]
    body = hook.bodies[0]
    assert body["rodeo"]["version"] == 1 and sorted(body["rodeo"]["changed"]) == ["API_TOKEN", "GREETING"]
    assert "staged" in body["text"] and "s3cr3t-value" not in json.dumps(body) and "hello-there" not in json.dumps(body)


def test_sns_takes_a_long_multiline_summary_and_a_fifo_topic(world):
    """AWS's Subject rules and a .fifo topic's ids, as the local stack enforces them (moto alone lets both through)."""
    from toolkit import notify

    sns = world.aws.client("sns")
    standard = sns.create_topic(Name=f"{world.cfg.app}-deploys")["TopicArn"]
    fifo = sns.create_topic(Name=f"{world.cfg.app}-deploys.fifo", Attributes={"FifoTopic": "true"})["TopicArn"]
    summary = "release of ami-0123456789abcdef0 rolled back: alarm web-5xx\nfired at 10% with " + "5xx " * 30
    ev = notify.event(world.cfg, "release.rolled_back", summary, reason="alarm")
    for topic in (standard, fifo):
        delivered = notify.send(_notifying(world, sns_topic=topic).cfg, world.aws, ev)
        assert [(d.target, d.ok, d.error) for d in delivered] == [(topic, True, "")]
