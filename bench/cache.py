#!/usr/bin/env python3
"""Bake cache and layered images: what a rebake costs (issue 4, "Benchmark").

Run (as root, after ``make setup``; the Debian rootfs is built once if missing):

    .venv/bin/python bench/cache.py --runs 3

Everything runs in a temp copy of the project (``tests.integration.bakes.Project``)
against one moto server the benchmark starts in a state dir of its own and stops
at the end. Each kind is ``invoke ... --json`` as a subprocess, timed end to end
(the whole CLI, Python start included):

1. full:   ``invoke bake --image app`` after appending a counter comment to
           the base role's defaults: base and app hashes change, both bake.
2. hit:    ``invoke bake --image app`` again, inputs unchanged: a cache hit.
3. layered: a new version of the app's own code (a counter comment appended to
           examples/webapp/app.py, the app image's app source: what a new commit in
           a team's repository is), ``invoke bake --image app``: base is a cache hit,
           only app bakes (its overlay on base's layers).
4. mono:   the same kind of change, ``invoke bake --env mono --image mono --force``:
           an env made here (local's settings and group_vars, image ``mono`` from the
           Debian seed with playbooks/mono.yml = base.yml + app.yml, tests
           test_app.py): the app's change baked without layering.

``--seed cloud`` bakes both from a seed like a Debian cloud image on EC2
instead of the local root file system as it is: image ``cloud``, layered on
the seeded AMI, removes the agent packages the local root file system comes
with (python3-boto3, python3-systemd and what only they needed) and the apt
package lists, so the base role installs them as it does on EC2 (``apt-get
update`` and the downloads from deb.debian.org: the package registry, the
only network this uses). ``base`` and ``mono`` are layered on ``cloud``,
which is baked first (untimed) and then a cache hit.

One untimed warm-up of kinds 1 and 4, then N rounds of 1, 2, 3, 4 (3 and 4
alternate). Prints each run with the load average, a table (median, min, max),
hit time against the 1 s goal (issue 13: whole CLI, Python start included),
layered/mono against the 0.4 goal, and the medians of the ``phases`` of the
bakes each kind made (kind 1: base + app summed).

``--parallel`` measures instead two independent images (issue 13, item 4):
``left`` and ``right``, both the sample's base (its playbook and tests) from the
Debian seed, baked one after the other (``invoke bake --image left,right
--force --jobs 1``) against at once (the same without ``--jobs 1``), N rounds
alternating. Prints each run, the
medians, parallel/sequential, and how long the two Packer runs overlapped (from
the bakes' records).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.integration.bakes import CACHE, Project  # noqa: E402
from toolkit.hosts import sandbox  # noqa: E402
from toolkit.local import stack  # noqa: E402

REGION = "us-east-1"
KINDS = ("full", "hit", "layered", "mono")
LABELS = {
    "full": "1 full app bake (base + app)",
    "hit": "2 cache hit (whole CLI)",
    "layered": "3 new app code, layered",
    "mono": "4 new app code, monolithic",
}
BASE_FILE = "playbooks/roles/base/defaults/main.yml"  # changed for kind 1: base and app rebake
CLOUD_PLAYBOOK = """---
# bench/cache.py --seed cloud: the local root file system made like a Debian cloud image on EC2,
# which has neither the instance agents' packages nor fresh package lists.
- name: Seed like a cloud image
  hosts: all
  gather_facts: false
  become: true
  tasks:
    - name: No agent packages
      ansible.builtin.apt: {name: [python3-boto3, python3-systemd], state: absent, purge: true, autoremove: true}
    - name: No package lists
      ansible.builtin.shell: rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
      changed_when: true
"""
CLOUD_TESTS = """def test_the_agent_packages_are_absent(host):
    assert not host.package("python3-boto3").is_installed and not host.package("python3-systemd").is_installed
"""
APP_FILE = "examples/webapp/app.py"  # the app source (images.app.app_source)
ORDER = ("render", "boot", "provision", "verify", "seal", "snapshot")
PAIR = ("left", "right")  # --parallel: two independent images


def make_cloud_seed(project: Project) -> None:
    """Image ``cloud`` on the seeded AMI, like a cloud image (no agent packages, no package lists); base on it."""
    project.write("playbooks/cloud.yml", CLOUD_PLAYBOOK)
    project.write("tests/image/test_cloud.py", CLOUD_TESTS)
    cfg = yaml.safe_load(project.read("inventories/local/rodeo.yml"))
    base = cfg["images"]["base"]
    cloud = {
        "source_ami": base.pop("source_ami"),
        "playbook": "playbooks/cloud.yml",
        "tests": "tests/image/test_cloud.py",
        "instance_type": base["instance_type"],
        "ssh_username": base["ssh_username"],
    }
    cfg["images"] = {
        "cloud": cloud,
        "base": dict(base, parent="cloud"),
        **{k: v for k, v in cfg["images"].items() if k != "base"},
    }
    project.write("inventories/local/rodeo.yml", yaml.safe_dump(cfg, sort_keys=False))


def make_mono(project: Project) -> None:
    """inventories/mono: local's settings and group_vars, one image ``mono`` = base + app on the same seed as base."""
    cfg = yaml.safe_load(project.read("inventories/local/rodeo.yml"))
    base = cfg["images"]["base"]
    app_source = cfg["images"]["app"]["app_source"]  # the app's code: the app role installs it
    mono = dict(base, playbook="playbooks/mono.yml", tests="tests/image/test_app.py", app_source=app_source)
    cfg["images"] = {"cloud": cfg["images"]["cloud"], "mono": mono} if "cloud" in cfg["images"] else {"mono": mono}
    cfg.pop("release", None)  # nothing to release; keeps `invoke bake --env mono` from seeding slots
    (project.root / "inventories/mono").mkdir()
    shutil.copytree(project.root / "inventories/local/group_vars", project.root / "inventories/mono/group_vars")
    project.write("inventories/mono/rodeo.yml", yaml.safe_dump(cfg, sort_keys=False))
    project.write(
        "playbooks/mono.yml",
        "---\n# base and app in one image, no layering (bench/cache.py)\n"
        "- import_playbook: base.yml\n- import_playbook: app.yml\n",
    )


