#!/usr/bin/python3
"""Rodeo's log shipper: this instance's journal to CloudWatch Logs.

Runs as ``rodeo-logs.service`` on every instance of a Rodeo image. It learns
its app and environment from the instance's user data (``{"rodeo": {"app":
..., "env": ...}}``, written by ``invoke release``), and sends every journal
entry (the app's unit and the system's) to the log group
``/rodeo/<app>/<env>``, stream = this instance's id, in batches within
PutLogEvents' limits. Credentials and region come from the metadata service
(the instance role), as for any SDK on EC2.

The journal cursor of the last entry sent is written (atomically) only after
PutLogEvents accepted its batch, and read again at start: a restart or a
stop loses nothing and sends nothing twice. A kill -9 while a batch is in
flight (sent, its cursor not yet written: a few milliseconds) sends that
batch again at the next start (at least once, never lost).

An instance without Rodeo's user data (a build instance, an AMI booted by
hand) has nothing to ship: the shipper says so once and exits 0, and the unit
(Restart=on-failure) stays down until the next boot. An unreachable metadata
service, a missing log group or a failing AWS call is retried with backoff.

Debian's python3-boto3 and python3-systemd only; the pure parts (journal
entry -> log event, batching, cursor file) import neither, so they can be
tested anywhere.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path

GROUP = "/rodeo/{app}/{env}"
NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,38}$")
IMDS = "http://169.254.169.254"
# PutLogEvents' limits: a batch is at most 1,048,576 bytes (each message's UTF-8 bytes + 26), at most
# 10,000 events, in time order, spanning at most 24 hours; one event at most 256 KB.
EVENT_OVERHEAD = 26
MAX_BATCH_BYTES = 1_048_576
MAX_BATCH_EVENTS = 10_000
MAX_SPAN_MS = 24 * 3600 * 1000
MAX_MESSAGE_BYTES = 256 * 1024 - EVENT_OVERHEAD
TRUNCATED = " [truncated]"
LINGER = 0.2  # seconds a short batch waits for more lines: at most ~5 calls a second per instance
IDLE_WAIT = 1.0  # how often an idle loop looks at the stop flag
MAX_BACKOFF = 30.0

log = logging.getLogger("rodeo-logs")


# --- pure parts -------------------------------------------------------------------------


def target(user_data: bytes | None) -> tuple[str, str] | None:
    """``(app, env)`` from Rodeo's user data document, or None when it is absent or not Rodeo's (other keys are ignored)."""
    if not user_data:
        return None
    try:
        doc = json.loads(user_data)
    except ValueError:
        return None
    rodeo = doc.get("rodeo") if isinstance(doc, dict) else None
    if not isinstance(rodeo, dict):
        return None
    app, env = rodeo.get("app"), rodeo.get("env")
    if not (isinstance(app, str) and isinstance(env, str) and NAME_RE.match(app) and NAME_RE.match(env)):
        return None
    return app, env


def group_name(app: str, env: str) -> str:
    """The log group of an app's environment (``toolkit.logs`` names it the same way)."""
    return GROUP.format(app=app, env=env)


def _text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):  # a field given more than once
        return "\n".join(t for t in (_text(v) for v in value) if t is not None)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def timestamp_ms(value) -> int:
    """A journal ``__REALTIME_TIMESTAMP`` (a datetime from python-systemd, or microseconds) in epoch milliseconds."""
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    return int(value) // 1000


