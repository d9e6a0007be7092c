#!/usr/bin/env python3
"""Wall time of ``invoke bake --image base`` against the hand-made equivalent (issue 2).

Run (as root, after ``make setup``; the Debian rootfs is built once if missing):

    .venv/bin/python bench/bake.py --runs 5

Both sides do the same real work on this machine, against one moto server the
benchmark starts in a state dir of its own (a live one): boot a build instance
(Packer's RunInstances, booted under systemd-nspawn with cloud-init on the
cached rootfs with a fresh upper layer), provision it with
playbooks/base.yml, verify it with tests/image/test_base.py, and register a
tagged AMI with Packer's amazon-ebs builder.

* Rodeo: ``invoke bake --image base --json`` as a subprocess (whole CLI,
  RODEO_STATE_DIR pointing at the benchmark's stack), timed end to end.
* Hand-made: what a user would script instead: ssh-keygen, import the key pair
  into moto, then ``packer build`` of the hand-written template below (its
  build instance boots on the live stack like Rodeo's, reached through the
  same relay, ``toolkit.hosts.instance``), whose shell-local steps call
  ``ansible-playbook`` and ``pytest --hosts=ssh://...`` directly. Timed from
  ssh-keygen until the build instance and key pair are gone.

One untimed warm-up of each side, then N timed runs alternating R, H, R, H...
Prints each run, the medians, Rodeo/hand-made, Rodeo's phases (``phases``
of its ``--json`` record) and how its provisioning ran (``provision`` of
``bake.json``: Mitogen, or the fallback). The goal (issue 13): Rodeo at most
0.70x the hand-made bake. Both sides start from the same source image (the
local Debian AMI) and do the same work; the hand-made one keeps what a user
would write, ControlPersist included.

``--fixed`` measures instead the fixed costs of a bake, each alone, N times
(median): CLI start, config, stack check, render (plan), Packer start,
ansible-runner start, pytest start, a step's start, a new SSH login against a
session on a master connection, and the seal's scan (the whole disk, as
before, against the files changed during the bake). It uses only what both
old and new Rodeo have, so the same file run in a checkout of an older
commit gives that commit's figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from toolkit.aws import Aws  # noqa: E402
from toolkit.hosts import instance, sandbox  # noqa: E402
from toolkit.local import buildinstances, seed, stack  # noqa: E402
from toolkit.local.environment import LocalEnvironment  # noqa: E402

VENV_BIN = Path(sys.executable).parent
CACHE = Path(os.environ.get("RODEO_CACHE_DIR", Path.home() / ".cache" / "rodeo"))
REGION = "us-east-1"
# The source image both sides bake from (an older Rodeo, run with this file for its figures, named it so).
ROOTFS = sandbox.rootfs_path(CACHE) if hasattr(sandbox, "rootfs_path") else CACHE / "rootfs-bookworm"
# testinfra 10.2 ignores --ssh-extra-args, so host-key and multiplexing options go in an ssh config.
SSH_CONFIG = (
    "Host *\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n"
    "  ControlMaster auto\n  ControlPath /tmp/hand-ssh-%C\n  ControlPersist 30s\n"
)

HAND_TEMPLATE = r"""
variable "endpoint" { type = string }
variable "source_ami" { type = string }
variable "ssh_port" { type = number }
variable "key_file" { type = string }
variable "key_name" { type = string }
variable "work" { type = string }
variable "git_sha" { type = string }
variable "inputs_hash" { type = string }
variable "built_at" { type = string }
variable "bake_id" { type = string }

locals {
  tags = {
    "rodeo:app" = "web", "rodeo:image" = "base", "rodeo:git-sha" = var.git_sha,
    "rodeo:source-ami" = var.source_ami, "rodeo:inputs-hash" = var.inputs_hash, "rodeo:verified" = "true",
    "rodeo:toolkit-version" = "hand-made", "rodeo:built-at" = var.built_at,
  }
}

