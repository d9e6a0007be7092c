"""One-off instances on AWS: launch, stream the command's output, read its exit code, terminate.

``run`` carries out a ``toolkit.oneoff.spec.OneOff``: it first ends the
one-off instances a killed Rodeo left (``cleanup``), launches the instance
(RunInstances, tagged at launch), reads the instance's log stream
(FilterLogEvents, every one to three seconds: ``toolkit.logs.tail.Window``)
until the runner's last line, and terminates the instance on every way out:
the end, a timeout, an error, Ctrl-C. A ``kill -9`` of Rodeo leaves the
instance; the next one-off or release phase terminates it (its owner tag
names a dead process of this host, or it is overdue).
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from datetime import datetime, timezone
from typing import Any, Callable

import botocore.exceptions

from toolkit import procs
from toolkit.aws import error_code
from toolkit.config import Config
from toolkit.errors import OneOffError
from toolkit.logs import tail
from toolkit.logs.view import LogLine, Query, line_of
from toolkit.oneoff import spec
from toolkit.ui import Reporter

STATE_EVERY = 10.0  # seconds between DescribeInstances while waiting: an instance that died says so within this
TERMINATE_WAIT = 300


def owner() -> str:
    """``host pid``: who waits for a one-off instance (its ``rodeo:oneoff-owner`` tag)."""
    return f"{socket.gethostname()} {os.getpid()}"


def find(aws: Any, filters: list[dict]) -> list[dict]:
    """The instances matching ``filters`` (terminated ones too)."""
    pages = aws.client("ec2").get_paginator("describe_instances").paginate(Filters=filters)
    return [i for page in pages for r in page["Reservations"] for i in r["Instances"]]


def cleanup(config: Config, aws: Any, reporter: Reporter, now: datetime | None = None) -> list[str]:
    """Terminate this environment's one-off instances a killed Rodeo left (``spec.leftover``); their ids."""
    now = now or datetime.now(timezone.utc)
    found = find(
        aws,
        [
            {"Name": "tag:rodeo:app", "Values": [config.app]},
            {"Name": "tag:rodeo:env", "Values": [config.env]},
            {"Name": "tag-key", "Values": [spec.TAG]},
            {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]},
        ],
    )
    host, gone = socket.gethostname(), []
    for inst in found:
        why = spec.leftover(
            {t["Key"]: t["Value"] for t in inst.get("Tags", [])}, inst["State"]["Name"], host, procs.alive, now
        )
        if why:
            reporter.warn(f"terminating one-off instance {inst['InstanceId']} left behind: {why}")
            gone.append(inst["InstanceId"])
    if gone:
        aws.client("ec2").terminate_instances(InstanceIds=gone)
    return gone


def terminate(aws: Any, run_id: str, wait: bool = False) -> list[str]:
    """Terminate the instance(s) of ``run_id`` (found by its tag, so also one whose launch answer was lost); with
    ``wait``, until EC2 says terminated (bounded). The ids."""
    ids = [
        i["InstanceId"]
        for i in find(aws, [{"Name": f"tag:{spec.TAG}", "Values": [run_id]}])
        if i["State"]["Name"] != "terminated"
    ]
    if not ids:
        return []
    aws.client("ec2").terminate_instances(InstanceIds=ids)
    if wait:
        aws.client("ec2").get_waiter("instance_terminated").wait(
            InstanceIds=ids, WaiterConfig={"Delay": 2, "MaxAttempts": TERMINATE_WAIT // 2}
        )
    return ids


def launch(config: Config, aws: Any, oneoff: spec.OneOff, base: dict) -> str:
    """RunInstances of the one-off instance; its id."""
    data = spec.text(spec.user_data(base, oneoff))
    try:
        made = aws.client("ec2").run_instances(
            **spec.launch_request(config, oneoff, data, owner(), datetime.now(timezone.utc))
        )
    except botocore.exceptions.ClientError as exc:
        raise OneOffError(
            f"EC2 refused the one-off instance of {oneoff.ami}: {error_code(exc)}: {exc.response.get('Error', {}).get('Message', '')}",
            "check the AMI, the subnet and the instance profile in rodeo.yml's release: section",
        ) from None
    return made["Instances"][0]["InstanceId"]


def follow(
    config: Config,
    aws: Any,
    oneoff: spec.OneOff,
    instance_id: str,
    since_ms: int,
    show: Callable[[LogLine], None],
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Show the command's lines as they reach the instance's stream; its exit code.

    OneOffError when the instance ends before the command did, or when no
    last line came within ``oneoff.deadline_seconds``.
    """
    query = Query(since_ms=since_ms, instance=instance_id, everything=True)
    window, sources = tail.Window(since_ms), {instance_id: ("one-off", oneoff.ami)}
    deadline, checked = clock() + oneoff.deadline_seconds, clock()
    while True:
        polled_at = int(time.time() * 1000)
        fresh = window.fresh(tail.fetch(config, aws, query, window.start))
        for event in fresh:
            line = line_of(event, sources)
            code = spec.end_of(line.message, oneoff.run_id) if line.unit == spec.UNIT else None
            if code is not None:
                return code
            if spec.is_output(line.unit, line.message, oneoff.run_id):
                show(line)
        if clock() >= deadline:
            raise OneOffError(
                f"one-off instance {instance_id} gave no exit code within {oneoff.deadline_seconds}s (boot, the command's "
                f"{oneoff.timeout}s, shipping)",
                f"see its journal: 'invoke logs --instance {instance_id} --all --since 1h'",
            )
        if clock() - checked >= STATE_EVERY:
            checked = clock()
            _require_running(aws, instance_id)
        sleep(window.advance(polled_at, bool(fresh)))


def _require_running(aws: Any, instance_id: str) -> None:
    found = find(aws, [{"Name": "instance-id", "Values": [instance_id]}])
    if not found:
        return  # EC2 is eventually consistent: a new instance may not be described yet (the deadline still holds)
    state = found[0]["State"]["Name"]
    if state not in ("pending", "running"):
        reason = found[0].get("StateReason", {}).get("Message", "") if found else ""
        raise OneOffError(
            f"one-off instance {instance_id} is {state} before its command ended" + (f": {reason}" if reason else ""),
            f"see its journal: 'invoke logs --instance {instance_id} --all --since 1h'",
        )


def run(
    config: Config, aws: Any, oneoff: spec.OneOff, base: dict, show: Callable[[LogLine], None], reporter: Reporter
) -> int:
    """Launch, follow, terminate: the command's exit code. The instance is terminated on every way out (Ctrl-C too)."""
    cleanup(config, aws, reporter)
    since_ms = int(time.time() * 1000) - 5_000
    launched: list[str] = []
    try:
        with reporter.step(
            f"one-off instance of {oneoff.ami} with config v{oneoff.config_version} ({oneoff.instance_type})"
        ) as line:
            launched.append(launch(config, aws, oneoff, base))
            line["result"] = launched[0]
        reporter.info(f"running {' '.join(oneoff.argv)} on {launched[0]} (output as it reaches CloudWatch Logs)")
        return follow(config, aws, oneoff, launched[0], since_ms, show)
    finally:
        with contextlib.suppress(Exception):  # never hide the run's own outcome; the next command ends a leftover
            if launched:  # by id: a describe by tag may not list an instance launched a moment ago
                aws.client("ec2").terminate_instances(InstanceIds=launched)
            ended = sorted(
                set(launched) | set(terminate(aws, oneoff.run_id))
            )  # by tag: also one whose launch answer was lost
            if ended:
                reporter.detail(f"terminated one-off instance {', '.join(ended)}")
