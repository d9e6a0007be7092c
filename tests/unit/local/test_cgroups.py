"""Where an instance's own cgroup goes: the hierarchies systemd tracks processes in, and this process's place there."""

from __future__ import annotations

import pytest

from toolkit.local.cgroups import hierarchies, own_path

HYBRID = """\
30 25 0:26 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
32 30 0:28 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
33 30 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
"""
UNIFIED = "29 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"
TABLE = "9:name=systemd:/supervisor\n4:memory:/process_api/x\n1:cpu:/\n0::/system.slice/ci.service\n"


@pytest.mark.parametrize(
    "mountinfo,expected",
    [
        (HYBRID, [("", "/sys/fs/cgroup/unified", "/"), ("name=systemd", "/sys/fs/cgroup/systemd", "/")]),
        (UNIFIED, [("", "/sys/fs/cgroup", "/")]),
        ("33 30 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n", []),  # no hierarchy systemd uses
    ],
)
def test_the_hierarchies_systemd_tracks_processes_in(mountinfo, expected):
    assert hierarchies(mountinfo) == expected


@pytest.mark.parametrize(
    "key,expected",
    [("", "/system.slice/ci.service"), ("name=systemd", "/supervisor"), ("name=other", None)],
)
def test_this_process_s_place_in_a_hierarchy(key, expected):
    assert own_path(TABLE, key) == expected
