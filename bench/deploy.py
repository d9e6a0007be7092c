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

With ``--procfile`` (issue 21, "Measure"): a fresh git repository holding
only the sample Procfile app (``examples/procfile-app``), named in three
lines of rodeo.yml; each run changes its VERSION, ``git commit``s, and times
from the commit to the load balancer's URL answering the new version (first
answer, and every answer: the deploy's end), with the bake, the release, its
release phase (the sample's ``release:`` line on a one-off instance) and its
pauses, and the load average before and after.
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
    parser.add_argument(
        "--procfile", action="store_true", help="time git commit -> served new version of a Procfile app"
    )
    args = parser.parse_args()
    if args.procfile:
        return procfile_main(args.runs)
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
            print(
                f"  unchanged    {took:6.2f}s  release {result['release']['outcome']}  (load {os.getloadavg()[0]:.2f})",
                flush=True,
            )
            project.write("examples/webapp/VERSION", f"1.{i + 1}.0\n")
            took, result = deploy(project)
            release = result["release"]
            row = {
                "wall": took,
                "bake": result["bake"]["duration_s"],
                "release": release["seconds"],
                "pauses": steps * pause,
            }
            row["beyond pauses"] = row["release"] - row["pauses"]
            rows["new version"].append(row)
            print(
                f"  new version  {took:6.2f}s  bake {row['bake']:.1f}s  release {row['release']:.1f}s "
                f"(pauses {row['pauses']}s, beyond {row['beyond pauses']:.1f}s)  (load {os.getloadavg()[0]:.2f})",
                flush=True,
            )
        print(f"\nmedians of {args.runs} runs ({steps} steps x {pause}s pauses):")
        for kind, runs in rows.items():
            keys = [k for k in runs[0]]
            print(f"  {kind:12} " + "  ".join(f"{k} {statistics.median(r[k] for r in runs):.2f}s" for k in keys))
    finally:
        subprocess.run(
            [str(project.venv_bin / "invoke"), "local.down"], cwd=project.root, env=project.env(), capture_output=True
        )
        shutil.rmtree(top, ignore_errors=True)
    return 0


def _git(repo: Path, *args: str) -> str:
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="bench",
        GIT_AUTHOR_EMAIL="b@example.com",
        GIT_COMMITTER_NAME="bench",
        GIT_COMMITTER_EMAIL="b@example.com",
    )
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env, timeout=60
    ).stdout.strip()


def _served_version(url: str) -> str | None:
    import urllib.request

    try:
        with urllib.request.urlopen(url + "/health", timeout=2) as answer:
            return json.loads(answer.read()).get("version")
    except (OSError, ValueError):
        return None


def _phase_seconds(project: Project, number: int) -> float:
    """How long release vNUMBER's release phase ran (its one-off instance's boot included), from ``invoke releases``."""
    out = project.invoke("releases", "--json", env={"RODEO_LOCAL_LIVE": "1"}, timeout=120)
    if out.returncode != 0:
        sys.exit(f"invoke releases failed:\n{out.stderr[-3000:]}")
    runs = json.loads(out.stdout.strip().splitlines()[-1])["releases"]
    phase = next(r["release_phase"] for r in runs if r["number"] == number)
    return float(phase["seconds"])


def procfile_main(runs: int) -> int:
    """git commit -> the URL serves the new version, for a Procfile app in a fresh repository."""
    import re
    import threading

    top = Path(tempfile.mkdtemp(prefix="rodeo-bench-procfile-"))
    shop = top / "shop"
    shutil.copytree(ROOT / "examples/procfile-app", shop)
    _git(shop, "init", "-q", "-b", "main")
    _git(shop, "add", "-A")
    _git(shop, "commit", "-q", "-m", "a Procfile app")
    project = Project(top / "project", top / "state")
    yml = project.read("inventories/local/rodeo.yml")
    yml, n = re.subn(
        r"\n  app:\n(?:    .*\n)+", f"\n  app:\n    parent: base\n    app_source: {{git: {shop}, ref: main}}\n", yml
    )
    assert n == 1, "no images.app block to replace in inventories/local/rodeo.yml"
    project.write("inventories/local/rodeo.yml", yml)
    cfg = yaml.safe_load(yml)
    pause, steps = cfg["release"]["pause_seconds"], len(cfg["release"]["steps"])
    rows = []
    try:
        print(f"warm-up deploy: bakes base and the app, first release (load {os.getloadavg()[0]:.2f})", flush=True)
        _, first = deploy(project)
        url = first["url"]
        for i in range(runs):
            version = f"2.{i}.0"
            (shop / "VERSION").write_text(version + "\n")
            _git(shop, "commit", "-q", "-am", f"version {version}")
            committed, load = time.monotonic(), os.getloadavg()[0]
            seen: dict[str, float] = {}
            done = threading.Event()

            def watch() -> None:
                while not done.is_set():
                    if "first" not in seen and _served_version(url) == version:
                        seen["first"] = time.monotonic() - committed
                    done.wait(0.25)

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            took, result = deploy(project)
            done.set()
            watcher.join()
            answers = [_served_version(url) for _ in range(20)]
            assert answers == [version] * 20, f"after the deploy the URL answers {answers}"
            ended = time.monotonic() - committed
            release = result["release"]
            row = {
                "commit -> first answer": seen.get("first", took),
                "commit -> all answers": ended,
                "bake": result["bake"]["duration_s"],
                "release": release["seconds"],
                "release phase": _phase_seconds(project, release["number"]),
                "pauses": float(steps * pause),
            }
            rows.append(row)
            print(
                f"  run {i + 1}: "
                + ", ".join(f"{k} {v:.1f}s" for k, v in row.items())
                + f"  (load {load:.2f} -> {os.getloadavg()[0]:.2f})",
                flush=True,
            )
        print(
            f"\nmedians of {runs} run(s), steps {cfg['release']['steps']} x {pause}s pauses, load average now {os.getloadavg()}:"
        )
        for key in rows[0]:
            print(f"  {key:24} {statistics.median(r[key] for r in rows):6.1f}s")
    finally:
        subprocess.run(
            [str(project.venv_bin / "invoke"), "local.down"],
            cwd=project.root,
            env=project.env(),
            capture_output=True,
            timeout=300,
        )
        shutil.rmtree(top, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