def bakes(project: Project) -> set[str]:
    folder = project.state / "bakes"
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def run(project: Project, kind: str, counter: int) -> dict:
    """One run of ``kind``: wall seconds, the CLI's record, and the phases of the bakes it made."""
    if kind == "full":
        project.append(BASE_FILE, f"# bench {counter}\n")
    elif kind in ("layered", "mono"):
        project.append(APP_FILE, f"# bench {counter}\n")
    args = {
        "full": ["--image", "app"],
        "hit": ["--image", "app"],
        "layered": ["--image", "app"],
        "mono": ["--env", "mono", "--image", "mono", "--force"],
    }[kind]
    before = bakes(project)
    t0 = time.perf_counter()
    proc = project.invoke("bake", *args, "--json", timeout=1200)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{kind}: invoke bake {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    record = json.loads(proc.stdout.strip().splitlines()[-1])
    made = sorted(bakes(project) - before)
    expect = {"full": 2, "hit": 0, "layered": 1, "mono": 1}[kind]
    if bool(record["cached"]) != (kind == "hit") or len(made) != expect:
        sys.exit(f"{kind}: expected {expect} bake(s) (cached={kind == 'hit'}), got {made} (cached={record['cached']})")
    phases: dict[str, float] = {}
    for name in made:
        for k, v in json.loads((project.state / "bakes" / name / "bake.json").read_text())["phases"].items():
            phases[k] = phases.get(k, 0.0) + v
    return {"wall": wall, "record": record, "made": made, "phases": phases, "load": os.getloadavg()[0]}


def make_pair(project: Project) -> None:
    """Images ``left`` and ``right``: the sample's base twice, each from the Debian seed (no parent to share)."""
    cfg = yaml.safe_load(project.read("inventories/local/rodeo.yml"))
    for name in PAIR:
        cfg["images"][name] = dict(cfg["images"]["base"])
    project.write("inventories/local/rodeo.yml", yaml.safe_dump(cfg, sort_keys=False))


def run_pair(project: Project, how: str) -> dict:
    """Bake ``left`` and ``right`` (forced) one after the other or at once: wall seconds and the Packer runs' windows."""
    args = ["--image", ",".join(PAIR), "--jobs", "1" if how == "sequential" else "0"]
    t0 = time.perf_counter()
    proc = project.invoke("bake", *args, "--force", "--json", timeout=1200)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{how}: invoke bake {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    records = [o["result"] for o in json.loads(proc.stdout.strip().splitlines()[-1])["images"]]
    windows = [json.loads((Path(r["artifacts"]) / "bake.json").read_text())["packer_window"] for r in records]
    overlap = max(0.0, min(w[1] for w in windows) - max(w[0] for w in windows))
    return {"wall": wall, "overlap": overlap, "packer": [w[1] - w[0] for w in windows], "load": os.getloadavg()[0]}


def parallel_figure(project: Project, runs: int, warmup: bool) -> None:
    """Two independent images: at once against one after the other."""
    make_pair(project)
    if warmup:
        print(f"warm-up parallel: {run_pair(project, 'parallel')['wall']:.1f}s", flush=True)
    results: dict[str, list[dict]] = {"sequential": [], "parallel": []}
    print(f"\n{'run':>3}  {'sequential s':>12}  {'parallel s':>10}  {'overlap s':>9}  load(1m)", flush=True)
    for i in range(1, runs + 1):
        for how in ("sequential", "parallel"):
            results[how].append(run_pair(project, how))
        seq, par = results["sequential"][-1], results["parallel"][-1]
        print(
            f"{i:>3}  {seq['wall']:12.2f}  {par['wall']:10.2f}  {par['overlap']:9.2f}  {seq['load']:.1f} {par['load']:.1f}",
            flush=True,
        )
    seq, par = (med([r["wall"] for r in results[how]]) for how in ("sequential", "parallel"))
    packer = {how: med([sum(r["packer"]) / 2 for r in results[how]]) for how in results}
    print(
        f"\ntwo independent images: parallel {par:.2f}s, sequential {seq:.2f}s (medians) -> parallel/sequential = {par / seq:.2f}"
    )
    print(
        f"one Packer run, median: {packer['sequential']:.2f}s alone, {packer['parallel']:.2f}s beside the other;"
        f" overlap median {med([r['overlap'] for r in results['parallel']]):.2f}s"
    )


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each kind (default 3)")
    parser.add_argument("--no-warmup", action="store_true", help="skip the untimed warm-up bakes")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (project copy, logs, bake folders)")
    parser.add_argument(
        "--parallel", action="store_true", help="only: two independent images at once against one after the other"
    )
    parser.add_argument(
        "--seed",
        choices=("local", "cloud"),
        default="local",
        help="local: the local root file system as it is (agent packages included); cloud: like a Debian cloud image on EC2",
    )
    args = parser.parse_args()
    sandbox.check_host()
    sandbox.ensure_rootfs(sandbox.rootfs_path(CACHE))
    if shutil.which("packer") is None:
        sys.exit("packer is not installed (make setup)")
    tmp = Path(tempfile.mkdtemp(prefix="rodeo-bench-cache-"))
    st = stack.Stack(state_dir=tmp / "state", cache_dir=CACHE)
    load0 = os.getloadavg()
    try:
        url = stack.up(st, REGION)
        project = Project(tmp / "project", st.state_dir)
        if args.seed == "cloud":
            make_cloud_seed(project)
        make_mono(project)
        if args.seed == "cloud":  # the seed of each env, baked once, untimed
            for env in ("local", "mono"):
                proc = project.invoke("bake", "--env", env, "--image", "cloud", timeout=1200)
                if proc.returncode != 0:
                    sys.exit(f"the cloud-like seed ({env}) failed to bake:\n{proc.stderr[-3000:]}")
        print(
            f"seed {args.seed}, moto at {url}, temp dir {tmp}, {os.cpu_count()} cores, load average {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}",
            flush=True,
        )
        if args.parallel:
            parallel_figure(project, args.runs, not args.no_warmup)
            load1 = os.getloadavg()
            print(
                f"\nload average: start {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}, end {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}"
            )
            return
        counter = 0
        if not args.no_warmup:
            for kind in ("full", "mono"):
                counter += 1
                print(f"warm-up {kind}: {run(project, kind, counter)['wall']:.1f}s", flush=True)
        results: dict[str, list[dict]] = {k: [] for k in KINDS}
        print(f"\n{'run':>3}  " + "  ".join(f"{k + ' s':>9}" for k in KINDS) + "  load(1m)", flush=True)
        for i in range(1, args.runs + 1):
            loads = []
            for kind in KINDS:
                counter += 1
                results[kind].append(run(project, kind, counter))
                loads.append(results[kind][-1]["load"])
            print(
                f"{i:>3}  "
                + "  ".join(f"{results[k][-1]['wall']:9.2f}" for k in KINDS)
                + "  "
                + " ".join(f"{x:.1f}" for x in loads),
                flush=True,
            )
        walls = {k: [r["wall"] for r in results[k]] for k in KINDS}
        print(f"\n{'kind':<30} {'median s':>9} {'min s':>8} {'max s':>8}")
        for k in KINDS:
            print(f"{LABELS[k]:<30} {med(walls[k]):9.2f} {min(walls[k]):8.2f} {max(walls[k]):8.2f}")
        hit, layered, mono, full = (med(walls[k]) for k in ("hit", "layered", "mono", "full"))
        print(
            f"\ncache hit: {hit:.2f}s wall -> goal (< 1 s) {'MET' if hit < 1 else 'NOT MET'}"
            f"  (bake() itself {med([r['record']['duration_s'] for r in results['hit']]):.2f}s,"
            f" CLI start + config + stack check {med([r['wall'] - r['record']['duration_s'] for r in results['hit']]):.2f}s)"
        )
        print(
            f"layered / monolithic = {layered / mono:.3f} ({layered:.2f}s / {mono:.2f}s)"
            f" -> goal (<= 0.4) {'MET' if layered / mono <= 0.4 else 'NOT MET'}"
        )
        print(f"full / layered = {full / layered:.2f}; hit / full = {hit / full:.3f}")
        print("\nphases, median s (of the bakes each run made)")
        for k in ("full", "layered", "mono"):
            rs = results[k]
            names = sorted(
                {n for r in rs for n in r["phases"]}, key=lambda n: (ORDER.index(n) if n in ORDER else 99, n)
            )
            phases = ", ".join(f"{n} {med([r['phases'].get(n, 0.0) for r in rs]):.2f}" for n in names)
            inside = med([sum(r["phases"].values()) for r in rs])
            outside = med([r["wall"] - sum(r["phases"].values()) for r in rs])
            print(f"  {k:<8} {phases}  | sum {inside:.2f}, rest of wall {outside:.2f}")
        load1 = os.getloadavg()
        print(
            f"\nload average: start {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}, end {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}"
        )
    finally:
        stack.down(st)
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
