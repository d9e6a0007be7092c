"""The staging example inventory names Debian's own AMIs (issue 19, item 3)."""

from __future__ import annotations

import fnmatch
from pathlib import Path

from toolkit import config

ROOT = Path(__file__).resolve().parents[3]
# The account Debian publishes its official AMIs from (the Debian wiki's Cloud/AmazonEC2Image pages;
# the same owner in every public Terraform/Packer filter for "debian-12-amd64-*").
DEBIAN = "136693071363"
# Debian's names: debian-<release>-<arch>-<date>-<build>; backports kernels are debian-12-backports-amd64-...
OFFICIAL = ("debian-12-amd64-20240717-1811", "debian-12-amd64-20231013-1532")
NOT_WANTED = (
    "debian-12-backports-amd64-20240717-1811",
    "debian-12-arm64-20240717-1811",
    "debian-11-amd64-20240717-1811",
)


def test_staging_bakes_from_debians_account():
    base = config.load("staging", ROOT).image("base")
    assert base.source_ami == config.AmiFilter(name="debian-12-amd64-*", owners=(DEBIAN,))


def test_the_name_filter_matches_debian_12s_official_amd64_names_only():
    pattern = config.load("staging", ROOT).image("base").source_ami.name
    assert [n for n in OFFICIAL + NOT_WANTED if fnmatch.fnmatchcase(n, pattern)] == list(OFFICIAL)