source "amazon-ebs" "base" {
  ami_name                   = "hand-base-${formatdate("YYYYMMDDhhmmss", timestamp())}-${var.ssh_port}"
  region                     = "us-east-1"
  source_ami                 = var.source_ami
  instance_type              = "t3.micro"
  encrypt_boot               = true
  custom_endpoint_ec2        = var.endpoint
  skip_region_validation     = true
  skip_metadata_api_check    = true
  skip_credential_validation = true
  communicator               = "ssh"
  ssh_username               = "admin"
  ssh_host                   = "127.0.0.1"
  ssh_port                   = var.ssh_port
  ssh_keypair_name           = var.key_name
  ssh_private_key_file       = var.key_file
  run_tags                   = { Name = "hand-bake", "rodeo:bake" = var.bake_id }
  tags                       = local.tags
  snapshot_tags              = local.tags
  launch_block_device_mappings {
    device_name = "/dev/xvda"
    volume_size = 8
    volume_type = "gp3"
    throughput = 125
    iops = 3000
    delete_on_termination = true
  }
}

build {
  sources = ["source.amazon-ebs.base"]
  provisioner "shell-local" {
    environment_vars = ["ANSIBLE_PIPELINING=True", "ANSIBLE_HOST_KEY_CHECKING=False"]
    inline = ["ansible-playbook -i '${var.work}/inventory/hosts.ini' --private-key '${var.key_file}' playbooks/base.yml"]
  }
  provisioner "shell-local" {
    inline = ["pytest -q -p no:cacheprovider --hosts=ssh://admin@${build.Host}:${build.Port} --ssh-identity-file='${var.key_file}' --ssh-config='${var.work}/ssh_config' tests/image/test_base.py"]
  }
  post-processor "manifest" { output = "${var.work}/manifest.json" }
}
"""


def rodeo(state: Path) -> tuple[float, dict]:
    """``invoke bake --image base --json [--force]``: wall seconds and the bake's record."""
    env = dict(
        os.environ, RODEO_STATE_DIR=str(state), RODEO_CACHE_DIR=str(CACHE), PATH=f"{VENV_BIN}:{os.environ['PATH']}"
    )
    env.pop("RODEO_DEBUG", None)
    invoke = str(VENV_BIN / "invoke")
    # Where bake reuses an AMI of unchanged inputs, --force makes it do the real work every run.
    force = (
        ["--force"]
        if "--force" in subprocess.run([invoke, "--help", "bake"], cwd=ROOT, capture_output=True, text=True).stdout
        else []
    )
    t0 = time.perf_counter()
    proc = subprocess.run(
        [invoke, "bake", "--image", "base", "--json", *force],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"invoke bake failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    record = json.loads(proc.stdout.strip().splitlines()[-1])
    if record.get("cached"):
        sys.exit("invoke bake reused a cached AMI instead of baking; the comparison needs a real bake")
    return wall, record


def hand(work: Path, aws: Aws, source_ami: str, template: Path, live_dir: Path) -> tuple[float, dict]:
    """The hand-made bake in ``work``: wall seconds and {setup, packer} seconds."""
    work.mkdir(parents=True)
    env = dict(os.environ, **aws.env(), CHECKPOINT_DISABLE="1", PATH=f"{VENV_BIN}:{os.environ['PATH']}")
    t0 = time.perf_counter()
    key, key_name = work / "key", f"hand-{work.name}-{os.getpid()}"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    ec2 = aws.client("ec2")
    ec2.import_key_pair(KeyName=key_name, PublicKeyMaterial=key.with_suffix(".pub").read_bytes())
    bake_id = f"hand-{work.name}-{os.getpid()}"
    try:
        # The instance Packer launches boots on the live stack like Rodeo's (cloud-init writes the key pair's key);
        # its SSH reaches this side through the same relay (on EC2 Packer would SSH to its address).
        with instance.ssh_port(buildinstances.ssh_socket(bake_id), work) as (port, _):
            inventory = work / "inventory"
            inventory.mkdir()
            (inventory / "hosts.ini").write_text(
                f"[build]\nbuild-host ansible_host=127.0.0.1 ansible_port={port} ansible_user=admin\n"
            )
            (inventory / "group_vars").symlink_to(ROOT / "inventories/local/group_vars")
            (work / "ssh_config").write_text(SSH_CONFIG)
            git_sha = subprocess.run(
                ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True
            ).stdout.strip()
            values = {
                "endpoint": aws.endpoint,
                "source_ami": source_ami,
                "ssh_port": port,
                "key_file": str(key),
                "bake_id": bake_id,
                "key_name": key_name,
                "work": str(work),
                "git_sha": git_sha,
                "inputs_hash": hashlib.sha256((ROOT / "playbooks/base.yml").read_bytes()).hexdigest(),
                "built_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            t1 = time.perf_counter()
            cmd = ["packer", "build", "-color=false", *(f"-var={k}={v}" for k, v in values.items()), str(template)]
            proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
            t2 = time.perf_counter()
            if proc.returncode != 0:
                sys.exit(f"hand-made packer build failed:\n{proc.stdout[-3000:]}{proc.stderr[-2000:]}")
    finally:
        ever = bool(instance.launched(ec2, bake_id))
        instance.end_instances(ec2, bake_id)
        instance.take_disk(buildinstances.handed_over(live_dir, bake_id), work / "layer", ever)
        ec2.delete_key_pair(KeyName=key_name)
    wall = time.perf_counter() - t0
    return wall, {"setup": t1 - t0, "packer": t2 - t1, "teardown": wall - (t2 - t0)}


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def timed(fn, runs: int) -> float:
    """The median wall seconds of ``fn()`` over ``runs`` calls (one untimed call first)."""
    fn()
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return med(out)


def run_ok(cmd: list[str], **kwargs) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, **kwargs)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd[:4])} failed ({proc.returncode}):\n{proc.stdout[-1500:]}{proc.stderr[-1500:]}")


