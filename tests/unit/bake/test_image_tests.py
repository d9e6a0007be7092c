"""The verify step's report and the provision step's task lines."""

from __future__ import annotations

import html
import io

import pytest

from toolkit.bake.image_tests import MAX_LINES, explain, read_junit
from toolkit.bake.provision import TaskPrinter

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="0" failures="1" skipped="1" tests="3">
<testcase classname="tests.image.test_app" name="test_user[ssh://h]"/>
<testcase classname="tests.image.test_app" name="test_health[ssh://h]"><failure message="assert 503 == 200">trace</failure></testcase>
<testcase classname="tests.image.test_app" name="test_skip[ssh://h]"><skipped message="x"/></testcase>
</testsuite></testsuites>"""


def test_junit_counts_and_failures(tmp_path):
    path = tmp_path / "r.xml"
    path.write_text(JUNIT)
    assert read_junit(path) == {
        "tests": 3,
        "failures": 1,
        "errors": 0,
        "skipped": 1,
        "failed": ["test_health: assert 503 == 200"],
    }


# The failure texts pytest 8 writes for testinfra tests that cannot reach the app (the message attribute is cut there).
WHERE = (
    " +  where 7 = CommandResult(backend=<testinfra.backend.ssh.SshBackend object at 0x7f1164a02550>, exit_status=7, "
    "command=b'curl -...lth', _stdout=b'', _stderr=b\"curl: (7) Failed to connect to 127.0.0.1 port 40001 after 0 ms: Couldn't connect to server\\n\").rc"
)
CURL = "curl: (7) Failed to connect to 127.0.0.1 port 40001 after 0 ms: Couldn't connect to server"
APP = [
    '  File "/opt/web/app.py", line 27',
    "    def app(environ, start_response)",
    "                                    ^",
    "SyntaxError: expected ':'",
]
EXPLAINED = [
    # (what, failure text's E lines, what the error shows)
    (
        "a bare assert: one line, pytest's explanation without object addresses",
        ["assert 7 == 0", WHERE],
        [
            "assert 7 == 0 + where 7 = CommandResult(exit_status=7, command=b'curl -...lth', _stdout=b'', _stderr=b\""
            + CURL
            + '\\n").rc'
        ],
    ),
    (
        "a bare assert on a file, as pytest in its own process writes it",
        [
            "AssertionError: assert False",
            " +  where False = <file /etc/rodeo-marker>.exists",
            " +    where <file /etc/rodeo-marker> = <testinfra.host.Host ssh://h>.file('/etc/rodeo-marker')",
        ],
        [
            "assert False + where False = <file /etc/rodeo-marker>.exists + where <file /etc/rodeo-marker> = <testinfra.host.Host ssh://h>.file('/etc/rodeo-marker')"
        ],
    ),
    (
        "the test's message, without pytest's explanation",
        [f"AssertionError: {CURL}", "  ", "assert 7 == 0", WHERE],
        [CURL],
    ),
    (
        "the app's own lines in the message, as the app wrote them",
        [
            f"AssertionError: {CURL}; the app's last output:",
            *(f"  {line}" for line in APP),
            "  ",
            "assert 7 == 0",
            WHERE,
        ],
        [f"{CURL}; the app's last output:", *APP],
    ),
    (
        "an exception",
        ["RuntimeError: the app never wrote its pid file"],
        ["RuntimeError: the app never wrote its pid file"],
    ),
    (
        "a long output: the first line and the last ones",
        ["AssertionError: the app's output:", *(f"  line {i}" for i in range(40))],
        ["the app's output:", "...", *(f"line {i}" for i in range(40 - (MAX_LINES - 2), 40))],
    ),
]


@pytest.mark.parametrize(("e_lines", "shown"), [c[1:] for c in EXPLAINED], ids=[c[0] for c in EXPLAINED])
def test_a_failed_image_test_is_explained_in_the_tests_own_words(e_lines, shown):
    text = (
        "host = <testinfra.host.Host ssh://h>\n\n>       assert result.rc == 0\n"
        + "".join(f"E       {ln}\n" for ln in e_lines)
        + "\ntest_app.py:3: AssertionError"
    )
    assert explain("cut at 200 characters: _stdout=b", text) == shown


def test_the_error_names_the_test_shows_the_apps_lines_and_the_hint_names_the_app(tmp_path):
    from types import SimpleNamespace

    from toolkit.bake import image_tests
    from toolkit.config import AppSource
    from toolkit.errors import VerifyError

    lines = "".join(
        f"E       {ln}\n"
        for ln in [
            f"AssertionError: {CURL}; the app's last output:",
            *(f"  {line}" for line in APP),
            "assert 7 == 0",
            WHERE,
        ]
    )
    junit = tmp_path / "verify.xml"
    junit.write_text(
        '<testsuites><testsuite tests="2" failures="1" errors="0" skipped="0">'
        '<testcase name="test_code_belongs_to_root[ssh://admin@127.0.0.1:2222]"/>'
        f'<testcase name="test_health_answers[ssh://admin@127.0.0.1:2222]"><failure message="cut">{html.escape(lines)}</failure></testcase>'
        "</testsuite></testsuites>"
    )
    image = SimpleNamespace(
        tests="tests/image/test_app.py", playbook="playbooks/app.yml", app_source=AppSource(dir="examples/webapp")
    )
    cfg = SimpleNamespace(app="web")
    with pytest.raises(VerifyError) as caught:
        image_tests.fail_on(image_tests.read_junit(junit), 1, cfg, image, junit)
    assert caught.value.message.splitlines() == [
        f"image test failed: test_health_answers (tests/image/test_app.py): {CURL}; the app's last output:",
        *(f"    {line}" for line in APP),
    ]
    assert caught.value.hint.startswith(
        "the error above is app web's (examples/webapp): fix the app, or its playbook (playbooks/app.yml) or test"
    )


def test_task_printer_keeps_the_failing_task():
    out = io.StringIO()
    printer = TaskPrinter(out)
    printer({"event": "playbook_on_task_start", "event_data": {"task": "Install app"}})
    printer({"event": "runner_on_ok", "event_data": {"res": {"changed": True}}})
    printer(
        {
            "event": "runner_on_failed",
            "event_data": {"task": "Start app", "host": "build-host", "res": {"msg": "boom\n  twice"}},
        }
    )
    printer(
        {
            "event": "runner_on_failed",
            "event_data": {"task": "Ignored", "host": "h", "ignore_errors": True, "res": {"msg": "x"}},
        }
    )
    assert (printer.failure.task, printer.failure.host, printer.failure.message) == (
        "Start app",
        "build-host",
        "boom twice",
    )
    assert out.getvalue().splitlines() == [
        '@rodeo {"event":"task","n":1,"name":"Install app","total":null,"approx":false}',
        "FAILED: 'Start app' on build-host",
        "  boom twice",
    ]


import pytest  # noqa: E402

from toolkit.bake.provision import failure_message  # noqa: E402


@pytest.mark.parametrize(
    "res,expected",
    [
        (
            {"msg": "non-zero return code", "rc": 128, "stderr": "warning: x\nfatal: Needed a single revision"},
            "non-zero return code (rc 128): warning: x | fatal: Needed a single revision",
        ),
        ({"msg": "non-zero return code", "rc": 1, "stderr": ""}, "non-zero return code (rc 1)"),
        ({"msg": "the file does not exist"}, "the file does not exist"),
        ({"stderr": "boom"}, "boom"),
        ({}, "failed"),
    ],
)
def test_a_failed_command_says_its_rc_and_the_end_of_its_stderr(res, expected):
    assert failure_message(res) == expected
