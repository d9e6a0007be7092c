"""Tell people what happened: webhooks (Slack-compatible JSON) and an SNS topic.

``send`` is called at the moments a team wants to hear about: a bake done or
failed, a release started, done or rolled back (with the reason), config
vars changed. What is sent is ``message(event)``, a pure function: ``text``
is the line a chat shows, ``rodeo`` the same facts as data for a machine.

A notification never changes the outcome of what it reports: every failure
(a webhook answering 500, timing out, refusing the connection, an SNS error)
becomes a warning line and a ``Delivery`` with ``ok=False``, never an
exception. Webhook URLs carry their secret in the path, so only their scheme
and host are ever shown.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from toolkit import __version__
from toolkit.config import WEBHOOK_ENV_RE, Config
from toolkit.ui import Reporter

KINDS = ("bake.done", "bake.failed", "release.started", "release.done", "release.rolled_back", "config.changed")
# What each kind is called in a message's first words.
ICONS = {
    "bake.done": "✅",
    "bake.failed": "❌",
    "release.started": "🚀",
    "release.done": "✅",
    "release.rolled_back": "↩️",
    "config.changed": "⚙️",
}
# SNS's Publish: a Subject is "ASCII text that begins with a letter, number, or punctuation mark; must not include line
# breaks or control characters; and must be less than 100 characters long".
SUBJECT_LIMIT = 99


@dataclass(frozen=True)
class Event:
    """Something that happened to an app in an environment; ``details`` holds no secret value."""

    kind: str
    app: str
    env: str
    summary: str  # one line a person reads: "release of ami-1 (app 1.2.0) done: green holds all traffic"
    details: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Delivery:
    """How sending to one target went (``target`` is safe to show)."""

    target: str
    ok: bool
    error: str = ""


def event(config: Config, kind: str, summary: str, **details: Any) -> Event:
    """An Event of ``config``'s app and environment (``details`` without None values)."""
    if kind not in KINDS:
        raise ValueError(f"unknown notification kind {kind!r}")
    return Event(kind, config.app, config.env, summary, {k: v for k, v in details.items() if v is not None})


def message(ev: Event) -> dict:
    """The JSON body a webhook gets (and SNS carries): Slack's ``text`` plus the same facts as data."""
    return {
        "text": f"{ICONS[ev.kind]} {ev.app} ({ev.env}): {ev.summary}",
        "rodeo": {"event": ev.kind, "app": ev.app, "env": ev.env, **ev.details},
    }


def subject(ev: Event, text: str) -> str:
    """``text`` as an SNS Subject: printable ASCII on one line, no leading space, under 100 characters (else the kind)."""
    ascii_text = "".join(c if " " <= c <= "~" else " " for c in text.encode("ascii", "ignore").decode())
    return " ".join(ascii_text.split())[:SUBJECT_LIMIT].strip() or ev.kind


def publish_args(topic: str, ev: Event, body: dict, dedup: str) -> dict:
    """SNS Publish's arguments for ``ev``; a ``.fifo`` topic also gets a message group (the app and environment,
    so its events stay in order) and ``dedup`` as the deduplication id (needed unless content-based deduplication is on)."""
    args = {
        "TopicArn": topic,
        "Subject": subject(ev, body["text"]),
        "Message": json.dumps(body),
        "MessageAttributes": {"event": {"DataType": "String", "StringValue": ev.kind}},
    }
    if topic.endswith(".fifo"):
        args.update(MessageGroupId=f"rodeo-{ev.app}-{ev.env}", MessageDeduplicationId=dedup)
    return args


def shown(url: str) -> str:
    """A webhook as messages may show it: scheme and host only (the path is its secret)."""
    if WEBHOOK_ENV_RE.match(url):
        return url
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}/…"


def send(config: Config, aws: Any, ev: Event, reporter: Reporter | None = None) -> list[Delivery]:
    """Send ``ev`` to every target in ``config.notify``; failures are warned about, never raised."""
    notify = config.notify
    if notify is None:
        return []
    body = message(ev)
    out = [_post(hook, body, notify.timeout_seconds) for hook in notify.webhooks]
    if notify.sns_topic:
        out.append(_publish(aws, notify.sns_topic, ev, body))
    for delivery in out:
        if not delivery.ok and reporter is not None:
            reporter.warn(f"notification to {delivery.target} failed: {delivery.error} (nothing else is affected)")
    return out


def _post(hook: str, body: dict, timeout: float) -> Delivery:
    import urllib.error
    import urllib.request  # only when there is a webhook: a bake's cache hit stays quick

    target = shown(hook)
    named = WEBHOOK_ENV_RE.match(hook)
    url = os.environ.get(named.group(1), "") if named else hook
    if named and not url:
        return Delivery(target, False, f"environment variable {named.group(1)} is not set")
    if urlsplit(url).scheme not in ("http", "https"):
        return Delivery(target, False, f"{named.group(1) if named else 'the webhook'} is not an http(s) URL")
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": f"rodeo/{__version__}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            answer.read(65536)
        return Delivery(target, True)
    except urllib.error.HTTPError as exc:
        # Who refused: the webhook's service, or a proxy or gateway in front of it.
        server = (exc.headers.get("Server") or "").strip()[:60] if exc.headers else ""
        return Delivery(target, False, f"it answered HTTP {exc.code}" + (f" (server: {server})" if server else ""))
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return Delivery(target, False, f"no answer ({reason})" if not isinstance(reason, str) else reason)


def _publish(aws: Any, topic: str, ev: Event, body: dict) -> Delivery:
    import uuid

    from toolkit.aws import AWS_ERRORS, explain

    try:
        aws.client("sns").publish(**publish_args(topic, ev, body, uuid.uuid4().hex))
        return Delivery(topic, True)
    except AWS_ERRORS as exc:
        explained = explain(exc)
        return Delivery(topic, False, explained.message if explained else str(exc))
