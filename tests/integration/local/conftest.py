"""Fixtures for the live local stack: the sample images' layers, and leftover counts."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from toolkit import procs
from toolkit.errors import SandboxError, StackError
from toolkit.hosts import sandbox
from toolkit.local import stack

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
        rootfs = sandbox.ensure_rootfs(CACHE / "rootfs-bookworm")
    except (SandboxError, StackError) as exc:
        pytest.skip(f"no live local stack here: {exc}")
    digest = hashlib.sha256()
    for path in sorted((ROOT / "playbooks").rglob("*")) + sorted((ROOT / "inventories/local/group_vars").rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(ROOT)).encode() + path.read_bytes())
    folder = CACHE / "live-test-layers" / digest.hexdigest()[:16]
    if not (folder / "done").exists():
        shutil.rmtree(folder, ignore_errors=True)
        _bake(rootfs, folder)
        (folder / "done").touch()
    return {"rootfs": rootfs, "base": folder / "base", "app": folder / "app"}


def _bake(rootfs: Path, folder: Path) -> None:
    work = Path(tempfile.mkdtemp(prefix="rodeo-layers-", dir="/tmp"))
    try:
        key = work / "id_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        public = key.with_suffix(".pub").read_text()
        with sandbox.build_instance([rootfs], folder / "base", public) as instance:
            _playbook(work, instance, key, "base.yml")
        with sandbox.build_instance([rootfs, folder / "base"], folder / "app", public) as instance:
            _playbook(work, instance, key, "app.yml")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _playbook(work: Path, instance, key: Path, playbook: str) -> None:
    inventory = work / "inventory"
    shutil.copytree(ROOT / "inventories/local/group_vars", inventory / "group_vars", dirs_exist_ok=True)
    (inventory / "hosts.ini").write_text(
        f"build ansible_host={instance.host} ansible_port={instance.port} ansible_user={instance.user} ansible_ssh_private_key_file={key}\n"
    )
    env = {"PATH": f"{BIN}:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(work), "ANSIBLE_HOST_KEY_CHECKING": "False",
           "ANSIBLE_PIPELINING": "True", "ANSIBLE_NOCOLOR": "1", "ANSIBLE_LOCAL_TEMP": str(work / "ansible-tmp"),
           "ANSIBLE_SSH_CONTROL_PATH_DIR": str(work / "cp")}
    cmd = [str(BIN / "ansible-playbook"), "-i", str(inventory), str(ROOT / "playbooks" / playbook)]
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def leftovers(st: stack.Stack) -> dict:
    """What a live stack left: its helper processes, its mounts, network namespaces named rodeo-* on the host."""
    needles = (str(st.state_dir), str(st.run_dir))
    found = [f"{pid} {cmdline[:160]}" for pid, cmdline, _ in procs.processes()
             if any(n in cmdline for n in needles) and any(h in cmdline for h in HELPERS) and procs.alive(pid)]
    netns = sorted(p.name for p in Path("/run/netns").glob("rodeo-*")) if Path("/run/netns").is_dir() else []
    return {"processes": found, "mounts": procs.mounts(needles), "netns": netns}


def host_pid_of_container(instance_id: str) -> int:
    """The host PID of an instance's systemd (the child of its systemd-nspawn)."""
    for pid, cmdline, _ in procs.processes():
        if cmdline.startswith("systemd-nspawn") and f"-M {instance_id}" in cmdline:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            if children:
                return int(children[0])
    raise AssertionError(f"no container for {instance_id}")
