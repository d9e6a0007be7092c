"""Verify a build host with the image's testinfra tests, over SSH.

Runs here, as the second of the bake's steps (``toolkit.bake.ssh_steps``; alone,
the same flags as ``toolkit.bake.provision``); a failing test exits 1, which stops
Packer before the AMI exists. The tests run in a pytest of their own with
``--hosts=ssh://USER@HOST:PORT`` and an SSH config holding the bake key; the
report is kept as ``<bake-dir>/verify.xml`` (JUnit) and ``verify.json``.

testinfra's ssh backend runs one ``ssh`` per command: through the SSH
config's master connection (``toolkit.hosts.ssh``), each is a session on the
connection the provision step opened, not a new login.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

from toolkit import config as config_mod
from toolkit.bake import runner
from toolkit.errors import VerifyError
from toolkit.hosts import ssh
from toolkit.hosts.ssh import SshHost, client_config

TIMEOUT = 1800  # seconds: image tests still running after half an hour wait on something that will not come
MAX_LINES = 14  # of a failed test's explanation: its first line, and the last ones
LINE_CHARS = 300
ADDRESS_RE = re.compile(r"backend=<[^<>]* object at 0x[0-9a-f]+>, | object at 0x[0-9a-f]+")  # in pytest's reprs: noise
EVENT_ARGS = ["-p", "toolkit.bake.pytest_events", "-o", "console_output_style=classic"]


def run(
    cfg: config_mod.Config,
    image_name: str,
    host: SshHost,
    out_dir: Path,
    junit: Path | None = None,
    stdout=None,
    events: bool = False,
    in_process: bool = False,
) -> dict:
    """Run the image's tests against ``host``; return the report, or raise VerifyError.

    ``stdout`` is where pytest's own output goes (a file, ``subprocess.DEVNULL``; default: ours).
    ``events``: print a progress event per test (``toolkit.bake.pytest_events``) instead of pytest's dots.
    ``in_process``: pytest runs in this process (the bake's verify step, a process of its own
    that runs one pytest and exits) instead of a new Python: one interpreter start less.
    """
    image = cfg.image(image_name)
    tests = (cfg.root / image.tests).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    junit = junit or out_dir / "verify.xml"
    cfg_file = client_config(out_dir / "ssh_config", host)
    opened = not ssh.master_running(host, cfg_file) and ssh.open_master_when_ready(host, cfg_file)  # a bake's is open
    args = [
        str(tests),
        f"--hosts={host.url}",
        f"--ssh-config={cfg_file}",
        f"--junitxml={junit}",
        "-p",
        "no:cacheprovider",
        "-o",
        "addopts=",
        "-q",
        "--color=no",
        f"--rootdir={tests.parent}",
    ]
    if events:
        args += EVENT_ARGS
    try:
        if in_process:
            import pytest

            returncode = int(pytest.main(args))
        else:
            returncode = subprocess.run(
                [sys.executable, "-m", "pytest", *args], cwd=cfg.root, stdout=stdout, timeout=TIMEOUT
            ).returncode
    except subprocess.TimeoutExpired:
        raise VerifyError(
            f"image tests of {image_name} did not end within {TIMEOUT // 60} minutes ({image.tests})",
            f"a test waits on something that never comes (a service, the network): run it alone; report: {junit}",
        ) from None
    finally:
        if opened:
            ssh.close_master(host, cfg_file)
    report = (
        read_junit(junit) if junit.is_file() else {"tests": 0, "failures": 0, "errors": 1, "skipped": 0, "failed": []}
    )
    report["exit_code"] = returncode
    (out_dir / "verify.json").write_text(json.dumps(report, indent=2) + "\n")
    fail_on(report, returncode, cfg, image, junit)
    return report


def fail_on(report: dict, returncode: int, cfg: config_mod.Config, image: config_mod.Image, junit: Path) -> None:
    """VerifyError when the tests failed (or none ran): the first failed test by name, with its own lines; the hint names the app."""
    if returncode == 0 and report["tests"] > 0:
        return
    failed = report["failed"] or ["no test ran" if report["tests"] == 0 else f"pytest exit {returncode}"]
    more = f" and {len(failed) - 1} more" if len(failed) > 1 else ""
    name, _, why = failed[0].partition(": ")
    first, *lines = why.splitlines() or [""]
    head = f"{name} ({image.tests}){more}" + (f": {first}" if why else "")
    raise VerifyError(
        f"image test failed: {head}" + "".join(f"\n    {line}" for line in lines), _hint(cfg, image, junit)
    )


def _hint(cfg: config_mod.Config, image: config_mod.Image, junit: Path) -> str:
    """What to fix: the app (named, with its source) when the image carries one, else the playbook; or the test."""
    if image.app_source is not None:
        return (
            f"the error above is app {cfg.app}'s ({image.app_source.location}): fix the app, or its playbook ({image.playbook}) "
            f"or test ({image.tests}); report: {junit}"
        )
    return f"fix the playbook or the test ({image.playbook}, {image.tests}); report: {junit}"


def read_junit(path: Path) -> dict:
    """Counts and failing tests from a JUnit XML report: each ``name: why`` (``explain``), a test's own lines after a newline."""
    from toolkit.bake.pytest_events import short_name  # imports pytest: only once tests ran

    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
    failed = []
    for case in root.iter("testcase"):
        bad = case.find("failure")
        if bad is None:
            bad = case.find("error")
        if bad is not None:
            name = short_name(str(case.get("name")))
            lines = explain(bad.get("message") or "", bad.text or "")
            failed.append(f"{name}: {chr(10).join(lines)}" if lines else name)
    return dict(counts, failed=failed)


