"""The instance's config loader (playbooks/roles/base/files/rodeo-config-loader.py), its pure part: user data in, env file out.

The script runs on the instance with the standard library and Debian's boto3;
it is loaded here by path. The systemd side (that systemd reads the file back
as these values) is proven on booted instances: tests/integration/local/test_release_live.py (its config tests).
"""

from __future__ import annotations

import importlib.util
import json
import os
import stat
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "playbooks/roles/base/files/rodeo-config-loader.py"
spec = importlib.util.spec_from_file_location("rodeo_config_loader", SCRIPT)
loader = importlib.util.module_from_spec(spec)
spec.loader.exec_module(loader)


def doc(**rodeo) -> bytes:
    return json.dumps({"rodeo": {"app": "web", "env": "prod", **rodeo}}).encode()


USER_DATA = [
    ("no user data", None, (0, [])),
    ("a shell script", b"#!/bin/sh\necho hi\n", (0, [])),
    ("json, not Rodeo's", b'{"other": 1}', (0, [])),
    ("Rodeo's, before config vars", doc(), (0, [])),
    ("config version 0", doc(config_version=0, config_parameters=[]), (0, [])),
    (
        "two keys",
        doc(config_version=7, config_parameters=["/rodeo/web/prod/GREETING:3", "/rodeo/web/prod/DB_PASSWORD:12"]),
        (7, [("/rodeo/web/prod/GREETING", "GREETING", 3), ("/rodeo/web/prod/DB_PASSWORD", "DB_PASSWORD", 12)]),
    ),
]


@pytest.mark.parametrize("name,data,expected", USER_DATA, ids=[u[0] for u in USER_DATA])
def test_references(name, data, expected):
    assert loader.references(data) == expected


@pytest.mark.parametrize(
    "refs,error",
    [
        (["/rodeo/web/prod/GREETING"], "malformed"),
        (["/rodeo/web/prod/greeting:1"], "malformed"),
        (["GREETING:1"], "malformed"),
        (["/rodeo/web/prod/GREETING:1", "/rodeo/web/other/GREETING:2"], "config key twice: GREETING"),
    ],
)
def test_bad_references_fail(refs, error):
    with pytest.raises(loader.LoadError, match=error):
        loader.references(doc(config_version=1, config_parameters=refs))


QUOTED = [
    ("hello", '"hello"'),
    ("a b  c", '"a b  c"'),
    ('say "hi"', '"say \\"hi\\""'),
    ("$HOME and ${X}", '"\\$HOME and \\${X}"'),
    ("back\\slash", '"back\\\\slash"'),
    ("`id`", '"\\`id\\`"'),
    ("it's", '"it\'s"'),
    ("two\nlines", '"two\nlines"'),  # systemd keeps a newline inside double quotes
    ("ends with backslash\\", '"ends with backslash\\\\"'),
    ("  edge spaces  ", '"  edge spaces  "'),
    ("# not a comment", '"# not a comment"'),
]


@pytest.mark.parametrize("value,expected", QUOTED, ids=range(len(QUOTED)))
def test_quote_for_systemd(value, expected):
    assert loader.quote(value) == expected


def test_quote_refuses_nul():
    with pytest.raises(ValueError):
        loader.quote("a\0b")


def test_render():
    text = loader.render({"B": "2", "A": "one two"}, 5)
    assert text.splitlines() == [
        "# Rodeo config vars, config version 5: written at boot by rodeo-config.service; do not edit",
        'A="one two"',
        'B="2"',
    ]
    assert loader.render({}, 0).count("\n") == 1  # an empty file but for its comment
    with pytest.raises(loader.LoadError, match="not an environment variable name"):
        loader.render({"bad-key": "x"}, 1)


def test_write_is_atomic_and_private(tmp_path):
    """root-owned (this test runs as root), the given group, 0640; replacing leaves no temp file."""
    out = tmp_path / "run" / "config.env"
    loader.write(str(out), 'A="1"\n', "root")
    loader.write(str(out), 'A="2"\n', "root")
    st = out.stat()
    assert out.read_text() == 'A="2"\n' and stat.S_IMODE(st.st_mode) == 0o640 and st.st_uid == os.getuid()
    assert [p.name for p in out.parent.iterdir()] == ["config.env"]


@pytest.mark.parametrize(
    "user_data, region",
    [
        (
            b'{"rodeo": {"config_version": 1, "config_region": "us-east-1"}}',
            "us-east-1",
        ),  # a release in waves, elsewhere
        (b'{"rodeo": {"config_version": 1}}', None),  # in region: itself: the instance's own region
        (b'{"rodeo": {"config_region": "not a region"}}', None),
        (b'{"rodeo": {"config_region": 7}}', None),
        (b"#!/bin/sh\necho hi\n", None),
        (None, None),
    ],
)
def test_the_config_region_is_the_one_the_user_data_names_else_the_instances_own(user_data, region):
    assert loader.config_region(user_data) == region
