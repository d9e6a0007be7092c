"""Cron expressions as EC2 Auto Scaling's Recurrence takes them: parsing, names, and when one last fired (tables, no I/O)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from toolkit import cron

UTC = timezone.utc

# (expression, what AWS is sent)
GOOD = [
    ("0 22 * * *", "0 22 * * *"),
    ("0 9 * * MON-FRI", "0 9 * * 1-5"),
    ("0 9 * * mon,wed,fri", "0 9 * * 1,3,5"),
    ("0 9 * * FRI-SUN", "0 9 * * 0,5-6"),
    ("*/15 0-6/2 1,15 JAN-MAR *", "*/15 0-6/2 1,15 1-3 *"),
    ("30 0 1 1,6,12 *", "30 0 1 1,6,12 *"),
    ("0 9 * * 7", "0 9 * * 7"),
    ("  0   9 * *  1-5 ", "0 9 * * 1-5"),
]


@pytest.mark.parametrize("text,sent", GOOD, ids=[g[0] for g in GOOD])
def test_good_expressions_are_sent_as_numbers(text, sent):
    assert cron.parse(text).text == sent


BAD = [
    ("0 9 * *", "has 4 field(s), not 5"),
    ("0 9 * * * *", "has 6 field(s), not 5"),
    ("", "has 0 field(s)"),
    ("60 * * * *", "minute field: 60 is outside 0-59"),
    ("0 24 * * *", "hour field: 24 is outside 0-23"),
    ("0 9 0 * *", "day of month field: 0 is outside 1-31"),
    ("0 9 * 13 *", "month field: 13 is outside 1-12"),
    ("0 9 * * 8", "day of week field: 8 is outside 0-7"),
    ("0 9 * * MOX", "'mox' is not a number or a name (SUN, MON"),
    ("0 9 * JAN-MON *", "'mon' is not a number or a name (JAN"),
    ("0 9-5 * * *", "the range '9-5' runs backwards"),
    ("*/0 * * * *", "step 0 is out of range"),
    ("0 9 ? * *", "is not a number, a range, a list or a step"),
    ("0 9 L * *", "'l' is not a number (no names here)"),
    ("0 9 * * 1#2", "is not a number, a range, a list or a step"),
    ("0 9 * * 1,,2", "is not a number, a range, a list or a step"),
]


@pytest.mark.parametrize("text,message", BAD, ids=[b[0] or "empty" for b in BAD])
def test_bad_expressions_say_which_field(text, message):
    with pytest.raises(cron.CronError) as caught:
        cron.parse(text)
    assert message in str(caught.value)


def at(*args):
    return datetime(*args, tzinfo=UTC)


# (expression, zone, since, now, last fire or None); 2026-11-27 is a Friday, Berlin is UTC+1 in November.
FIRES = [
    (
        "weekday 9:00 Berlin, passed this morning",
        "0 9 * * MON-FRI",
        "Europe/Berlin",
        at(2026, 11, 27, 7),
        at(2026, 11, 27, 8, 30),
        at(2026, 11, 27, 8),
    ),
    ("not yet at 8:59 Berlin", "0 9 * * MON-FRI", "Europe/Berlin", at(2026, 11, 27, 7), at(2026, 11, 27, 7, 59), None),
    (
        "the window starts after it",
        "0 9 * * MON-FRI",
        "Europe/Berlin",
        at(2026, 11, 27, 8, 1),
        at(2026, 11, 27, 8, 30),
        None,
    ),
    (
        "the window ends exactly on it",
        "0 9 * * MON-FRI",
        "Europe/Berlin",
        at(2026, 11, 27, 7),
        at(2026, 11, 27, 8),
        at(2026, 11, 27, 8),
    ),
    (
        "no weekday fire over the weekend",
        "0 9 * * MON-FRI",
        "Europe/Berlin",
        at(2026, 11, 27, 8, 1),
        at(2026, 11, 30, 7, 59),
        None,
    ),
    ("the latest of several", "0 22 * * *", "Etc/UTC", at(2026, 11, 20), at(2026, 11, 27, 12), at(2026, 11, 26, 22)),
    ("summer time shifts it", "0 9 * * *", "Europe/Berlin", at(2026, 7, 1), at(2026, 7, 1, 12), at(2026, 7, 1, 7)),
    (
        "every 15 minutes",
        "*/15 * * * *",
        "Etc/UTC",
        at(2026, 11, 27, 10),
        at(2026, 11, 27, 10, 44),
        at(2026, 11, 27, 10, 30),
    ),
    (
        "day of month or day of week",
        "0 12 1 * MON",
        "Etc/UTC",
        at(2026, 11, 24),
        at(2026, 12, 1, 13),
        at(2026, 12, 1, 12),
    ),
    (
        "day of month or day of week: the Monday",
        "0 12 1 * MON",
        "Etc/UTC",
        at(2026, 11, 24),
        at(2026, 11, 30, 13),
        at(2026, 11, 30, 12),
    ),
    (
        "a star in either day field means both must match",
        "0 12 */2 * MON",
        "Etc/UTC",
        at(2026, 11, 1),
        at(2026, 11, 30, 13),
        at(2026, 11, 23, 12),
    ),
    ("a yearly one months back", "0 0 1 JAN *", "Etc/UTC", at(2026, 6, 1), at(2027, 3, 1), at(2027, 1, 1)),
]


@pytest.mark.parametrize("name,text,zone,since,now,expected", FIRES, ids=[f[0] for f in FIRES])
def test_last_fire(name, text, zone, since, now, expected):
    assert cron.last_fire(cron.parse(text), zone, since, now) == expected


# (name, expression, zone, since, now, every fire in (since, now] in UTC)
ALL_FIRES = [
    ("none in the window", "0 22 * * *", "Etc/UTC", at(2026, 12, 5, 22), at(2026, 12, 6, 21, 59), []),
    (
        "the window's end counts, its start does not",
        "0 22 * * *",
        "Etc/UTC",
        at(2026, 12, 5, 22),
        at(2026, 12, 6, 22),
        [at(2026, 12, 6, 22)],
    ),
    (
        "22:00 in Berlin across the spring change: 21:00 UTC, then 20:00 UTC",
        "0 22 * * *",
        "Europe/Berlin",
        at(2026, 3, 28),
        at(2026, 3, 30),
        [at(2026, 3, 28, 21), at(2026, 3, 29, 20)],
    ),
    (
        "02:30 Berlin, skipped by the spring change, fires once at 03:30 CEST",
        "30 2 * * *",
        "Europe/Berlin",
        at(2026, 3, 28, 12),
        at(2026, 3, 29, 12),
        [at(2026, 3, 29, 1, 30)],
    ),
    (
        "02:30 and 03:30 Berlin on the spring change day are one instant: fired once",
        "30 2,3 * * *",
        "Europe/Berlin",
        at(2026, 3, 28, 12),
        at(2026, 3, 29, 12),
        [at(2026, 3, 29, 1, 30)],
    ),
    (
        "02:30 Berlin, repeated by the autumn change, fires once at its first reading (CEST)",
        "30 2 * * *",
        "Europe/Berlin",
        at(2026, 10, 24, 12),
        at(2026, 10, 25, 12),
        [at(2026, 10, 25, 0, 30)],
    ),
    (
        "every 20 minutes over an hour, in order",
        "*/20 * * * *",
        "Etc/UTC",
        at(2026, 12, 5, 9, 59),
        at(2026, 12, 5, 11),
        [at(2026, 12, 5, 10), at(2026, 12, 5, 10, 20), at(2026, 12, 5, 10, 40), at(2026, 12, 5, 11)],
    ),
]


@pytest.mark.parametrize("name,text,zone,since,now,expected", ALL_FIRES, ids=[f[0] for f in ALL_FIRES])
def test_fire_times(name, text, zone, since, now, expected):
    assert cron.fire_times(cron.parse(text), zone, since, now) == expected
