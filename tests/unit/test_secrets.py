"""A secret is found and redacted in every form the bake's tools write it, not only raw."""

from __future__ import annotations

import json
import shlex
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from toolkit import secrets

# Quotes, a backslash, non-ASCII letters, a dollar, spaces, markup: each breaks a raw-only search once encoded.
VALUES = {
    "double_quote": 'pa"ss"word-1',
    "single_quote": "it's-a-secret",
    "backslash": "C:\\keys\\prod-9",
    "non_ascii": "mot-de-passe-é-ü-ß",
    "dollar_space": "$HOME and more",
    "markup": "<tag>&amp;</tag>",
    "all_of_them": "a\"b\\c é $d e<f>&'g",
}


def ansible_display(value: str) -> str:
    """How Ansible's default callback prints a result: its JSON with non-ASCII kept."""
    return json.dumps({"msg": f"pw={value}"}, ensure_ascii=False)


def written(value: str) -> dict[str, str]:
    """The text each tool writes for a result holding ``value``."""
    event = {"event": "runner_on_ok", "stdout": f"ok: [host] => {ansible_display(value)}"}
    junit = ET.Element("testcase", {"name": f"t[{value}]"})
    ET.SubElement(junit, "failure", {"message": f"assert {value!r} == 'x'"}).text = f"AssertionError: {value!r}"
    return {
        "raw": f"connecting with {value}\n",
        "ansible stdout": f"ok: [host] => {ansible_display(value)}\n",
        "ansible-runner job event": json.dumps(event),
        "ansible-runner job event, utf-8": json.dumps(event, ensure_ascii=False),
        "pytest assertion": f"E       AssertionError: assert {value!r} == 'x'",
        "junit xml": ET.tostring(junit, encoding="unicode"),
        "shell word": f"cmd: echo {shlex.quote(value)}",
    }


CASES = [(name, kind) for name in VALUES for kind in written(VALUES[name])]


@pytest.mark.parametrize("name,kind", CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_every_written_form_is_redacted(name, kind):
    text = written(VALUES[name])[kind]
    redacted = secrets.redact(text, {name: VALUES[name]})
    assert f"[secret {name}]" in redacted
    for form in secrets.forms(VALUES[name]):
        assert form not in redacted


@pytest.mark.parametrize("name,kind", CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_every_written_form_is_found_and_redacted_in_files(tmp_path: Path, name, kind):
    (tmp_path / "job_events").mkdir()
    path = tmp_path / "job_events" / "1-event.json"
    path.write_text(written(VALUES[name])[kind], encoding="utf-8")
    (tmp_path / "clean.txt").write_text("nothing here\n")
    assert secrets.find_in_files(tmp_path, {name: VALUES[name]}) == [(name, path)]
    assert secrets.redact_files(tmp_path, {name: VALUES[name]}) == [(path, [name])]
    assert secrets.find_in_files(tmp_path, {name: VALUES[name]}) == []


def test_a_raw_only_search_misses_the_escaped_forms():
    """Why forms exist: the JSON-escaped value is not the value."""
    value = VALUES["all_of_them"]
    event = written(value)["ansible-runner job event"]
    assert value not in event
    assert secrets.redact(event, {"s": value}) != event


def test_a_value_with_nothing_to_escape_has_one_form():
    assert secrets.forms("plain-secret-123") == ("plain-secret-123",)


def test_longer_forms_go_first_so_no_fragment_is_left():
    """A secret whose raw form is inside another secret's escaped form: each is replaced whole."""
    values = {"outer": 'x"inner-secret"y', "inner": "inner-secret"}
    text = json.dumps({"a": values["outer"], "b": values["inner"]})
    assert secrets.redact(text, values) == '{"a": "[secret outer]", "b": "[secret inner]"}'
