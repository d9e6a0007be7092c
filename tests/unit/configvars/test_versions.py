"""Config vars, the pure part, as tables: keys, values, pairs, and what a change does to a config version (no AWS)."""

from __future__ import annotations

import pytest

from toolkit.configvars.versions import (
    EMPTY,
    ConfigVersion,
    Var,
    apply,
    check_key,
    check_value,
    diff_set,
    diff_unset,
    parse_keys,
    parse_pairs,
    references,
    restore,
)
from toolkit.errors import ConfigError

GOOD_KEYS = ["GREETING", "_PRIVATE", "A", "DB_HOST_2", "X" * 64]
BAD_KEYS = [
    ("greeting", "not a valid environment variable name"),
    ("2FAST", "not a valid environment variable name"),
    ("DB-HOST", "not a valid environment variable name"),
    ("DB HOST", "not a valid environment variable name"),
    ("", "not a valid environment variable name"),
    ("A;rm", "not a valid environment variable name"),
    ("ÉTÉ", "not a valid environment variable name"),
    ("X" * 65, "longer than 64 characters"),
    ("AWS_REGION", "starts with AWS_, which is reserved"),
    ("RODEO_CONFIG_GROUP", "starts with RODEO_, which is reserved"),
]


@pytest.mark.parametrize("key", GOOD_KEYS)
def test_good_keys(key):
    check_key(key)


@pytest.mark.parametrize("key,message", BAD_KEYS, ids=[k[:20] or "empty" for k, _ in BAD_KEYS])
def test_bad_keys(key, message):
    with pytest.raises(ConfigError, match=message) as caught:
        check_key(key)
    assert caught.value.hint


GOOD_VALUES = [
    "hello",
    "x",
    "a b  c",
    "quotes \" and ' and $HOME and `cmd` and \\",
    "line one\nline two",
    "tab\there",
    "é" * 2048,
    "x" * 4096,
]
BAD_VALUES = [
    ("", "the value is empty", "config.unset"),
    ("x" * 4097, "4097 bytes, over SSM's limit of 4096", "under 4 KB"),
    ("é" * 2049, "4098 bytes, over SSM's limit of 4096", "under 4 KB"),
    ("a\0b", "NUL", "remove it"),
    ("\udcff", "not valid UTF-8", "UTF-8"),
]


@pytest.mark.parametrize("value", GOOD_VALUES, ids=range(len(GOOD_VALUES)))
def test_good_values(value):
    check_value("K", value)


@pytest.mark.parametrize("value,message,hint", BAD_VALUES, ids=range(len(BAD_VALUES)))
def test_bad_values_name_the_key_never_the_value(value, message, hint):
    with pytest.raises(ConfigError) as caught:
        check_value("DB_PASSWORD", value)
    assert message in caught.value.message and hint in caught.value.hint
    assert "DB_PASSWORD" in caught.value.message
    if len(value) > 2:
        assert value not in str(caught.value)


def no_stdin(key):
    raise AssertionError(f"stdin read for {key}")


PAIRS = [
    (["GREETING=hi"], False, {"GREETING": "hi"}),
    (["A=1", "B=x=y", "C= spaced "], False, {"A": "1", "B": "x=y", "C": " spaced "}),
    (["TOKEN"], True, {"TOKEN": "from stdin"}),
    (["A=1", "TOKEN"], True, {"A": "1", "TOKEN": "from stdin"}),
]


@pytest.mark.parametrize("pairs,secret,expected", PAIRS, ids=range(len(PAIRS)))
def test_parse_pairs(pairs, secret, expected):
    assert parse_pairs(pairs, secret, lambda key: "from stdin") == expected


BAD_PAIRS = [
    (["GREETING"], False, "'GREETING' is not KEY=VALUE", "--secret"),
    (["greeting=hi"], False, "not a valid environment variable name", "^[A-Z_][A-Z0-9_]*$"),
    (["=hi"], False, "not a valid environment variable name", "capital letters"),
    (["A=1", "A=2"], False, "config key A is given twice", "once"),
    (["A", "B"], True, "only one value can come from stdin", "--no-release"),
    (["A=1", "A"], True, "config key A is given twice", "once"),
    ([], False, "no config var given", "--and"),
    (["A="], False, "the value is empty", "config.unset A"),
    (["AWS_PROFILE=x"], False, "reserved", "another name"),
]


