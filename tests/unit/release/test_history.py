"""``invoke releases`` and ``rollback --to`` as tables: ledger entries in, numbered runs and the chosen release out (no AWS)."""

from __future__ import annotations

import pytest

from toolkit.errors import ConfigError, ReleaseError
from toolkit.release.history import find, history, number, run_of, seconds

A, B = "ami-aaaaaaaa", "ami-bbbbbbbb"
T0, T1 = "2026-12-05T10:00:00.000+00:00", "2026-12-05T10:00:41.500+00:00"


def entry(n, outcome, kind="release", ami=B, config=2, **kw):
    return {
        "number": n,
        "kind": kind,
        "outcome": outcome,
        "to_ami": ami,
        "config_version": config,
        "started_at": T0,
        "ended_at": T1,
        **kw,
    }


LEDGER = [
    entry(
        4,
        "restored",
        "rollback",
        ami=A,
        config=3,
        restores=1,
        aws_caller="arn:aws:iam::123456789012:user/ann",
        git_author="Ann <ann@example.com>",
    ),
    entry(3, "rolled_back", reason="alarm(s) in ALARM: web-5xx (while watching)"),
    entry(2, "interrupted", ended_at=None),
    entry(1, "released", ami=A, config=1, app_version="1.2.0", by="ann@laptop"),
    {"kind": "release", "outcome": "released", "to_ami": A, "started_at": T0},  # recorded before numbers
]

LINES = [
    (
        0,
        "   v4  2026-12-05 10:00:00  rolled back to v1 ami-aaaaaaaa (config v3)  42s  by arn:aws:iam::123456789012:user/ann (Ann <ann@example.com>)",
    ),
    (
        1,
        "   v3  2026-12-05 10:00:00  failed, undone   ami-bbbbbbbb (config v2)  42s  by ?: alarm(s) in ALARM: web-5xx (while watching)",
    ),
    (2, "   v2  2026-12-05 10:00:00  interrupted      ami-bbbbbbbb (config v2)  by ?"),
    (3, "   v1  2026-12-05 10:00:00  released         ami-aaaaaaaa (app 1.2.0, config v1)  42s  by ann@laptop"),
    (4, "    -  2026-12-05 10:00:00  released         ami-aaaaaaaa (config v0)  by ?"),
]


@pytest.mark.parametrize("index,line", LINES, ids=[f"row {i}" for i, _ in LINES])
def test_lines(index, line):
    shown = history("web", "prod", LEDGER)
    assert shown.lines()[0] == "releases of web/prod, newest first"
    assert shown.lines()[index + 1] == line


def test_json_keeps_the_outcome_names_and_facts():
    runs = history("web", "prod", LEDGER).to_dict()["releases"]
    assert [(r["number"], r["kind"], r["outcome"], r["seconds"]) for r in runs] == [
        (4, "rollback", "restored", 41.5),
        (3, "release", "rolled_back", 41.5),
        (2, "release", "interrupted", None),
        (1, "release", "released", 41.5),
        (None, "release", "released", None),
    ]
    assert (runs[0]["restores"], runs[0]["aws_caller"], runs[0]["git_author"]) == (
        1,
        "arn:aws:iam::123456789012:user/ann",
        "Ann <ann@example.com>",
    )


def test_no_release_yet():
    assert history("web", "prod", []).lines() == ["no releases of web/prod yet: 'invoke deploy' makes v1"]


@pytest.mark.parametrize("n,ami", [(1, A), (4, A)])
def test_find_a_release_that_served(n, ami):
    assert find(LEDGER, n)["to_ami"] == ami


@pytest.mark.parametrize(
    "n,message",
    [
        (9, "no release v9 is recorded"),
        (
            3,
            "release v3 never served all the traffic (it ended failed, undone), so there is nothing known-good to restore",
        ),
        (
            2,
            "release v2 never served all the traffic (it ended interrupted), so there is nothing known-good to restore",
        ),
    ],
)
def test_find_refuses(n, message):
    with pytest.raises(ReleaseError) as refused:
        find(LEDGER, n)
    assert refused.value.message == message
    assert refused.value.hint.startswith("these served and may be restored: v4, v1")


@pytest.mark.parametrize("word,n", [("v7", 7), ("7", 7), (" V12 ", 12)])
def test_number(word, n):
    assert number(word) == n


@pytest.mark.parametrize("word", ["v0", "seven", "v-1", "", "v"])
def test_number_refuses(word):
    with pytest.raises(ConfigError, match="is not a release number"):
        number(word)


def test_seconds():
    assert (seconds(T0, T1), seconds(T0, None), seconds(None, T1)) == (41.5, None, None)


def test_a_promoted_release_says_where_it_came_from():
    origin = {"env": "staging", "region": "eu-west-1", "account": "1", "ami": A, "number": 7, "config_version": 2}
    shown = history("web", "prod", [entry(5, "released", ami=B, promoted_from=origin, by="ann@ci")])
    assert shown.lines()[1] == (
        "   v5  2026-12-05 10:00:00  released         ami-bbbbbbbb (config v2) "
        "promoted from staging v7 (ami-aaaaaaaa in eu-west-1)  42s  by ann@ci"
    )
    assert shown.to_dict()["releases"][0]["promoted_from"] == origin
    assert history("web", "prod", LEDGER).to_dict()["releases"][0]["promoted_from"] is None


def test_the_canary_analysis_of_each_judged_step_is_in_the_json():
    judged = {"weight": 10, "verdict": "insufficient", "decision": "continue", "metrics": []}
    run = run_of({"number": 3, "outcome": "released", "analysis": [judged]})
    assert run.analysis == (judged,) and run_of({"number": 2}).analysis == ()
    assert history("web", "local", [{"number": 3, "analysis": [judged]}]).to_dict()["releases"][0]["analysis"] == (
        judged,
    )


def test_a_run_carries_its_release_phase():
    phase = {"status": "succeeded", "command": "bin/migrate", "exit_code": 0, "seconds": 4.2}
    assert run_of({"number": 4, "release_phase": phase}).release_phase == phase
    assert run_of({"number": 3}).release_phase is None
