"""The instances' CPUUtilization from their cgroups (toolkit.local.cpu): parsing, percentages, datums, periods."""

from __future__ import annotations

import pytest

from toolkit.local import cpu

STAT = "usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\n"


def test_usage_is_read_from_the_first_folder_with_a_cpu_stat(tmp_path):
    legacy, unified = tmp_path / "systemd", tmp_path / "unified"
    legacy.mkdir()
    unified.mkdir()
    (unified / "cpu.stat").write_text(STAT)
    assert cpu.usage_of(STAT) == 1_500_000 and cpu.usage_of("user_usec 3\n") is None
    assert cpu.read_usage([legacy, unified]) == 1_500_000
    assert cpu.read_usage([legacy]) is None


@pytest.mark.parametrize(
    "used, seconds, vcpus, expected",
    [
        (1_000_000, 2.0, 1, 50.0),  # half a core
        (1_000_000, 2.0, 2, 25.0),  # of two vCPUs
        (9_000_000, 2.0, 2, 100.0),  # more than the type has: at most 100
        (1_000_000, 0.0, 1, 0.0),  # no time
        (-5, 2.0, 1, 0.0),
    ],
)
def test_percent_of_the_types_vcpus(used, seconds, vcpus, expected):
    assert cpu.percent(used, seconds, vcpus) == expected


def test_datums_per_instance_and_the_groups_average():
    found = cpu.datums({"i-1": 20.0, "i-2": 60.0, "i-3": 10.0}, {"i-1": "web-blue", "i-2": "web-blue"})
    assert [(d["Dimensions"][0]["Value"], d["Value"], d["Unit"]) for d in found] == [
        ("i-1", 20.0, "Percent"),
        ("i-2", 60.0, "Percent"),
        ("i-3", 10.0, "Percent"),
        ("web-blue", 40.0, "Percent"),
    ]
    assert {d["MetricName"] for d in found} == {"CPUUtilization"}


def test_an_instance_counts_from_its_second_reading_and_leaves_with_its_instance():
    meter = cpu.Meter(period=5.0)
    assert not meter.due(100.0)  # starts the first period
    assert not meter.due(104.9) and meter.due(105.0)
    assert meter.step(105.0, {"i-1": 1_000_000}, {"i-1": 1}) == {}  # first reading: no period yet
    assert meter.step(110.0, {"i-1": 3_500_000, "i-2": 7}, {"i-1": 1, "i-2": 1}) == {"i-1": 50.0}
    assert meter.step(115.0, {"i-2": 2_500_007}, {"i-2": 1}) == {"i-2": 50.0}
    assert set(meter.last) == {"i-2"}
