"""Cron expressions as EC2 Auto Scaling's ``Recurrence`` takes them, and when one last fired.

Five fields, ``minute hour day-of-month month day-of-week``, in the Unix
crontab format AWS documents (crontab.org): ``*``, numbers, ranges ``1-5``,
lists ``1,3``, steps ``*/15`` or ``0-30/10``, and the three-letter names of
months (``JAN``) and days (``MON``; 0 and 7 are Sunday). Names are turned
into numbers before anything is sent to AWS (``Cron.text``), so the
expression AWS stores is plain numbers whatever its parser makes of names.
When both day fields are restricted, a day matching either one fires (cron's
rule). Pure: no clock, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

# (name, lowest, highest, names) per field, in order.
MONTHS = {
    m: i + 1 for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))
}
DAYS = {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
FIELDS = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, MONTHS),
    ("day of week", 0, 7, DAYS),
)
# How far back ``last_fire`` looks: a yearly schedule still counts.
LOOK_BACK_DAYS = 400

_PART = re.compile(r"^(?P<range>\*|[0-9a-z]+(?:-[0-9a-z]+)?)(?:/(?P<step>[0-9]+))?$")


class CronError(ValueError):
    """The expression is not one EC2 Auto Scaling accepts; the message says which field and why."""


@dataclass(frozen=True)
class Cron:
    """A parsed expression: the values each field matches, and ``text`` as sent to AWS."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday (7 is folded into 0)
    any_day: bool  # day of month is '*...': only the day of week restricts days
    any_weekday: bool

    def fires_on(self, day: date) -> bool:
        """True when the expression fires on some minute of ``day``."""
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = (day.isoweekday() % 7) in self.weekdays
        return (dom and dow) if (self.any_day or self.any_weekday) else (dom or dow)


def parse(text: str) -> Cron:
    """Parse ``text``; CronError naming the field and what is wrong."""
    fields = str(text).split()
    if len(fields) != 5:
        raise CronError(f"{text!r} has {len(fields)} field(s), not 5 (minute hour day-of-month month day-of-week)")
    values, shown = [], []
    for raw, (name, low, high, names) in zip(fields, FIELDS):
        found, normal = _field(raw.lower(), name, low, high, names)
        values.append(found)
        shown.append(normal)
    weekdays = frozenset(0 if d == 7 else d for d in values[4])
    return Cron(
        " ".join(shown),
        values[0],
        values[1],
        values[2],
        values[3],
        weekdays,
        fields[2].startswith("*"),
        fields[4].startswith("*"),
    )


def _field(raw: str, name: str, low: int, high: int, names: dict[str, int]) -> tuple[frozenset[int], str]:
    """The values of one field, and the field as sent to AWS (names turned into numbers)."""
    found: set[int] = set()
    for part in raw.split(","):
        match = _PART.match(part)
        if not match:
            raise CronError(f"{name} field {raw!r}: {part!r} is not a number, a range, a list or a step")
        if match["range"] == "*":
            start, end = low, high
        else:
            ends = [_value(v, name, low, high, names) for v in match["range"].split("-")]
            start, end = ends[0], ends[-1]
            if names is DAYS and match["range"].endswith("sun") and start > 0:
                end = 7  # FRI-SUN: Sunday as the week's end
            if start > end:
                raise CronError(f"{name} field {raw!r}: the range {match['range']!r} runs backwards")
        step = int(match["step"]) if match["step"] else 1
        if step < 1 or step > high - low + 1:
            raise CronError(f"{name} field {raw!r}: step {step} is out of range")
        found.update(range(start, end + 1, step))
    if names and re.search(r"[a-z]", raw):
        return frozenset(found), _compact(found if name != "day of week" else {0 if d == 7 else d for d in found})
    return frozenset(found), raw


def _value(word: str, name: str, low: int, high: int, names: dict[str, int]) -> int:
    if word.isdigit():
        number = int(word)
    elif word in names:
        number = names[word]
    else:
        allowed = f"or a name ({', '.join(n.upper() for n in names)})" if names else "(no names here)"
        raise CronError(f"{name} field: {word!r} is not a number {allowed}")
    if not low <= number <= high:
        raise CronError(f"{name} field: {number} is outside {low}-{high}")
    return number


def _compact(values: set[int]) -> str:
    """``{1,2,3,4,5}`` -> ``1-5``; ``{0,5,6}`` -> ``0,5-6``."""
    runs: list[list[int]] = []
    for v in sorted(values):
        if runs and v == runs[-1][-1] + 1:
            runs[-1].append(v)
        else:
            runs.append([v])
    return ",".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


def overlap(a: Cron, b: Cron) -> bool:
    """True when ``a`` and ``b`` fire at the same minute on some day (in the same time zone).

    Seven years of days hold every weekday of every date, so they decide it.
    """
    if not (a.minutes & b.minutes and a.hours & b.hours and a.months & b.months):
        return False
    day = date(2024, 1, 1)
    while day.year < 2031:
        if a.fires_on(day) and b.fires_on(day):
            return True
        day += timedelta(days=1)
    return False


def fires(c: Cron) -> bool:
    """True when ``c`` fires at all (``0 9 31 2 *``, February 31st, never does)."""
    return overlap(c, c)


def last_fire(cron: Cron, zone: str, since: datetime, now: datetime) -> datetime | None:
    """The latest time in ``(since, now]`` (aware datetimes) at which ``cron`` fires in ``zone``, in UTC; None if none.

    Looks back at most ``LOOK_BACK_DAYS`` days. A local time that a daylight
    saving change skips or repeats is taken at its first reading.
    """
    tz = ZoneInfo(zone)
    day, first = now.astimezone(tz).date(), since.astimezone(tz).date()
    for _ in range(LOOK_BACK_DAYS):
        if day < first:
            return None
        if cron.fires_on(day):
            for hour in sorted(cron.hours, reverse=True):
                for minute in sorted(cron.minutes, reverse=True):
                    at = datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz).astimezone(timezone.utc)
                    if at <= since:
                        return None  # times only get earlier from here
                    if at <= now:
                        return at
        day -= timedelta(days=1)
    return None


def fire_times(cron: Cron, zone: str, since: datetime, now: datetime) -> list[datetime]:
    """Every time in ``(since, now]`` (aware datetimes) at which ``cron`` fires in ``zone``, in UTC, earliest first.

    Looks at most ``LOOK_BACK_DAYS`` days back from ``now``. A local time that
    a daylight saving change skips or repeats is taken at its first reading
    (as ``last_fire``), so a time the change skips fires once, an hour late
    on the wall clock, and a repeated one fires once.
    """
    tz = ZoneInfo(zone)
    day, last = since.astimezone(tz).date(), now.astimezone(tz).date()
    day = max(day, last - timedelta(days=LOOK_BACK_DAYS))
    found: set[datetime] = set()
    while day <= last:
        if cron.fires_on(day):
            for hour in cron.hours:
                for minute in cron.minutes:
                    at = datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz).astimezone(timezone.utc)
                    if since < at <= now:
                        found.add(at)
        day += timedelta(days=1)
    return sorted(found)