def to_event(entry: dict) -> dict | None:
    """The CloudWatch log event for one journal entry, or None for an entry without a message.

    The message is a small JSON object (``unit``, ``ident``, ``pid``,
    ``priority``, ``message``; absent fields left out), so Logs Insights and
    ``invoke logs`` can tell the app's lines from the system's. A message over
    the event size limit is cut, and says so.
    """
    message = _text(entry.get("MESSAGE"))
    if message is None:
        return None
    fields = {
        "unit": _text(entry.get("_SYSTEMD_UNIT")),
        "ident": _text(entry.get("SYSLOG_IDENTIFIER") or entry.get("_COMM")),
        "pid": entry.get("_PID"),
        "priority": entry.get("PRIORITY"),
    }
    doc = {k: v for k, v in fields.items() if v is not None}
    doc["message"] = message
    body = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    if len(body.encode()) > MAX_MESSAGE_BYTES:
        room = (
            MAX_MESSAGE_BYTES
            - len(json.dumps(dict(doc, message=""), ensure_ascii=False, separators=(",", ":")).encode())
            - len(TRUNCATED)
            - 64
        )
        cut = message.encode()[: max(room, 0)].decode("utf-8", errors="ignore")
        while (
            len(json.dumps(dict(doc, message=cut + TRUNCATED), ensure_ascii=False, separators=(",", ":")).encode())
            > MAX_MESSAGE_BYTES
        ):
            cut = cut[: len(cut) * 9 // 10]  # escapes made it longer than its bytes: cut more
        body = json.dumps(dict(doc, message=cut + TRUNCATED), ensure_ascii=False, separators=(",", ":"))
    return {"timestamp": timestamp_ms(entry["__REALTIME_TIMESTAMP"]), "message": body}


class Batch:
    """Log events for one PutLogEvents call, and the journal cursor of the last one.

    ``add`` refuses an event that would break a limit (then send this batch
    and start another). An event older than the one before it (the clock went
    back) takes the previous timestamp, so the batch stays in time order and
    the journal's order is kept.
    """

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.size = 0
        self.cursor: str | None = None
        self.started: float | None = None  # monotonic time of the first add

    def __len__(self) -> int:
        return len(self.events)

    def add(self, event: dict, cursor: str, now: float = 0.0) -> bool:
        """Add ``event`` (read at ``cursor``); False, unchanged, when it does not fit."""
        size = len(event["message"].encode()) + EVENT_OVERHEAD
        stamp = event["timestamp"]
        if self.events:
            stamp = max(stamp, self.events[-1]["timestamp"])
            if (
                len(self.events) >= MAX_BATCH_EVENTS
                or self.size + size > MAX_BATCH_BYTES
                or stamp - self.events[0]["timestamp"] > MAX_SPAN_MS
            ):
                return False
        else:
            self.started = now
        self.events.append({"timestamp": stamp, "message": event["message"]})
        self.size += size
        self.cursor = cursor
        return True


def read_cursor(path: Path, instance_id: str) -> str | None:
    """The cursor saved for ``instance_id``; None without one (or one another instance left in its image)."""
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict) or saved.get("instance") != instance_id or not isinstance(saved.get("cursor"), str):
        return None
    return saved["cursor"]


def write_cursor(path: Path, instance_id: str, cursor: str) -> None:
    """Save ``cursor`` so that a crash leaves either the old file or the new one, never half of one."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as out:
        out.write(json.dumps({"instance": instance_id, "cursor": cursor}))
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


# --- the instance: metadata service, journal, CloudWatch -----------------------------------


class Imds:
    """The instance metadata service, IMDSv2 (a session token on every request)."""

    def __init__(self, base: str = IMDS, timeout: float = 2.0) -> None:
        self.base, self.timeout, self.token = base, timeout, None

    def _token(self) -> str:
        request = urllib.request.Request(
            f"{self.base}/latest/api/token", method="PUT", headers={"X-aws-ec2-metadata-token-ttl-seconds": "21600"}
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as reply:
            return reply.read().decode()

    def get(self, path: str) -> bytes | None:
        """The document at ``path`` (``meta-data/instance-id``), None when there is none (404)."""
        for _ in range(2):
            self.token = self.token or self._token()
            request = urllib.request.Request(
                f"{self.base}/latest/{path}", headers={"X-aws-ec2-metadata-token": self.token}
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as reply:
                    return reply.read()
            except urllib.error.HTTPError as exc:
                if exc.code == 404:
                    return None
                if exc.code != 401:
                    raise
                self.token = None  # expired: a new one, once
        raise OSError("the metadata service refused a fresh token")


class Shipper:
    """Reads the journal from the saved cursor and sends it to one log stream."""

    def __init__(self, logs, group: str, stream: str, cursor_file: Path) -> None:
        self.logs, self.group, self.stream, self.cursor_file = logs, group, stream, cursor_file
        self.stopping = False
        self.batch = Batch()

    def run(self, reader) -> None:
        self.ensure_stream()
        cursor = read_cursor(self.cursor_file, self.stream)
        if cursor:
            reader.seek_cursor(cursor)
            first = reader.get_next()
            if first and not reader.test_cursor(
                cursor
            ):  # that entry is gone (a volatile journal): start at the next one
                self.take(first)
        else:
            start_of_this_boot(reader)
        log.info(
            "shipping the journal to %s, stream %s (%s)",
            self.group,
            self.stream,
            "from the saved cursor" if cursor else "from this boot's start",
        )
        while not self.stopping:
            entry = reader.get_next()
            if entry:
                self.take(entry)
            elif self.batch and time.monotonic() - self.batch.started >= LINGER:
                self.send()
            else:
                try:
                    reader.wait(LINGER if self.batch else IDLE_WAIT)
                except InterruptedError:  # a signal: the loop looks at the stop flag
                    pass
        if self.batch:
            self.send()

    def take(self, entry: dict) -> None:
        event = to_event(entry)
        if event is None:
            return
        cursor = entry["__CURSOR"]
        if not self.batch.add(event, cursor, time.monotonic()):
            self.send()
            self.batch.add(event, cursor, time.monotonic())

    def send(self) -> None:
        """PutLogEvents until it is accepted, then save the cursor; on stop, give up without saving (sent again next start)."""
        import botocore.exceptions

        batch, delay = self.batch, 1.0
        while True:
            try:
                reply = self.logs.put_log_events(
                    logGroupName=self.group, logStreamName=self.stream, logEvents=batch.events
                )
                break
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
                if _code(exc) == "ResourceNotFoundException":
                    self.ensure_stream()
                    if self.stopping:
                        return
                    continue
                log.warning("PutLogEvents failed (%s); again in %.0fs", exc, delay)
                if nap(delay, lambda: self.stopping):
                    return
                delay = min(delay * 2, MAX_BACKOFF)
        rejected = reply.get("rejectedLogEventsInfo")
        if rejected:
            log.warning("CloudWatch rejected part of a batch of %d (too old or too new): %s", len(batch), rejected)
        write_cursor(self.cursor_file, self.stream, batch.cursor)
        self.batch = Batch()

    def ensure_stream(self) -> None:
        """Create this instance's stream; wait (with backoff) while the log group is missing or AWS fails."""
        import botocore.exceptions

        delay, said = 1.0, False
        while not self.stopping:
            try:
                self.logs.create_log_stream(logGroupName=self.group, logStreamName=self.stream)
                return
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
                code = _code(exc)
                if code == "ResourceAlreadyExistsException":
                    return
                if not said:
                    why = (
                        f"log group {self.group} does not exist (run 'invoke setup')"
                        if code == "ResourceNotFoundException"
                        else str(exc)
                    )
                    log.warning("cannot create log stream %s: %s; trying again", self.stream, why)
                    said = True
            if nap(delay, lambda: self.stopping):
                return
            delay = min(delay * 2, MAX_BACKOFF)


