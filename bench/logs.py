"""Logs without a jump box, measured: a request to the load balancer -> its line in `invoke logs --follow`.

Run (root, Linux; boots real instances): .venv/bin/python bench/logs.py [--requests 20] [--gap 2]

Starts a live local stack, releases a build of the sample app (its instances
ship their journal to CloudWatch Logs, here moto), starts the real CLI,
`invoke logs --follow --json --grep probe-`, and sends ``--requests`` GETs,
one every ``--gap`` seconds, each with a unique probe in its URL, to the
load balancer's loopback URL. For each it takes the time from sending the
request to reading its line on the CLI's stdout, and splits it at the time
CloudWatch accepted the line (the event's ingestionTime): the instance's
part (app -> journal -> shipper -> PutLogEvents) and `invoke logs`'s part
(FilterLogEvents polls -> printed). Prints median, p95 and max of each, and
how many lines never came (each request waits at most 30 s).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.integration.local.conftest import BIN, CACHE  # noqa: E402
from tests.support import livebuilds  # noqa: E402
from toolkit.hosts import sandbox  # noqa: E402
from toolkit.local import stack  # noqa: E402
from toolkit.logs import group  # noqa: E402
from toolkit.release import rollout  # noqa: E402
from toolkit.ui import Silent  # noqa: E402

WAIT = 30.0  # seconds a request's line may take before it counts as lost


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))]


def figures(name: str, values: list[float]) -> str:
    if not values:
        return f"{name:28} no data"
    return f"{name:28} median {statistics.median(values):5.2f}s  p95 {percentile(values, 95):5.2f}s  max {max(values):5.2f}s  (n={len(values)})"


class Follow:
    """`invoke logs --follow --json --grep probe-` as a child process; the wall time each probe's line came."""

    def __init__(self, project: Path, state: Path) -> None:
        env = dict(os.environ, RODEO_STATE_DIR=str(state), RODEO_CACHE_DIR=str(CACHE))
        self.proc = subprocess.Popen(
            [str(BIN / "invoke"), "logs", "--follow", "--json", "--since", "10s", "--grep", "probe-"],
            cwd=project,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.came: dict[str, float] = {}
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        for raw in self.proc.stdout:
            at = time.time()
            probe = _probe(json.loads(raw)["message"])
            if probe:
                self.came.setdefault(probe, at)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.thread.join(timeout=5)
        return self.proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--gap", type=float, default=2.0)
    args = parser.parse_args()
    if not 1 <= args.requests <= 500 or not 0.1 <= args.gap <= 60:
        raise SystemExit("--requests 1..500, --gap 0.1..60")
    stack.check_live_host()
    parts = livebuilds.sample_layers(ROOT, CACHE, sandbox.ensure_rootfs(sandbox.rootfs_path(CACHE)))
    print(f"load average at start: {Path('/proc/loadavg').read_text().strip()}")
    with (
        tempfile.TemporaryDirectory(prefix="rodeo-logs-bench-") as tmp,
        livebuilds.live_release(Path(tmp), ROOT, CACHE, pause=1) as (cfg, st, aws),
    ):
        folder, follow = Path(tmp), None
        try:
            urls = lambda: stack.listener_urls(st, "web")  # noqa: E731
            ami = livebuilds.build(st, aws.client("ec2"), parts, folder, "1.0.0")
            rollout.release(cfg, aws, ami=ami, reporter=Silent())
            lb = urls()[80]
            follow = Follow(folder / "project", st.state_dir)
            time.sleep(3.0)  # the CLI has started and polled once
            sent: dict[str, float] = {}
            for _ in range(args.requests):
                probe = uuid.uuid4().hex[:12]
                sent[probe] = time.time()
                with urllib.request.urlopen(f"{lb}/?probe-{probe}", timeout=5) as reply:
                    reply.read()
                time.sleep(args.gap)
            wait_until = time.monotonic() + WAIT
            while len(follow.came) < len(sent) and time.monotonic() < wait_until:
                time.sleep(0.2)
            came, code = dict(follow.came), follow.stop()
            follow = None
            ingested = accepted(aws, group.name(cfg), sent)
        finally:
            if follow is not None:
                follow.stop()
    print(f"load average at end: {Path('/proc/loadavg').read_text().strip()}")
    print(f"{args.requests} requests, one every {args.gap}s; invoke logs --follow exited {code} on Ctrl-C (SIGINT)")
    print(figures("request -> line printed", [came[p] - sent[p] for p in sent if p in came]))
    print(figures("  request -> CloudWatch", [ingested[p] - sent[p] for p in sent if p in ingested]))
    print(figures("  CloudWatch -> printed", [came[p] - ingested[p] for p in sent if p in came and p in ingested]))
    print(f"lost (no line within {WAIT:.0f}s): {sum(1 for p in sent if p not in came)}")


def accepted(aws, log_group: str, sent: dict[str, float]) -> dict[str, float]:
    """Probe -> when CloudWatch accepted its line (the event's ingestionTime, epoch seconds)."""
    pages = (
        aws.client("logs")
        .get_paginator("filter_log_events")
        .paginate(logGroupName=log_group, startTime=int(min(sent.values()) * 1000) - 1000)
    )
    out = {}
    for page in pages:
        for event in page["events"]:
            probe = _probe(event["message"])
            if probe in sent:
                out[probe] = event["ingestionTime"] / 1000
    return out


def _probe(message: str) -> str | None:
    """The probe id in a request line (``GET /?probe-<id> HTTP/1.1``), or None."""
    _, found, rest = message.partition("probe-")
    return rest[:12] if found else None


if __name__ == "__main__":
    main()
