"""What ``invoke logs`` shows, as pure functions: the query, the lines and their order.

The instances' shipper (``playbooks/roles/base/files/rodeo-logs.py``) sends
each journal entry as a small JSON message (``unit``, ``ident``, ``pid``,
``priority``, ``message``) to the stream named for the instance. ``line_of``
turns one CloudWatch event into a ``LogLine`` with the instance's slot and
version; ``order`` merges events of all streams by time; ``Query.keeps``
applies ``--slot``, ``--instance`` and ``--grep`` (a Python regular
expression searched in the message: the same on AWS and the local stack,
unlike CloudWatch's filter patterns, which moto only partly knows), and keeps
only the app's lines unless ``--all`` (``is_system``: the kernel's, systemd's,
the base image's services' and Rodeo's own).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from toolkit.errors import ConfigError

SLOTS = ("blue", "green")
UNKNOWN = "?"
DURATION_RE = re.compile(r"^(\d+)\s*([smhdw])$")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
INSTANCE_RE = re.compile(r"^i-[0-9a-f]{8,17}$")
# The system's services (fnmatch patterns): systemd's own, Debian's base services, Rodeo's base units. Every other
# service is the app's; a line from no service (the kernel, systemd itself, a session's command) is the system's.
SYSTEM_SERVICES = (
    "systemd-*",
    "user@*",
    "user-runtime-dir@*",
    "getty@*",
    "serial-getty@*",
    "console-getty.service",
    "container-getty@*",
    "modprobe@*",
    "kmod-static-nodes.service",
    "ldconfig.service",
    "keyboard-setup.service",
    "ifup@*",
    "networking.service",
    "ssh.service",
    "sshd.service",
    "cron.service",
    "dbus.service",
    "polkit.service",
    "rsyslog.service",
    "chrony.service",
    "ntp*.service",
    "apt-daily*",
    "dpkg-db-backup.service",
    "fstrim.service",
    "e2scrub*",
    "man-db.service",
    "logrotate.service",
    "unattended-upgrades.service",
    "cloud-*",
    "amazon-ssm-agent.service",
    "snap*",
    "acpid.service",
    "irqbalance.service",
    "haveged.service",
    "dhcpcd.service",
    "rodeo-config.service",
    "rodeo-logs.service",
)
SINCE_HINT = (
    "write a duration like 30s, 10m, 2h or 1d, or a time like 2026-11-27T14:05:00Z (UTC unless it has an offset)"
)


@dataclass(frozen=True)
class Query:
    """Which lines ``invoke logs`` shows: from ``since_ms`` (epoch ms), of a slot, an instance, matching ``grep``."""

    since_ms: int
    slot: str | None = None
    instance: str | None = None
    grep: re.Pattern | None = None
    everything: bool = False  # the system's lines too (--all)

    def keeps(self, line: "LogLine") -> bool:
        """True when ``line`` passes every filter given."""
        return (
            (self.everything or not is_system(line.unit))
            and (self.slot is None or line.slot == self.slot)
            and (self.instance is None or line.instance == self.instance)
            and (self.grep is None or self.grep.search(line.message) is not None)
        )


def is_system(unit: str) -> bool:
    """True for a line of the system's (``LogLine.unit``): from no service, or from one of SYSTEM_SERVICES."""
    return not unit.endswith(".service") or any(fnmatch.fnmatchcase(unit, pattern) for pattern in SYSTEM_SERVICES)