def start_of_this_boot(reader) -> None:
    """Put ``reader`` before this boot's first entry, and keep it to this boot's entries.

    The boot is the newest entry's, not ``this_boot()``'s: under systemd-nspawn
    (the local stack) a sandboxed service reads the host's boot id, not the
    container's. An image's journal from before this instance (its build
    instance's) is not this instance's to ship.
    """
    reader.seek_tail()
    newest = reader.get_previous()
    boot = newest.get("_BOOT_ID") if newest else None
    if boot is not None:
        reader.add_match(_BOOT_ID=getattr(boot, "hex", str(boot)))
    reader.seek_head()


def nap(seconds: float, stopping) -> bool:
    """Sleep up to ``seconds``, waking early when ``stopping()``; True when asked to stop."""
    end = time.monotonic() + seconds
    while not stopping() and time.monotonic() < end:
        time.sleep(max(0.0, min(0.2, end - time.monotonic())))
    return stopping()


def _code(exc: BaseException) -> str:
    return getattr(exc, "response", {}).get("Error", {}).get("Code", "")


def _identity(imds: Imds, stopping) -> tuple[str, str, bytes | None] | None:
    """``(instance id, region, user data)`` from the metadata service, retried with backoff while it is unreachable."""
    delay, said = 1.0, False
    while not stopping():
        try:
            instance = imds.get("meta-data/instance-id")
            region = imds.get("meta-data/placement/region")
            if instance and region:
                return instance.decode(), region.decode(), imds.get("user-data")
            why = "it has no instance id or region"
        except OSError as exc:
            why = str(exc)
        if not said:
            log.warning("metadata service not answering (%s); trying again", why)
            said = True
        nap(delay, stopping)
        delay = min(delay * 2, MAX_BACKOFF)
    return None


def main() -> int:
    logging.basicConfig(
        level=logging.WARNING, format="%(message)s", stream=sys.stderr
    )  # boto's own chatter: warnings only
    log.setLevel(logging.INFO)
    shipper: Shipper | None = None
    stop = {"asked": False}

    def on_signal(signum, frame):
        stop["asked"] = True
        if shipper is not None:
            shipper.stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    found = _identity(Imds(), lambda: stop["asked"])
    if found is None:
        return 0
    instance, region, user_data = found
    where = target(user_data)
    if where is None:
        log.info(
            'this instance has no Rodeo user data ({"rodeo": {"app", "env"}}): nothing to ship until the next boot'
        )
        return 0
    import boto3
    import botocore.config
    from systemd import journal

    # Debian 12's botocore (1.29) predates AWS_ENDPOINT_URL: honour it here, as newer SDKs do.
    logs = boto3.session.Session(region_name=region).client(
        "logs",
        endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
        config=botocore.config.Config(
            retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=20
        ),
    )
    state = Path(os.environ.get("STATE_DIRECTORY", "/var/lib/rodeo-logs").split(":")[0])
    state.mkdir(parents=True, exist_ok=True)
    shipper = Shipper(logs, group_name(*where), instance, state / "cursor")
    shipper.stopping = stop["asked"]
    shipper.run(journal.Reader())
    return 0


if __name__ == "__main__":
    sys.exit(main())
