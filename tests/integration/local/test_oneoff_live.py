"""One-off instances on the live stack: ``invoke run`` and the release phase, booted for real.

One live stack for the module. The one-off instances are real instances of a
sample build (nspawn, cloud-init, the config loader, the log shipper): their
command's output comes back through CloudWatch Logs, the release phase's
command writes a DynamoDB counter with the instance role's credentials, and
``invoke release`` is killed with SIGKILL while the phase runs and right
after it finished (the logic of that decision is tested as a table in
tests/unit/release/test_phase.py).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.integration.local.conftest import CACHE, leftovers
from tests.support import livebuilds
from tests.support.principals import acting_as
from toolkit import configchange as change
from toolkit.errors import ReleaseError
from toolkit.oneoff import spec
from toolkit.release import ledger, rollout, slots
from toolkit.release import run as oneoff_run
from toolkit.ui import Silent

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
COUNTER = "oneoff-phase-count"
# The release phase: one more in the counter (with the instance role's credentials), then 6 s more before it ends.
PHASE = (
    "python3 -c \"import boto3, os; boto3.client('dynamodb', region_name='us-east-1', endpoint_url=os.environ.get('AWS_ENDPOINT_URL'))"
    f".update_item(TableName='{COUNTER}', Key={{'pk': {{'S': 'runs'}}}}, UpdateExpression='ADD n :one', "
    "ExpressionAttributeValues={':one': {'N': '1'}})\" && echo counted && sleep 6"
)


@pytest.fixture(scope="module")
def live(layers, tmp_path_factory):
    folder = tmp_path_factory.mktemp("oneoff-live")
    with livebuilds.live_release(folder, ROOT, CACHE) as (cfg, st, aws):
        yield cfg, st, aws, folder, livebuilds.build(st, aws.client("ec2"), layers, folder, "2.0.0")
    assert leftovers(st) == {"processes": [], "mounts": [], "netns": [], "cgroups": []}


def one_offs(aws) -> dict[str, str]:
    found = aws.client("ec2").describe_instances(Filters=[{"Name": "tag-key", "Values": [spec.TAG]}])
    return {i["InstanceId"]: i["State"]["Name"] for r in found["Reservations"] for i in r["Instances"]}


def test_run_streams_both_outputs_with_the_config_and_returns_the_exit_code(live):
    cfg, st, aws, folder, ami = live
    made = change.set_vars(cfg, aws, {"GREETING": "hello from v1"}, release=False, reporter=Silent())
    lines = []
    runner = acting_as(cfg, aws.endpoint, "run")  # only `invoke iam-policy --for run`
    result = oneoff_run.run(
        cfg,
        runner,
        ["sh", "-c", 'echo "to stdout: $GREETING"; echo "to stderr" >&2; exit 3'],
        ami=ami,
        config_version=made.version,
        timeout=60,
        reporter=Silent(),
        out=lambda line: lines.append((line.priority, line.message)),
    )
    assert result.exit_code == 3 and result.config_version == made.version
    assert sorted(lines) == [(3, "to stderr"), (6, "to stdout: hello from v1")]
    assert set(one_offs(aws).values()) == {"terminated"}


def start_run(live, *words: str) -> tuple[subprocess.Popen, set[str]]:
    """``invoke run WORDS`` in the background, once its one-off instance runs: the process and the instance's id."""
    cfg, st, aws, folder, ami = live
    env = dict(os.environ, RODEO_STATE_DIR=str(st.state_dir), RODEO_CACHE_DIR=str(CACHE), RODEO_LOCAL_LIVE="1")
    before = set(one_offs(aws))
    proc = subprocess.Popen(
        [str(BIN / "invoke"), "run", "--ami", ami, "--", *words],
        cwd=folder / "project",
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline, started = time.monotonic() + 120, set()
    while not started and time.monotonic() < deadline and proc.poll() is None:
        started = {i for i, state in one_offs(aws).items() if i not in before and state == "running"}
        time.sleep(0.5)
    assert started, proc.stderr.read() if proc.poll() is not None else "no one-off instance within 120 s"
    return proc, started


def test_ctrl_c_stops_a_run_and_terminates_its_instance(live):
    cfg, st, aws, folder, ami = live
    proc, started = start_run(live, "sleep", "300")
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "error: interrupted" in err, err
    assert {i: one_offs(aws)[i] for i in started} == {i: "terminated" for i in started}


def test_a_run_killed_with_sigkill_leaves_an_instance_the_next_run_terminates(live):
    cfg, st, aws, folder, ami = live
    proc, left = start_run(live, "sleep", "300")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert {one_offs(aws)[i] for i in left} == {"running"}  # kill -9: nothing ran to terminate it
    result = oneoff_run.run(cfg, aws, ["true"], ami=ami, timeout=30, reporter=Silent(), out=lambda line: None)
    assert result.exit_code == 0
    assert {i: one_offs(aws)[i] for i in left} == {i: "terminated" for i in left}


def test_a_failing_release_phase_stops_the_release_with_nothing_moved(live, capsys):
    cfg, st, aws, folder, ami = live
    phased = dataclasses.replace(
        cfg, release=dataclasses.replace(cfg.release, release_command="echo 'no database' >&2; exit 1")
    )
    env = slots.resolve(cfg, aws)
    before = slots.read(env, aws)
    with pytest.raises(ReleaseError) as stopped:
        rollout.release(phased, aws, ami=ami, reporter=Silent())
    newest = (
        stopped.value.result.config_version
    )  # the newest config version (the first test made one), not the live one
    assert stopped.value.message == (
        f"release of {ami} (config v{newest}) stopped before any traffic moved: release phase "
        f"\"echo 'no database' >&2; exit 1\" exited 1; {before.active.name} serves {before.active.ami} (config v{before.active.config}), as before"
    )
    assert stopped.value.result.outcome == "stopped"
    assert "no database" in capsys.readouterr().err  # the command's stderr, on stderr
    after = slots.read(env, aws)
    idle = before.other(before.active.name).name
    assert (after.weights, after.slot(idle).desired, after.active.ami) == (
        before.weights,
        before.slot(idle).desired,
        before.active.ami,
    )
    entry = ledger.recent(cfg, aws, 1)[0]
    assert (entry["outcome"], entry["release_phase"]["status"], entry["release_phase"]["exit_code"]) == (
        "stopped",
        "failed",
        1,
    )
    assert all(state == "terminated" for state in one_offs(aws).values())
    # Its picture: drawn, named by the error's hint, with the stop marked (issue 23).
    drawn, number = stopped.value.result.report, stopped.value.result.number
    assert drawn and stopped.value.hint.endswith(f"; its picture: {drawn}") and number == entry["number"]
    assert [(e["kind"], e["text"]) for e in entry["timeline"]] == [
        ("weights", f"weights: {before.active.name} 100%, {idle} 0%"),
        ("failed", "release phase \"echo 'no database' >&2; exit 1\" exited 1"),
    ]
    assert Path(drawn).name == f"v{number}.html" and "exited 1" in Path(drawn).read_text()


def counted(aws) -> int:
    item = (
        aws.client("dynamodb").get_item(TableName=COUNTER, Key={"pk": {"S": "runs"}}, ConsistentRead=True).get("Item")
    )
    return int(item["n"]["N"]) if item else 0


def release_until(project: Path, env: dict, ami: str, stop, what: str) -> None:
    """``invoke release --ami AMI`` killed with SIGKILL (its process group) as soon as ``stop(lines)`` is true (within 240 s)."""
    proc = subprocess.Popen(
        [str(BIN / "invoke"), "release", "--ami", ami],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    seen: list[str] = []
    reader = threading.Thread(
        target=lambda: seen.extend(proc.stdout), daemon=True
    )  # bounded: the kill below closes the pipe
    reader.start()
    deadline = time.monotonic() + 240
    while not stop(seen) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert proc.poll() is None and stop(seen), f"{what}: {seen[-15:]}"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    reader.join(timeout=10)


def test_the_release_phase_runs_again_only_when_it_never_finished(live):
    cfg, st, aws, folder, ami = live
    project = folder / "project"
    yml = project / "inventories/local/rodeo.yml"
    yml.write_text(
        yml.read_text().replace(
            "release:\n", f"release:\n  release_command: {json.dumps(PHASE)}\n  release_timeout_seconds: 60\n", 1
        )
    )
    ddb = aws.client("dynamodb")
    ddb.create_table(
        TableName=COUNTER,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    aws.client("iam").put_role_policy(
        RoleName=cfg.release.instance_profile,
        PolicyName="oneoff-test-counter",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "dynamodb:UpdateItem",
                        "Resource": f"arn:aws:dynamodb:*:*:table/{COUNTER}",
                    }
                ],
            }
        ),
    )
    env = dict(os.environ, RODEO_STATE_DIR=str(st.state_dir), RODEO_CACHE_DIR=str(CACHE), RODEO_LOCAL_LIVE="1")
    live_ami = slots.read(slots.resolve(cfg, aws), aws).active.ami

    # Killed while the command runs (it counted, then sleeps): it never finished.
    release_until(project, env, ami, lambda lines: counted(aws) == 1, "the phase never counted")
    # The rerun ends the first instance, runs the command again (2), and is killed once it says it finished.
    release_until(
        project,
        env,
        ami,
        lambda lines: any("release phase:" in line and "exited 0" in line for line in lines),
        "the rerun's phase never finished",
    )
    assert counted(aws) == 2
    assert slots.read(slots.resolve(cfg, aws), aws).active.ami == live_ami  # nothing moved yet
    # The last run does not run it a third time, and releases.
    done = subprocess.run(
        [str(BIN / "invoke"), "release", "--ami", ami],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "already ran for this release" in done.stdout, done.stdout[-3000:]
    assert counted(aws) == 2
    history = ledger.recent(cfg, aws, 3)
    assert [e["outcome"] for e in history] == ["released", "interrupted", "interrupted"]
    assert [e["release_phase"]["status"] for e in history] == ["succeeded", "succeeded", "started"]
    assert (
        history[0]["release_phase"]["carried"] is True
        and history[0]["release_phase"]["run_id"] == history[1]["release_phase"]["run_id"]
    )
    assert all(state == "terminated" for state in one_offs(aws).values())