@pytest.mark.parametrize("pairs,secret,message,hint", BAD_PAIRS, ids=range(len(BAD_PAIRS)))
def test_parse_pairs_refuses(pairs, secret, message, hint):
    with pytest.raises(ConfigError) as caught:
        parse_pairs(pairs, secret, no_stdin)
    assert message in caught.value.message and hint in caught.value.hint


def test_a_value_from_stdin_is_checked_too():
    with pytest.raises(ConfigError, match="the value is empty"):
        parse_pairs(["TOKEN"], True, lambda key: "")


@pytest.mark.parametrize(
    "keys,error", [(["A", "B"], None), ([], "no config key given"), (["A", "A"], "given twice"), (["a"], "not a valid")]
)
def test_parse_keys(keys, error):
    if error is None:
        assert parse_keys(keys) == keys
    else:
        with pytest.raises(ConfigError, match=error):
            parse_keys(keys)


V3 = ConfigVersion(3, {"GREETING": Var(2), "WORKERS": Var(1), "DB_PASSWORD": Var(4, secret=True)})
# (name, values, secret, plain values now, expected put, expected unchanged)
SETS = [
    ("a new key", {"MODE": "fast"}, False, {}, {"MODE": False}, ()),
    ("a changed value", {"GREETING": "hey"}, False, {"GREETING": "hi"}, {"GREETING": False}, ()),
    ("the same value", {"GREETING": "hi"}, False, {"GREETING": "hi"}, {}, ("GREETING",)),
    (
        "one same, one changed",
        {"GREETING": "hi", "WORKERS": "8"},
        False,
        {"GREETING": "hi", "WORKERS": "4"},
        {"WORKERS": False},
        ("GREETING",),
    ),
    ("a secret is always written", {"DB_PASSWORD": "same?"}, True, {}, {"DB_PASSWORD": True}, ()),
    ("a plain key made secret", {"GREETING": "hi"}, True, {"GREETING": "hi"}, {"GREETING": True}, ()),
]


@pytest.mark.parametrize("name,values,secret,plain,put,same", SETS, ids=[s[0] for s in SETS])
def test_diff_set(name, values, secret, plain, put, same):
    diff = diff_set(V3, values, secret, plain)
    assert (diff.put, diff.unchanged, diff.removed) == (put, same, ())


def test_a_secret_never_turns_plain_by_accident():
    with pytest.raises(ConfigError, match="DB_PASSWORD is a secret") as caught:
        diff_set(V3, {"DB_PASSWORD": "plain now"}, False, {})
    assert "--secret" in caught.value.hint and "plain now" not in str(caught.value)


def test_too_many_vars():
    many = ConfigVersion(1, {f"K{i}": Var(1) for i in range(100)})
    assert diff_set(many, {"K0": "x"}, False, {}).put == {"K0": False}
    with pytest.raises(ConfigError, match="101 config vars would exceed the limit of 100"):
        diff_set(many, {"NEW": "x"}, False, {})


def test_diff_unset():
    assert diff_unset(V3, ["WORKERS"]).removed == ("WORKERS",)
    with pytest.raises(
        ConfigError, match=r"config key NOPE is not set \(config version 3 holds: DB_PASSWORD, GREETING, WORKERS\)"
    ):
        diff_unset(V3, ["WORKERS", "NOPE"])
    with pytest.raises(ConfigError, match="holds: none"):
        diff_unset(EMPTY, ["A"])


