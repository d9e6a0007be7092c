"""A review app's name from a ref, and the names of its resources, within AWS's limits: tables."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from toolkit import config
from toolkit.errors import ConfigError, ReviewError
from toolkit.local.awsrules import rule_refusal
from toolkit.review.names import NAME_MAX, PRIORITIES, Names, check_name, name_for, names_of, priority_for

ROOT = Path(__file__).resolve().parents[3]
TARGET_GROUP = re.compile(r"^(?!.*--)(?!-)[A-Za-z0-9-]{1,32}(?<!-)$")  # CreateTargetGroup's Name


@pytest.mark.parametrize(
    "ref,name",
    [
        ("main", "main"),
        ("feature/Login_page", "feature-login-page"),
        ("refs/heads/fix/bug-1", "fix-bug-1"),
        ("origin/release-2.1", "release-2-1"),
        ("--odd--", "odd"),
        ("Ünïcode/ß", "n-code"),
        ("feature/a-very-long-branch-name-indeed", "feature-a-ver-315ed9"),
    ],
)
def test_a_ref_gives_a_name(ref, name):
    assert name_for(ref) == name
    assert check_name(name) == name and len(name) <= NAME_MAX


def test_two_long_refs_with_the_same_start_get_different_names():
    one, two = name_for("feature/a-very-long-branch-name-1"), name_for("feature/a-very-long-branch-name-2")
    assert one != two and one[:12] == two[:12]


@pytest.mark.parametrize("ref", ["///", "--", "ß"])
def test_a_ref_with_nothing_to_name_it_asks_for_a_name(ref):
    with pytest.raises(ConfigError, match="gives no review app name") as err:
        name_for(ref)
    assert "--name" in err.value.hint


@pytest.mark.parametrize("name", ["", "-a", "a-", "a--b", "A", "a_b", "a" * 21, "a.b"])
def test_names_that_would_not_fit_are_refused(name):
    with pytest.raises(ConfigError, match="is not a review app name"):
        check_name(name)


@pytest.mark.parametrize("name", ["a", "pr-42", "a" * NAME_MAX, "x-" * 9 + "yz"])
def test_every_resource_name_fits_awss_rules(name):
    names = Names("a" * 39, "e" * 39, name, "review.staging.example.com")
    assert TARGET_GROUP.match(names.target_group), names.target_group
    assert len(names.group) <= 128  # launch template (the group allows 255)
    assert rule_refusal(PRIORITIES[-1], [{"Field": "host-header", "Values": [names.host]}]) is None
    assert len(names.host) <= 128


def test_target_groups_of_two_environments_differ_and_names_come_from_rodeo_yml():
    local = names_of(config.load("local", ROOT), "pr-1")
    assert local.host == "pr-1.review.localhost" and local.group == "rodeo-web-local-review-pr-1"
    assert local.parameter_path == "/rodeo/web/local/review/pr-1/"
    staging = names_of(config.load("staging", ROOT), "pr-1")
    assert staging.target_group != local.target_group and staging.host == "pr-1.review.staging.example.com"


def test_priority_is_stable_and_skips_taken_ones():
    first = priority_for("pr-1", set())
    assert first in PRIORITIES and priority_for("pr-1", {1, 2, 3}) == first
    assert priority_for("pr-1", {first}) == (first + 1 if first < PRIORITIES[-1] else PRIORITIES[0])
    with pytest.raises(ReviewError, match="every listener rule priority"):
        priority_for("pr-1", frozenset(PRIORITIES))