NULL_TEMPLATE = 'source "null" "x" {\n  communicator = "none"\n}\n\nbuild {\n  sources = ["source.null.x"]\n}\n'
EMPTY_PLAY = "- hosts: all\n  gather_facts: false\n  tasks: []\n"
PY = str(VENV_BIN / "python")


def fixed_costs(tmp: Path, st, aws: Aws, runs: int) -> list[tuple[str, float, str]]:
    """(what, median seconds, how it is measured) for each fixed cost of a bake."""
    env = dict(
        os.environ,
        RODEO_STATE_DIR=str(st.state_dir),
        RODEO_CACHE_DIR=str(CACHE),
        PATH=f"{VENV_BIN}:{os.environ['PATH']}",
        RODEO_LOCAL_LIVE="0",
        CHECKPOINT_DISABLE="1",
        PYTHONPATH=str(ROOT),
    )

    def py(code: str):
        return lambda: run_ok([PY, "-c", code], cwd=ROOT, env=env)

    (tmp / "null.pkr.hcl").write_text(NULL_TEMPLATE)
    (tmp / "empty.yml").write_text(EMPTY_PLAY)
    (tmp / "test_trivial.py").write_text("def test_nothing():\n    pass\n")
    (tmp / "runner").mkdir()
    load = "from pathlib import Path; from toolkit import config; cfg = config.load('local', Path('.'))"
    connect = (
        load
        + "; from toolkit.environment import connect; import os; aws = connect(cfg, Path(os.environ['RODEO_STATE_DIR']), Path(os.environ['RODEO_CACHE_DIR']), live=False)"
    )
    plan = (
        connect
        + "; from toolkit.bake.plan import gather, plan_bake; plan_bake(gather(cfg, aws, 'base', Path(os.environ['RODEO_STATE_DIR'])), cfg, Path(os.environ['RODEO_STATE_DIR']))"
    )
    runner = (
        "import ansible_runner; r = ansible_runner.run(private_data_dir='%s', playbook='%s', inventory='localhost ansible_connection=local',"
        " quiet=True, rotate_artifacts=1); assert r.status == 'successful', r.status"
    ) % (tmp / "runner", tmp / "empty.yml")
    rows = [
        (
            "CLI start",
            timed(lambda: run_ok([str(VENV_BIN / "invoke"), "--help", "bake"], cwd=ROOT, env=env), runs),
            "invoke --help bake",
        ),
        ("config", timed(py(load), runs), "python -c: import toolkit.config, load rodeo.yml"),
        ("stack check", timed(py(connect), runs), "python -c: config + toolkit.environment.connect (moto up, seeded)"),
        (
            "render (plan)",
            timed(py(plan), runs),
            "python -c: config + connect + gather + plan_bake (render cache warm)",
        ),
        (
            "Packer start",
            timed(
                lambda: run_ok(["packer", "build", "-machine-readable", str(tmp / "null.pkr.hcl")], cwd=tmp, env=env),
                runs,
            ),
            "packer build of a null source, nothing to do",
        ),
        (
            "ansible-runner start",
            timed(py(runner), runs),
            "python -c: ansible_runner.run of a play with no task (local)",
        ),
        (
            "pytest start",
            timed(
                lambda: run_ok(
                    [
                        PY,
                        "-m",
                        "pytest",
                        "-q",
                        "-p",
                        "no:cacheprovider",
                        "-o",
                        "addopts=",
                        str(tmp / "test_trivial.py"),
                    ],
                    cwd=tmp,
                    env=env,
                ),
                runs,
            ),
            "python -m pytest of one empty test (testinfra loaded)",
        ),
        (
            "a step's start (x3 a bake)",
            timed(lambda: run_ok([PY, "-m", "toolkit.bake.seal", "--help"], cwd=ROOT, env=env), runs),
            "python -m toolkit.bake.seal --help (interpreter and imports)",
        ),
    ]
    rows += host_costs(tmp, runs)
    return rows