def query(
    since: str,
    slot: str = "",
    instance: str = "",
    grep: str = "",
    now: datetime | None = None,
    everything: bool = False,
) -> Query:
    """Check the flags of ``invoke logs`` and make its Query; ConfigError naming the flag otherwise."""
    if slot and slot not in SLOTS:
        raise ConfigError(f"--slot {slot!r} is not a slot", f"choose one of: {', '.join(SLOTS)}")
    if instance and not INSTANCE_RE.match(instance):
        raise ConfigError(
            f"--instance {instance!r} is not an instance id",
            "write it like i-0abc1234def567890 (invoke status shows the slots)",
        )
    pattern = None
    if grep:
        try:
            pattern = re.compile(grep)
        except re.error as exc:
            raise ConfigError(
                f"--grep {grep!r} is not a regular expression: {exc}",
                "escape special characters with \\ (or quote a plain word)",
            ) from None
    return Query(
        since_ms=parse_since(since, now or datetime.now(timezone.utc)),
        slot=slot or None,
        instance=instance or None,
        grep=pattern,
        everything=everything,
    )


def parse_since(text: str, now: datetime) -> int:
    """``--since``: a duration back from ``now`` (``30s``, ``10m``, ``2h``, ``1d``, ``1w``) or an ISO time; epoch milliseconds.

    An ISO time without an offset is UTC, as the lines show their times.
    """
    text = text.strip()
    match = DURATION_RE.match(text)
    if match:
        start = now - timedelta(seconds=int(match.group(1)) * UNITS[match.group(2)])
    else:
        try:
            start = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ConfigError(f"--since {text!r} is not a duration or a time", SINCE_HINT) from None
        if start.tzinfo is None:
            start = start.replace(tzinfo=timezone.utc)
        if start > now:
            raise ConfigError(f"--since {text!r} is in the future", SINCE_HINT)
    return max(0, int(start.timestamp() * 1000))


@dataclass(frozen=True)
class LogLine:
    """One journal entry of one instance, as ``invoke logs`` shows it."""

    timestamp: int  # epoch milliseconds (the journal's time of the entry)
    instance: str
    slot: str
    version: str
    unit: str  # the systemd unit, or the program's name for entries outside a service
    message: str
    priority: int | None = None
    event_id: str = ""

    @property
    def time(self) -> str:
        """The entry's time, UTC, to the millisecond."""
        return datetime.fromtimestamp(self.timestamp / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

    def to_dict(self) -> dict:
        """One ``--json`` line (``priority`` only when known)."""
        data = dataclasses.asdict(self)
        data.pop("event_id")
        if self.priority is None:
            data.pop("priority")
        return {"time": self.time, **data}

    def text(self) -> str:
        """The line as a person reads it: time, instance, slot, version, unit, message (each line of it prefixed)."""
        prefix = f"{self.time} {self.instance} {self.slot} {self.version} {self.unit}:"
        return "\n".join(f"{prefix} {part}" for part in self.message.split("\n"))


def decode(message: str) -> tuple[str, str, int | None]:
    """``(unit, message, priority)`` of a shipped message; a message not from the shipper is shown as it is."""
    try:
        doc = json.loads(message) if message.startswith("{") else None
    except ValueError:
        doc = None
    if not isinstance(doc, dict) or not isinstance(doc.get("message"), str):
        return "-", message, None
    unit, ident = doc.get("unit"), doc.get("ident")
    # A scope (init.scope: systemd itself, session scopes) says less than the program's name.
    shown = unit if isinstance(unit, str) and unit and not unit.endswith(".scope") else ident or unit or "-"
    priority = doc.get("priority")
    return str(shown), doc["message"], priority if isinstance(priority, int) else None


def line_of(event: dict, sources: dict[str, tuple[str, str]]) -> LogLine:
    """The LogLine of a FilterLogEvents event; ``sources`` maps instance id -> (slot, version), unknown -> ``?``."""
    instance = event.get("logStreamName", UNKNOWN)
    slot, version = sources.get(instance, (UNKNOWN, UNKNOWN))
    unit, message, priority = decode(event.get("message", ""))
    return LogLine(event["timestamp"], instance, slot, version, unit, message, priority, str(event.get("eventId", "")))


def order(events: list[dict]) -> list[dict]:
    """Events of all streams merged by time; a stream's own order is kept for equal times (a stable sort)."""
    return sorted(events, key=lambda e: e["timestamp"])
