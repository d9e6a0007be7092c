#!/usr/bin/env python3
"""What ``invoke deploy`` costs beyond the work it has to do (issue 11, "Measure").

Run (as root, after ``make setup``):

    .venv/bin/python bench/deploy.py --runs 3

In a temp copy of the project (``tests.integration.bakes.Project``) with a
live local stack of its own (booted instances behind HAProxy), stopped at the
end. Each run is ``invoke deploy --json`` as a subprocess, timed end to end
(the whole CLI, Python start included):

1. unchanged: nothing changed since the last deploy: the bake is a cache hit
   and the release finds the AMI already live. All of it is overhead.
2. new version: ``examples/webapp/VERSION`` changes: the app image rebakes
   (base reused) and the release goes through its steps. Reported: the
   bake's time, the release's time, the release's pauses (steps x
   ``pause_seconds``, which a user chose), and the release's time beyond its
   pauses (scale-up, health, smoke check, weights, drain).

One untimed warm-up deploy first (bakes base and app, first release).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.integration.bakes import Project  # noqa: E402


def deploy(project: Project) -> tuple[float, dict]:
    started = time.monotonic()
    out = project.invoke("deploy", "--json", env={"RODEO_LOCAL_LIVE": "1"}, timeout=900)
    took = time.monotonic() - started
    if out.returncode != 0:
        sys.exit(f"deploy failed:\n{out.stderr[-3000:]}")
    return took, json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    top = Path(tempfile.mkdtemp(prefix="rodeo-bench-deploy-"))
    project = Project(top / "project", top / "state")
    cfg = yaml.safe_load(project.read("inventories/local/rodeo.yml"))
    pause, steps = cfg["release"]["pause_seconds"], len(cfg["release"]["steps"])
    try:
        print(f"warm-up deploy (load {os.getloadavg()[0]:.2f})", flush=True)
        deploy(project)
        rows: dict[str, list[dict]] = {"unchanged": [], "new version": []}
        for i in range(args.runs):
            took, result = deploy(project)
            rows["unchanged"].append({"wall": took})
            print(f"  unchanged    {took:6.2f}s  release {result['release']['outcome']}  (load {os.getloadavg()[0]:.2f})", flush=True)
            project.write("examples/webapp/VERSION", f"1.{i + 1}.0\n")
            took, result = deploy(project)
            release = result["release"]
            row = {"wall": took, "bake": result["bake"]["duration_s"], "release": release["seconds"], "pauses": steps * pause}
            row["beyond pauses"] = row["release"] - row["pauses"]
            rows["new version"].append(row)
            print(f"  new version  {took:6.2f}s  bake {row['bake']:.1f}s  release {row['release']:.1f}s "
                  f"(pauses {row['pauses']}s, beyond {row['beyond pauses']:.1f}s)  (load {os.getloadavg()[0]:.2f})", flush=True)
        print(f"\nmedians of {args.runs} runs ({steps} steps x {pause}s pauses):")
        for kind, runs in rows.items():
            keys = [k for k in runs[0]]
            print(f"  {kind:12} " + "  ".join(f"{k} {statistics.median(r[k] for r in runs):.2f}s" for k in keys))
    finally:
        subprocess.run([str(project.venv_bin / "invoke"), "local.down"], cwd=project.root, env=project.env(), capture_output=True)
        shutil.rmtree(top, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