def host_costs(tmp: Path, runs: int) -> list[tuple[str, float, str]]:
    """A new SSH login against a session on a master; the seal's scan: whole disk against changed files."""
    rootfs = ROOTFS
    key = tmp / "hostkey"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    (tmp / "ssh_config").write_text(
        f"Host *\n  IdentityFile {key}\n  User admin\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n"
        f"  LogLevel ERROR\n  ControlPath /tmp/rodeo-bench-%C\n"
    )
    marker = [ln for ln in key.read_text().splitlines() if ln and not ln.startswith("-----")][-2]

    def start_stop() -> None:
        with sandbox.build_instance([rootfs], tmp / "startlayer", key.with_suffix(".pub").read_text()):
            pass
        shutil.rmtree(tmp / "startlayer", ignore_errors=True)

    boot = timed(start_stop, runs)
    with sandbox.build_instance([rootfs], tmp / "hostlayer", key.with_suffix(".pub").read_text()) as inst:
        base = ["ssh", "-F", str(tmp / "ssh_config"), "-p", str(inst.port)]
        start = int(subprocess.run([*base, inst.host, "date +%s"], capture_output=True, text=True).stdout) - 5
        # What a bake changes: a few dozen files (here, a copy of /etc) after the bake began.
        run_ok([*base, inst.host, "sudo -n cp -a /etc /var/tmp/changed"])
        login = timed(lambda: run_ok([*base, "-o", "ControlMaster=no", inst.host, "true"]), runs)
        run_ok([*base, "-o", "ControlMaster=yes", "-o", "ControlPersist=60", "-f", "-N", inst.host])
        session = timed(lambda: run_ok([*base, inst.host, "true"]), runs)
        whole = timed(
            lambda: subprocess.run(
                [
                    *base,
                    inst.host,
                    "sudo -n grep -rlsF --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev "
                    "--exclude-dir=run -f - / || true",
                ],
                input=marker + "\n",
                capture_output=True,
                text=True,
            ),
            runs,
        )
        changed = float("nan")
        try:
            from toolkit.bake import seal
            from toolkit.hosts.ssh import SshHost

            host = SshHost(inst.host, inst.port, "admin", key)
            if "since" in seal.scan_host.__code__.co_varnames:
                changed = timed(lambda: seal.scan_host(host, tmp / "ssh_config", [("key", marker)], since=start), runs)
        finally:
            subprocess.run([*base, "-O", "exit", inst.host], capture_output=True)
    return [
        (
            "build instance start + stop",
            boot,
            "sandbox.build_instance on the Debian root file system (sshd up, then torn down)",
        ),
        ("SSH: a new login", login, "ssh ... true, no master (each of Ansible, testinfra, seal paid one before)"),
        ("SSH: a session on the master", session, "ssh ... true through the bake's master connection"),
        ("seal scan: whole disk", whole, "grep -rlsF -f - / on the build host (one pass per value, before)"),
        (
            "seal scan: changed files",
            changed,
            "toolkit.bake.seal.scan_host since the bake began (all values, one pass)",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each side (default 5)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, bake folders)")
    parser.add_argument("--fixed", action="store_true", help="measure each fixed cost of a bake instead (N runs each)")
    args = parser.parse_args()
    sandbox.check_host()
    sandbox.ensure_rootfs(ROOTFS)
    if shutil.which("packer") is None:
        sys.exit("packer is not installed (make setup)")
    tmp = Path(tempfile.mkdtemp(prefix="rodeo-bench-bake-"))
    st = stack.Stack(state_dir=tmp / "state", cache_dir=CACHE, live=True)  # both sides' build instances boot
    try:
        url = stack.up(st, REGION)
        aws = LocalEnvironment(region=REGION, endpoint=url)
        source_ami = seed.seed_base(st, aws)["base_ami"]
        template = tmp / "hand.pkr.hcl"
        template.write_text(HAND_TEMPLATE)
        print(
            f"moto at {url}, base AMI {source_ami}, temp dir {tmp}, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
            flush=True,
        )
        if args.fixed:
            rodeo(st.state_dir)  # a bake first: the stack seeded, the render cache warm
            print(f"\n{'fixed cost':<30} {'median s':>9}  how")
            for what, secs, how in fixed_costs(tmp, st, aws, args.runs):
                print(f"{what:<30} {secs:9.3f}  {how}", flush=True)
            print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
            return
        print("warm-up: rodeo ...", end=" ", flush=True)
        print(f"{rodeo(st.state_dir)[0]:.1f}s; hand-made ...", end=" ", flush=True)
        print(f"{hand(tmp / 'hand-warmup', aws, source_ami, template, st.live_dir)[0]:.1f}s", flush=True)
        r_wall, h_wall, records, h_parts = [], [], [], []
        print(f"\n{'run':>3}  {'rodeo s':>8}  {'hand s':>8}  {'ratio':>6}", flush=True)
        for i in range(1, args.runs + 1):
            wall, record = rodeo(st.state_dir)
            r_wall.append(wall)
            records.append(record)
            wall, parts = hand(tmp / f"hand-{i}", aws, source_ami, template, st.live_dir)
            h_wall.append(wall)
            h_parts.append(parts)
            print(f"{i:>3}  {r_wall[-1]:8.2f}  {h_wall[-1]:8.2f}  {r_wall[-1] / h_wall[-1]:6.3f}", flush=True)
        r, h = med(r_wall), med(h_wall)
        print(f"{'med':>3}  {r:8.2f}  {h:8.2f}  {r / h:6.3f}")
        print(
            f"\nRodeo/hand-made = {r / h:.3f} ({r - h:+.2f}s per bake) -> goal (<= 0.50) {'MET' if r / h <= 0.50 else 'NOT MET'}"
        )
        ran = [json.loads((Path(rec["artifacts"]) / "bake.json").read_text()).get("provision") or {} for rec in records]
        print(
            "Rodeo's provisioning: "
            + ", ".join(
                f"{p.get('strategy', '?')}" + (f" (fell back: {p['fallback']})" if p.get("fallback") else "")
                for p in ran
            )
        )
        phases = {k: med([rec["phases"].get(k, 0.0) for rec in records]) for k in records[0]["phases"]}
        in_bake = med([rec["duration_s"] for rec in records])
        outside = med([w - rec["duration_s"] for w, rec in zip(r_wall, records)])
        unphased = med([rec["duration_s"] - sum(rec["phases"].values()) for rec in records])
        print("Rodeo phases, median s: " + ", ".join(f"{k} {v:.2f}" for k, v in phases.items()))
        print(
            f"  bake() duration_s {in_bake:.2f} (of which outside the phases {unphased:.2f});"
            f" CLI start + config + stack check (wall - duration_s) {outside:.2f}"
        )
        print("Hand-made parts, median s: " + ", ".join(f"{k} {med([p[k] for p in h_parts]):.2f}" for k in h_parts[0]))
        print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        stack.down(st)
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
