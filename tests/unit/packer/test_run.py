"""Reading Packer's machine-readable stream: lines, phases, manifest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from toolkit.progress import Done, Failed, ImageTest, Note, Output, Phase, Task
from toolkit.errors import PackerError
from toolkit.packer import run

LOGS = Path(__file__).parent / "logs"


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("1700000000,,ui,say,==> amazon-ebs.app: Launching a source AWS instance...\n", ("say", "==> amazon-ebs.app: Launching a source AWS instance...")),
        ("1700000000,,ui,message,    amazon-ebs.app: a%!(PACKER_COMMA) b\n", ("message", "    amazon-ebs.app: a, b")),
        ("1700000000,,ui,error,Build errored\\nsecond line\n", ("error", "Build errored\nsecond line")),
        ("1700000000,amazon-ebs.app,artifact,0,id,us-east-1:ami-123\n", ("artifact", "0,id,us-east-1:ami-123")),
        ("garbage\n", ("", "garbage")),
    ],
)
def test_parse_line(raw, expected):
    assert run.parse_line(raw) == expected


def test_phases_follow_packer_messages(monkeypatch):
    now = iter([0.0, 1.0, 3.0, 7.0, 7.5, 8.0, 8.5])
    monkeypatch.setattr(run.time, "monotonic", lambda: next(now))
    clock = run.PhaseClock()  # 0.0
    clock.saw("==> amazon-ebs.app: Launching a source AWS instance...")  # 1.0
    clock.saw("==> amazon-ebs.app: Connected to SSH!")
    clock.saw("==> amazon-ebs.app: Running local shell script: /tmp/packer-shell1")  # 3.0
    clock.saw("==> amazon-ebs.app: Running local shell script: /tmp/packer-shell2")  # 7.0
    clock.saw("==> amazon-ebs.app: Running local shell script: /tmp/packer-shell3")  # 7.5
    clock.saw("==> amazon-ebs.app: Stopping the source instance...")  # 8.0
    clock.stop()  # 8.5
    assert clock.durations == {"boot": 2.0, "provision": 4.0, "verify": 0.5, "seal": 0.5, "snapshot": 0.5}


def test_manifest_gives_every_region(tmp_path):
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"builds": [{"artifact_id": "us-east-1:ami-1,us-west-2:ami-2"}]}))
    assert run.read_manifest(path) == {"us-east-1": "ami-1", "us-west-2": "ami-2"}
    with pytest.raises(PackerError, match="no manifest"):
        run.read_manifest(tmp_path / "missing.json")


def test_missing_packer_says_how_to_install(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(PackerError) as err:
        run.version()
    assert err.value.message == "packer is not installed"
    assert "make setup" in err.value.hint


# Packer's own messages -> the phase each opens (None: no change), fed in this order to one clock.
PACKER_LINES = [
    ("Prevalidating any provided VPC information", "boot"),
    ("Launching a source AWS instance...", None),  # boot runs already
    ("Connected to SSH!", None),
    ("Running local shell script: /tmp/packer-shell1", "provision"),
    ("Running local shell script: /tmp/packer-shell2", "verify"),
    ("Running local shell script: /tmp/packer-shell3", "seal"),
    ("Stopping the source instance...", "snapshot"),
    ("Creating AMI GxDxyGs from instance i-eb4febab04c823bdc", None),
    ("Copying/Encrypting AMI (ami-32706225ee6b7d676) to other regions...", "copy"),
    ("Creating AMI tags", None),  # matches the snapshot's marker: a finished phase is never entered again
    ("Terminating the source AWS instance...", None),
]


def test_packer_lines_open_phases_in_order():
    events = []
    clock = run.PhaseClock(on_event=events.append)
    assert [clock.saw(f"==> amazon-ebs.app: {text}") for text, _ in PACKER_LINES] == [phase for _, phase in PACKER_LINES]
    assert events == [Phase(p) for _, p in PACKER_LINES if p]


def test_a_clock_may_start_in_a_phase_and_a_step_may_name_its_own():
    events = []
    clock = run.PhaseClock("boot", events.append)
    clock.saw("Prevalidating AMI Name: web-app")  # boot already runs
    clock.saw("Running local shell script: /tmp/packer-shell1")  # by count: the first step, provision
    clock.enter("verify")  # the step says which it is (a template without provisioning)
    clock.saw("Running local shell script: /tmp/packer-shell2")  # by count: verify, which runs already
    clock.enter("verify")
    assert events == [Phase("boot"), Phase("provision"), Phase("verify")]


@pytest.mark.parametrize(
    "text,expected",
    [
        ("    amazon-ebs.app: Instance ID: i-99d3a0e00676c1c04", Note("instance i-99d3a0e00676c1c04")),
        ("==> amazon-ebs.app: Waiting for SSH to become available...", Note("waiting for SSH")),
        ("==> amazon-ebs.app: Connected to SSH!", Note("connected over SSH", final=True)),
        ("==> amazon-ebs.app: Creating AMI N7YHBFb from instance i-99d3a0e00676c1c04", Note("creating the AMI")),
        ("==> amazon-ebs.app: Adding tag: \"rodeo:app\": \"web\"", None),
    ],
)
def test_packer_notes(text, expected):
    assert run.phase_note(run.SOURCE.sub("", text)) == expected


@pytest.mark.parametrize(
    "errors,expected",
    [
        # A failed shell step: Packer says the same reason three times, with a banner around it.
        (["Build 'amazon-ebs.base' errored after 2 seconds 622 milliseconds: Script exited with non-zero exit status: 1.Allowed exit codes are: [0]",
          "\n==> Some builds didn't complete successfully and had errors:",
          "Script exited with non-zero exit status: 1.Allowed exit codes are: [0]",
          "--> amazon-ebs.base: Script exited with non-zero exit status: 1.Allowed exit codes are: [0]"],
         ["Script exited with non-zero exit status: 1.Allowed exit codes are: [0]"]),
        (["==> amazon-ebs.app: Timeout waiting for SSH.", "Build 'amazon-ebs.app' errored after 10 minutes: Timeout waiting for SSH.",
          "--> amazon-ebs.app: Timeout waiting for SSH."],
         ["Timeout waiting for SSH."]),
        ([], []),
    ],
)
def test_packers_reasons_once_each(errors, expected):
    assert run.unique_reasons(errors) == expected


def replay(name: str) -> tuple[list, run.Stream]:
    """A recorded packer.log (a real bake on the local stack) through the reader build() uses."""
    events = []
    stream = run.Stream(events.append, run.PhaseClock("boot", events.append))
    for raw in (LOGS / name).read_text().splitlines(keepends=True):
        stream.feed(raw)
    return events, stream


def test_a_bakes_log_becomes_phase_and_step_events():
    events, stream = replay("app.log")
    shown = [e for e in events if not isinstance(e, (Output, Note))]
    assert [e.name for e in shown if isinstance(e, Phase)] == ["boot", "provision", "verify", "seal", "snapshot", "copy"]
    tasks = [e for e in shown if isinstance(e, Task)]
    assert [(t.n, t.total) for t in tasks] == [(n, 10) for n in range(1, 11)]
    assert tasks[1].name == "App user exists, without a login shell"  # Packer's escaped comma is back
    assert [e for e in shown if isinstance(e, ImageTest)][-1] == ImageTest("test_home_page_says_hello", "passed", 6, 0, 6)
    assert [e for e in shown if isinstance(e, Done)] == [Done("provision", "10 tasks, 7 changed"), Done("verify", "6 tests passed"),
                                                          Done("seal", "no secret or bake key found (0 secret(s) scanned); bake key and host keys removed")]
    assert Note("to us-east-1", final=True) in events
    # Everything else is Packer's log: each tag line once per tag and resource, as Packer wrote it.
    output = [e.text for e in events if isinstance(e, Output)]
    assert sum('Adding tag: "rodeo:app": "web"' in line for line in output) == 2  # AMI and snapshot
    assert not any("@rodeo" in line for line in output)
    assert stream.clock.durations.keys() == {"boot", "provision", "verify", "seal", "snapshot"}  # copy still runs


def test_a_failed_steps_own_lines_say_why():
    events, stream = replay("failed-task.log")
    assert stream.why() == (
        "FAILED: 'Deliberately failing step' on localhost (delegated from build-host) at playbooks/roles/base/tasks/main.yml:2",
        "  non-zero return code (rc 3)",
        "  stderr: one",
        "  stderr: two",
        "PLAY RECAP ok=0 changed=0 failed=1 unreachable=0 skipped=0",
    )  # not "Script exited with non-zero exit status" three times
    assert stream.reasons() == ["Script exited with non-zero exit status: 1.Allowed exit codes are: [0]"]
    failed = [e for e in events if isinstance(e, Failed)]
    assert failed[0].message.startswith("Ansible task 'Deliberately failing step' failed on localhost (delegated from build-host)")
