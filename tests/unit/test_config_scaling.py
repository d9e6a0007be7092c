"""``scaling:`` in rodeo.yml: every mistake is one ConfigError naming the file, the key and the fix (tables, no I/O but the file)."""

from __future__ import annotations

import pytest

from tests.unit.test_config import GOOD, project
from toolkit import config
from toolkit.errors import ConfigError

SCALING = """
scaling:
  time_zone: Europe/Berlin
  schedules:
    - {name: night, cron: "0 22 * * *", min: 2, max: 4, desired: 2}
    - {name: peak, cron: "0 9 * * MON-FRI", min: 6, max: 10, desired: 6}
  target_tracking:
    - {name: cpu, metric: cpu, target: 50}
    - {name: requests, metric: requests_per_target, target: 1000}
"""


def test_a_good_scaling_section_gives_typed_values(tmp_path):
    cfg = config.load("dev", project(tmp_path, GOOD + SCALING))
    assert cfg.scaling.time_zone == "Europe/Berlin"
    assert cfg.scaling.schedules[1] == config.Schedule(name="peak", cron="0 9 * * MON-FRI", min=6, max=10, desired=6)
    assert [t.metric for t in cfg.scaling.target_tracking] == ["cpu", "requests_per_target"]


def test_scaling_is_optional_and_defaults_to_utc(tmp_path):
    assert config.load("dev", project(tmp_path, GOOD)).scaling is None
    only = GOOD + "scaling:\n  schedules: [{name: night, cron: '0 22 * * *', desired: 2}]\n"
    assert config.load("dev", project(tmp_path / "b", only)).scaling.time_zone == "Etc/UTC"


BAD = [
    # (replace in SCALING, words of the message, words of the hint)
    (
        ("Europe/Berlin", "Europe/Berlni"),
        "scaling.time_zone: 'Europe/Berlni' is not a known time zone",
        "did you mean 'Europe/Berlin'",
    ),
    (("Europe/Berlin", "Mars/Olympus"), "'Mars/Olympus' is not a known time zone", "IANA"),
    (("Europe/Berlin", "../../etc/passwd"), "'../../etc/passwd' is not a known time zone", ""),
    (
        ("min: 2, max: 4, desired: 2}", "min: 2, max: 4, desired: 2, time_zone: Berlin}"),
        "scaling.schedules[0].time_zone: 'Berlin' is not a known time zone",
        "",
    ),
    (("0 22 * * *", "0 22 * *"), "scaling.schedules[0].cron: '0 22 * *' has 4 field(s), not 5", "0 9 * * MON-FRI"),
    (
        ("0 22 * * *", "0 25 * * *"),
        "scaling.schedules[0].cron: hour field: 25 is outside 0-23",
        "minute hour day-of-month",
    ),
    (
        ("0 9 * * MON-FRI", "0 9 * * MON-FRY"),
        "scaling.schedules[1].cron: day of week field: 'fry' is not a number or a name",
        "",
    ),
    (("0 9 * * MON-FRI", "0 9 ? * MON-FRI"), "is not a number, a range, a list or a step", ""),
    (("0 22 * * *", "0 9 31 2 *"), "scaling.schedules[0].cron: '0 9 31 2 *' never fires", ""),
    (
        ("0 22 * * *", "0 9 * * *"),
        "scaling.schedules[1].cron: 'peak' can fire at the same minute as 'night'",
        "move one by a minute",
    ),
    (
        ("min: 6, max: 10, desired: 6", "min: 6, max: 10, desired: 12"),
        "scaling.schedules[1]: need min <= desired <= max, got min 6, desired 12, max 10",
        "",
    ),
    (("min: 6, max: 10, desired: 6", "min: 6, max: 4"), "need min <= desired <= max, got min 6, max 4", ""),
    (
        ("min: 2, max: 4, desired: 2", "min: 1, max: 4, desired: 1"),
        "scaling.schedules[0]: min 1, desired 1 is below release.capacity.min (2)",
        "health gate",
    ),
    (
        ("min: 2, max: 4, desired: 2", "time_zone: Etc/UTC"),
        "scaling.schedules[0]: sets none of min, max and desired",
        "",
    ),
    (
        ("min: 2, max: 4, desired: 2", "min: 2, maximum: 4, desired: 2"),
        "scaling.schedules[0].maximum: unknown key",
        "did you mean 'max'",
    ),
    (
        ("min: 2, max: 4, desired: 2", "min: two, max: 4, desired: 2"),
        "scaling.schedules[0].min: expected a whole number",
        "",
    ),
    (
        ('{name: night, cron: "0 22 * * *",', '{cron: "0 22 * * *",'),
        "scaling.schedules[0].name: required key is missing",
        "",
    ),
    (("name: peak", "name: night"), "scaling.schedules[1].name: 'night' is also scaling.schedules[0]", "its own name"),
    (("name: cpu", "name: night"), "scaling.target_tracking[0].name: 'night' is also scaling.schedules[0]", ""),
    (("name: peak", "name: Peak_Hours"), "scaling.schedules[1].name: 'Peak_Hours' is not a valid name", "rodeo-<name>"),
    (("metric: cpu,", "metric: cpuu,"), "scaling.target_tracking[0].metric: 'cpuu' is not known", "did you mean 'cpu'"),
    (("metric: cpu,", "metric: memory,"), "'memory' is not known", "cpu, requests_per_target"),
    (("target: 50", "target: 0"), "scaling.target_tracking[0].target: 0 is out of range for cpu", "1 to 100"),
    (("target: 50", "target: 101"), "target: 101 is out of range for cpu", ""),
    (
        ("target: 1000", "target: -5"),
        "scaling.target_tracking[1].target: -5 is out of range for requests_per_target",
        "at least 1",
    ),
    (("target: 50", "target: 50.5"), "scaling.target_tracking[0].target: expected a whole number", ""),
    (("  time_zone", "  timezone"), "scaling.timezone: unknown key", "did you mean 'time_zone'"),
]


@pytest.mark.parametrize("change,message,hint", BAD, ids=[b[1][:50] for b in BAD])
def test_scaling_mistakes_name_the_file_and_key(tmp_path, change, message, hint):
    old, new = change
    assert old in SCALING, old
    root = project(tmp_path, GOOD + SCALING.replace(old, new, 1))
    with pytest.raises(ConfigError) as err:
        config.load("dev", root)
    assert err.value.message.startswith("inventories/dev/rodeo.yml: "), err.value.message
    assert message in err.value.message, err.value.message
    assert hint in err.value.hint


def test_scaling_needs_a_release(tmp_path):
    text = GOOD.split("release:")[0] + "scaling:\n  schedules: [{name: night, cron: '0 22 * * *', desired: 2}]\n"
    with pytest.raises(ConfigError, match="scaling: needs a release: section"):
        config.load("dev", project(tmp_path, text))
