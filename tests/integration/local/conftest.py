"""Fixtures for the live local stack: the sample images' layers, and leftover counts."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support import livebuilds
from toolkit import procs
from toolkit.errors import SandboxError, StackError
from toolkit.hosts import sandbox
from toolkit.local import stack
from toolkit.local.awsrules import HEALTH_SCALE_ENV, SETTLE_ENV
from toolkit.local.environment import LocalEnvironment

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
CACHE = Path(os.environ.get("RODEO_CACHE_DIR", Path.home() / ".cache" / "rodeo"))
# What a live stack may leave behind, by command line.
HELPERS = ("systemd-nspawn", "haproxy", "socat", "toolkit.local.motoserver")


@pytest.fixture(scope="session")
def layers() -> dict[str, Path]:
    """``{"rootfs", "base", "app"}``: the sample playbooks baked as layers (cached by their content)."""
    try:
        sandbox.check_host()
        stack.check_live_host()
        rootfs = sandbox.ensure_rootfs(sandbox.rootfs_path(CACHE))
    except (SandboxError, StackError) as exc:
        pytest.fail(f"no live local stack here: {exc}", pytrace=False)
    return livebuilds.sample_layers(ROOT, CACHE, rootfs)


def leftovers(st: stack.Stack) -> dict:
    """What a live stack left: its helper processes, its mounts, network namespaces named rodeo-* on the host, its
    instances' cgroups (``toolkit.local.cgroups``: named after its run folder)."""
    needles = (str(st.state_dir), str(st.run_dir))
    found = [
        f"{pid} {cmdline[:160]}"
        for pid, cmdline, _ in procs.processes()
        if any(n in cmdline for n in needles) and any(h in cmdline for h in HELPERS) and procs.alive(pid)
    ]
    netns = sorted(p.name for p in Path("/run/netns").glob("rodeo-*")) if Path("/run/netns").is_dir() else []
    groups = sorted(str(p) for p in Path("/sys/fs/cgroup").glob(f"*/{st.run_dir.name}-*"))
    return {"processes": found, "mounts": procs.mounts(needles), "netns": netns, "cgroups": groups}


def host_pid_of_container(instance_id: str) -> int:
    """The host PID of an instance's systemd (the child of its systemd-nspawn)."""
    for pid, cmdline, _ in procs.processes():
        if cmdline.startswith("systemd-nspawn") and f"-M {instance_id}" in cmdline:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            if children:
                return int(children[0])
    raise AssertionError(f"no container for {instance_id}")


def in_instance(instance_id: str, *command: str) -> subprocess.CompletedProcess:
    """Run ``command`` inside an instance (all its namespaces: its own /run, its network)."""
    return subprocess.run(
        ["nsenter", "-t", str(host_pid_of_container(instance_id)), "-a", *command],
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.fixture(scope="module")
def bare_aws(tmp_path_factory):
    """Clients of a bare local-stack moto server of the module's own (no seeding, no live stack; default settling and health timing)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path_factory.mktemp("bare") / "moto.log"
    env = {k: v for k, v in os.environ.items() if k not in (SETTLE_ENV, HEALTH_SCALE_ENV)}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "toolkit.local.motoserver", "-H", "127.0.0.1", "-p", str(port)],
            env=dict(env, MOTO_EC2_LOAD_DEFAULT_AMIS="false"),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"the moto server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
    try:
        yield LocalEnvironment(region="us-east-1", endpoint=url)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
