#!/usr/bin/env python3
"""Config vars, measured: from `invoke config.set` to every instance serving the new value (issue 12, item 1).

Run (root, Linux; boots real instances): .venv/bin/python bench/config.py [--runs 3] [--pause 2]

Starts a live local stack (instances booted under systemd-nspawn, HAProxy as
the ALB), releases the sample app (tests/support/livebuilds.py), then per run
changes its greeting with the whole CLI (``invoke config.set GREETING=... --json``,
a subprocess, Python start included) while a poller asks the load balancer's
``/`` 20 times a second (loopback, new connection each, bounded in time) which
greeting answers. Per run:

- to all new: from the command's start until every answer shows the new value
  (the first moment after which no answer shows another);
- release pauses before it: the watch at each step below 100% (steps x
  ``pause_seconds``, which a user chose), taken out: the goal figure;
- the command's wall time, and the release's own time from its JSON record;
- that each instance of the live slot serves it (asked inside its namespace);
and, for the last run, the release's own progress lines (where its time went).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.integration.local.conftest import CACHE, in_instance  # noqa: E402
from tests.support import livebuilds  # noqa: E402
from toolkit.hosts import sandbox  # noqa: E402
from toolkit.local import stack  # noqa: E402
from toolkit.release import rollout, slots  # noqa: E402
from toolkit.ui import Silent  # noqa: E402

REGION = "us-east-1"
H1 = re.compile(r"<h1>(.*?)</h1>", re.S)


class Poller:
    """GET / on a loopback URL every ``interval`` s (new connection each) until stopped or ``max_seconds``; keeps (time, greeting)."""

    def __init__(self, port: int, interval: float = 0.05, max_seconds: float = 600) -> None:
        self.port, self.interval, self.max_seconds = port, interval, max_seconds
        self.samples: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "Poller":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        ends = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < ends:
            at = time.monotonic()
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/", headers={"Connection": "close"})
                found = H1.search(conn.getresponse().read().decode(errors="replace"))
                conn.close()
                self.samples.append((at, found.group(1) if found else "?"))
            except (OSError, http.client.HTTPException):
                self.samples.append((at, "error"))
            self._stop.wait(self.interval)

    def all_new_since(self, value: str) -> float | None:
        """The first moment after which every answer shows ``value`` (None if the last answer does not)."""
        last_other = None
        for at, seen in self.samples:
            if seen != value:
                last_other = at
        after = [at for at, _ in self.samples if last_other is None or at > last_other]
        return after[0] if after else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pause", type=int, default=2)
    args = parser.parse_args()
    stack.check_live_host()
    parts = livebuilds.sample_layers(ROOT, CACHE, sandbox.ensure_rootfs(sandbox.rootfs_path(CACHE)))
    rows = []
    with (
        tempfile.TemporaryDirectory(prefix="rodeo-bench-config-") as tmp,
        livebuilds.live_sample(Path(tmp), ROOT, CACHE, pause=args.pause) as live,
    ):
        cfg, aws, env = live.cfg, live.aws, live.env
        rollout.release(
            cfg, aws, ami=livebuilds.build(live.st, aws.client("ec2"), parts, Path(tmp), "1.0.0"), reporter=Silent()
        )
        port = int(live.urls()[80].rsplit(":", 1)[1])
        steps_below_100 = len([s for s in cfg.release.steps if s < 100])
        cli_env = dict(
            os.environ, RODEO_STATE_DIR=str(live.st.state_dir), RODEO_CACHE_DIR=str(CACHE), RODEO_LOCAL_LIVE="1"
        )
        for i in range(args.runs):
            value = f"Hello, run {i + 1}"
            load_before = os.getloadavg()[0]
            with Poller(port) as poller:
                started = time.monotonic()
                out = subprocess.run(
                    [str(livebuilds.BIN / "invoke"), "config.set", f"GREETING={value}", "--json"],
                    cwd=live.project,
                    env=cli_env,
                    capture_output=True,
                    text=True,
                    timeout=600,
                )
                wall = time.monotonic() - started
                time.sleep(1.0)
            if out.returncode != 0:
                sys.exit(f"config.set failed:\n{out.stderr[-3000:]}")
            record = json.loads(out.stdout.strip().splitlines()[-1])
            all_new = poller.all_new_since(value)
            if all_new is None:
                sys.exit(f"run {i + 1}: the load balancer never answered only {value!r}")
            to_all_new = all_new - started
            ids = slots.instance_ids(env, aws, slots.read(env, aws).active.name)
            served = sum(
                f"<h1>{value}</h1>" in in_instance(iid, "curl", "-sS", "http://127.0.0.1:8080/").stdout for iid in ids
            )
            pauses = steps_below_100 * args.pause
            rows.append(
                {
                    "to all new": to_all_new,
                    "pauses": pauses,
                    "goal (pauses excluded)": to_all_new - pauses,
                    "cli wall": wall,
                    "release": record["release"]["seconds"],
                }
            )
            print(
                f"  run {i + 1}: to all new {to_all_new:6.2f}s, pauses before it {pauses}s -> {to_all_new - pauses:6.2f}s; "
                f"cli {wall:.2f}s, release {record['release']['seconds']:.2f}s; config v{record['version']}; "
                f"{served}/{len(ids)} instances serve it; {len(poller.samples)} polls (load {load_before:.2f} -> {os.getloadavg()[0]:.2f})",
                flush=True,
            )
        print("  where the last run's release went (its progress lines):")
        for line in out.stderr.splitlines():
            if line.startswith(("✓", "✗")):
                print(f"    {line}")
    print(f"\nmedians of {args.runs} runs (steps {list(cfg.release.steps)}, pause_seconds {args.pause}):")
    for key in rows[0]:
        print(f"  {key:24} {statistics.median(r[key] for r in rows):6.2f}s")


if __name__ == "__main__":
    main()