def test_apply_makes_the_next_version():
    diff = diff_set(V3, {"GREETING": "hey", "MODE": "x"}, False, {"GREETING": "hi"})
    v4 = apply(V3, diff, {"GREETING": 3, "MODE": 1}, "me@host", "t4")
    assert v4 == ConfigVersion(
        4,
        {"GREETING": Var(3), "WORKERS": Var(1), "DB_PASSWORD": Var(4, True), "MODE": Var(1)},
        ("GREETING", "MODE"),
        (),
        "me@host",
        "t4",
    )
    v5 = apply(v4, diff_unset(v4, ["WORKERS"]), {}, "me@host", "t5")
    assert sorted(v5.vars) == ["DB_PASSWORD", "GREETING", "MODE"] and v5.removed == ("WORKERS",) and v5.changed == ()


def test_apply_on_top_of_a_version_that_won_the_race():
    """Two changes made from v3: the one that lost the race for v4 becomes v5, keeping the winner's keys."""
    mine = diff_set(V3, {"MODE": "x"}, False, {})
    theirs = apply(V3, diff_set(V3, {"WORKERS": "8"}, False, {"WORKERS": "4"}), {"WORKERS": 2}, "them", "t4")
    v5 = apply(theirs, mine, {"MODE": 1}, "me", "t5")
    assert v5.number == 5 and v5.vars["WORKERS"] == Var(2) and v5.vars["MODE"] == Var(1) and v5.changed == ("MODE",)
    gone = apply(theirs, diff_unset(V3, ["WORKERS"]), {}, "me", "t5")
    assert "WORKERS" not in gone.vars and gone.removed == ("WORKERS",)


def test_references_and_round_trip():
    assert references(V3, "web", "prod") == [
        "/rodeo/web/prod/DB_PASSWORD:4",
        "/rodeo/web/prod/GREETING:2",
        "/rodeo/web/prod/WORKERS:1",
    ]
    assert references(EMPTY, "web", "prod") == []
    assert ConfigVersion.from_dict(V3.to_dict()) == V3
    assert "value" not in str(V3.to_dict())


def test_a_key_living_under_its_other_type_name_is_recorded_and_referenced_there():
    from toolkit.configvars.versions import references, type_parameter_name

    moved = type_parameter_name("web", "prod", "TOKEN", True)
    version = ConfigVersion(2, {"TOKEN": Var(1, True, moved), "MODE": Var(3)})
    assert (
        moved == "/rodeo/web/prod/secret/TOKEN"
        and type_parameter_name("web", "prod", "TOKEN", False) == "/rodeo/web/prod/plain/TOKEN"
    )
    assert ConfigVersion.from_dict(version.to_dict()) == version
    assert version.to_dict()["vars"] == {
        "MODE": {"version": 3, "secret": False},
        "TOKEN": {"version": 1, "secret": True, "name": moved},
    }
    assert references(version, "web", "prod") == ["/rodeo/web/prod/MODE:3", "/rodeo/web/prod/secret/TOKEN:1"]


V1 = ConfigVersion(1, {"GREETING": Var(1), "MODE": Var(1)})
V2 = ConfigVersion(2, {"GREETING": Var(2), "TOKEN": Var(1, True)})
RESTORES = [
    # (name, newest, old, expected (number, changed, removed, restores) or None: no copy)
    ("the newest itself", V2, V2, None),
    ("a copy an earlier run made", ConfigVersion(3, dict(V1.vars), ("GREETING",), ("TOKEN",), restores=1), V1, None),
    ("an older version", V2, V1, (3, ("GREETING", "MODE"), ("TOKEN",), 1)),
    ("back to no config", V2, EMPTY, (3, (), ("GREETING", "TOKEN"), 0)),
]


@pytest.mark.parametrize("name,newest,old,expected", RESTORES, ids=[r[0] for r in RESTORES])
def test_restore_copies_an_older_version_on_top(name, newest, old, expected):
    made = restore(newest, old, "me@here", "2026-12-05T10:00:00.000+00:00")
    if expected is None:
        assert made is None
        return
    assert (made.number, made.changed, made.removed, made.restores) == expected
    assert made.vars == old.vars and (made.by, made.at) == ("me@here", "2026-12-05T10:00:00.000+00:00")
    assert ConfigVersion.from_dict(made.to_dict()) == made