def explain(message: str, text: str) -> list[str]:
    """Why a test failed, as lines a person reads, at most ``MAX_LINES`` (the first, then the last ones: an error ends a traceback).

    ``text`` is the report's failure text, whose ``E`` lines are whole (``message``
    may be cut). A test's own assertion message (the app's output, when the
    test gives it) is shown line by line, without pytest's explanation after
    it; a bare ``assert`` is one line with pytest's ``+ where`` parts, the
    only explanation it has, without object addresses (testinfra's
    ``CommandResult`` then reads as its exit status, command, stdout and
    stderr).
    """
    if message == "collection failure":  # say why: the last 'E   ...Error: ...' line pytest printed
        reasons = [ln[1:].strip() for ln in text.splitlines() if ln.startswith("E ") and "Error" in ln]
        return [f"cannot load the test file: {reasons[-1]}" if reasons else "cannot load the test file"]
    said = [ln[1:] for ln in text.splitlines() if ln.startswith("E ")] or message.splitlines()
    lines = textwrap.dedent("\n".join(said)).splitlines()
    if lines and lines[0].startswith(
        "AssertionError: "
    ):  # pytest in a process of its own writes the class before a bare assert too
        lines[0] = lines[0][len("AssertionError: ") :]
        if not lines[0].startswith(
            "assert "
        ):  # the test's own message, then pytest's explanation ("assert 7 == 0", "+ where ...")
            end = next((i for i, ln in enumerate(lines) if ln.startswith("assert ")), len(lines))
            lines = lines[:1] + textwrap.dedent("\n".join(lines[1:end])).splitlines()
    if lines and lines[0].startswith("assert "):  # a bare assert: pytest's explanation is all there is, one line
        lines = [" ".join(" ".join(lines).split())]
    lines = [ADDRESS_RE.sub("", ln).rstrip()[:LINE_CHARS] for ln in lines if ln.strip()]
    if len(lines) > MAX_LINES:
        lines = lines[:1] + ["..."] + lines[-(MAX_LINES - 2) :]
    return lines


def run_step(args, host: SshHost, values: dict[str, str]) -> str:
    """The verify step: the image's tests against the build host, in this process."""
    cfg = config_mod.load(args.env, Path.cwd())  # Packer runs us in the project root
    with ssh.master_closed_on_error(host, args.bake_dir / "ssh_config"):
        # the image's tests never need the secrets; Packer runs this step in the project root
        report = run(cfg, args.image, host, args.bake_dir, events=True, in_process=True)
    return f"{report['tests']} test{'' if report['tests'] == 1 else 's'} passed"


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``python -m toolkit.bake.image_tests``."""
    return runner.main("verify", run_step, argv, "toolkit.bake.image_tests")


if __name__ == "__main__":
    sys.exit(main())
