"""The local build instance: SSH, layers, teardown.

The sample playbooks baked for real on it: tests/integration/bake/test_provision_speed.py.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.bakes import default_sigint
from toolkit.hosts.sandbox import Instance, build_instance, leftovers

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent


def ssh(instance: Instance, key: Path, command: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            "ssh",
            "-i",
            str(key),
            "-p",
            str(instance.port),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "BatchMode=yes",
            f"{instance.user}@{instance.host}",
            command,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def public(key: Path) -> str:
    return key.with_suffix(".pub").read_text()


def assert_clean(upper: Path, key: Path) -> None:
    assert leftovers(upper) == {"mounts": [], "processes": []}
    authorized = upper / "home/admin/.ssh/authorized_keys"
    assert not authorized.exists() or public(key).split()[1] not in authorized.read_text()
    assert not list((upper / "etc/ssh").glob("ssh_host_*"))
    assert sorted(p.name for p in upper.parent.iterdir()) == [upper.name]


def test_answers_ssh_with_sudo_and_keeps_writes(rootfs, ssh_key, tmp_path):
    upper = tmp_path / "upper"
    with build_instance([rootfs], upper, public(ssh_key)) as instance:
        assert instance.host == "127.0.0.1" and instance.user == "admin"
        result = ssh(instance, ssh_key, "sudo -n true && echo baked | sudo tee /etc/rodeo-test >/dev/null && hostname")
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
        assert leftovers(upper)["processes"]
    assert (upper / "etc/rodeo-test").read_text() == "baked\n"
    assert not (rootfs / "etc/rodeo-test").exists()
    assert_clean(upper, ssh_key)


def test_exception_inside_still_tears_down(rootfs, ssh_key, tmp_path):
    upper = tmp_path / "upper"
    with pytest.raises(RuntimeError, match="boom"):
        with build_instance([rootfs], upper, public(ssh_key)) as instance:
            assert ssh(instance, ssh_key, "true").returncode == 0
            raise RuntimeError("boom")
    assert_clean(upper, ssh_key)


def test_layers_stack_bottom_first(rootfs, ssh_key, tmp_path):
    first, second = tmp_path / "first" / "upper", tmp_path / "second" / "upper"
    with build_instance([rootfs], first, public(ssh_key)) as instance:
        assert (
            ssh(instance, ssh_key, "echo one | sudo tee /etc/layer >/dev/null && sudo touch /etc/gone").returncode == 0
        )
    with build_instance([rootfs, first], second, public(ssh_key)) as instance:
        result = ssh(instance, ssh_key, "cat /etc/layer && sudo rm /etc/gone")
        assert result.returncode == 0, result.stderr
        assert result.stdout == "one\n"
    assert (first / "etc/gone").exists()
    assert not (second / "etc/layer").exists()
    assert_clean(second, ssh_key)


HOLDER = """
import sys, time
from pathlib import Path
from toolkit.hosts.sandbox import build_instance
with build_instance([Path(sys.argv[1])], Path(sys.argv[2]), sys.argv[3]) as instance:
    print(instance.port, flush=True)
    time.sleep(600)
"""


def _hold(rootfs: Path, upper: Path, key: Path) -> subprocess.Popen:
    """A Python process holding a build instance until it is signalled."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(rootfs), str(upper), public(key)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )
    assert holder.stdout.readline().strip().isdigit()
    assert leftovers(upper)["processes"]
    return holder


def test_ctrl_c_tears_down(rootfs, ssh_key, tmp_path):
    upper = tmp_path / "upper"
    holder = _hold(rootfs, upper, ssh_key)
    try:
        holder.send_signal(signal.SIGINT)
        assert holder.wait(timeout=15) != 0
    finally:
        holder.kill()  # a failed test must not leave the instance running (its death takes the namespace along)
        holder.wait()
    assert_clean(upper, ssh_key)


def test_nothing_outlives_a_killed_python(rootfs, ssh_key, tmp_path):
    upper = tmp_path / "upper"
    holder = _hold(rootfs, upper, ssh_key)
    holder.kill()
    holder.wait()
    deadline = time.monotonic() + 5
    while leftovers(upper)["processes"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert leftovers(upper) == {"mounts": [], "processes": []}
