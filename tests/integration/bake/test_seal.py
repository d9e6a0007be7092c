"""The seal on a build host where cloud-init wrote the key pair's key, as on EC2's Debian AMIs.

EC2's metadata serves the key pair's public key with the key pair's name as
its comment; cloud-init writes it into the SSH user's ``authorized_keys`` and,
behind its ``disable_root`` command, into root's. The seal must remove it from
both (and leave every other key), or fail.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from toolkit.bake import seal
from toolkit.errors import VerifyError
from toolkit.hosts.sandbox import build_instance
from toolkit.hosts.ssh import SshHost

pytestmark = pytest.mark.integration

BAKE_ID = "base-20261205-072600-abcd"
DISABLE_ROOT = (
    'no-port-forwarding,no-agent-forwarding,no-X11-forwarding,command="echo \'Please login as the user \\"admin\\" '
    'rather than the user \\"root\\".\';echo;sleep 10;exit 142" '
)
OTHER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtherTeamKeyThatMustStay0000000000000000 ops@example"


def bake_key(folder: Path) -> Path:
    key = folder / "ssh_key"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"rodeo-{BAKE_ID}", "-f", str(key)], check=True
    )
    return key


def as_ec2_serves(key: Path) -> str:
    """The key as EC2's metadata serves it: type, body and the key pair's name."""
    kind, body = key.with_suffix(".pub").read_text().split()[:2]
    return f"{kind} {body} rodeo-{BAKE_ID}"


def root_run(host: SshHost, cfg: Path, script: str) -> subprocess.CompletedProcess:
    return seal.ssh.run(host, cfg, "sudo -n sh -ec " + seal._quote(script), timeout=60)


def cloud_init_writes(host: SshHost, cfg: Path, served: str, other_key: str = OTHER_KEY) -> None:
    """What cloud-init's ssh module writes at first boot: the user's keys, and root's behind disable_root."""
    script = (
        f"install -d -m 700 /root/.ssh && printf '%s\\n' {seal._quote(other_key)} {seal._quote(DISABLE_ROOT + served)} > /root/.ssh/authorized_keys\n"
        f"printf '%s\\n' {seal._quote(other_key)} {seal._quote(served)} >> /home/admin/.ssh/authorized_keys\n"
    )
    result = root_run(host, cfg, script)
    assert result.returncode == 0, result.stderr


def in_instance(inst, path: str) -> str:
    """A file as the running instance sees it (its sshd's root), or "" when there is none."""

    def children(pid: str) -> list[str]:
        return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()

    shell = children(str(inst.pid))[0]  # the namespace's pid 1, whose child sshd runs in the chroot
    file = Path(f"/proc/{children(shell)[0]}/root") / path.lstrip("/")
    return file.read_text() if file.exists() else ""


def test_removes_the_key_cloud_init_wrote_into_every_home(rootfs, tmp_path):
    bake_dir = tmp_path / BAKE_ID
    bake_dir.mkdir()
    key = bake_key(bake_dir)
    upper = tmp_path / "upper"
    with build_instance([rootfs], upper, key.with_suffix(".pub").read_text()) as inst:
        host = SshHost(inst.host, inst.port, inst.user, key)
        cfg = seal.ssh.client_config(bake_dir / "ssh_config", host)
        cloud_init_writes(host, cfg, as_ec2_serves(key))
        seal.seal(host, bake_dir, {})
        assert not seal.ssh.master_running(host, cfg)
        assert in_instance(inst, "/home/admin/.ssh/authorized_keys") == f"{OTHER_KEY}\n"
        assert in_instance(inst, "/root/.ssh/authorized_keys") == f"{OTHER_KEY}\n"
    assert (upper / "root/.ssh/authorized_keys").read_text() == f"{OTHER_KEY}\n"


def test_fails_when_the_key_stays_in_a_home(rootfs, tmp_path):
    bake_dir = tmp_path / BAKE_ID
    bake_dir.mkdir()
    key = bake_key(bake_dir)
    with build_instance([rootfs], tmp_path / "upper", key.with_suffix(".pub").read_text()) as inst:
        host = SshHost(inst.host, inst.port, inst.user, key)
        cfg = seal.ssh.client_config(bake_dir / "ssh_config", host)
        body = as_ec2_serves(key).split()[1]
        result = root_run(host, cfg, f"echo {body} > /root/notes")
        assert result.returncode == 0, result.stderr
        with pytest.raises(
            VerifyError, match=r"could not seal the build instance: the bake key is still in /root/notes"
        ):
            seal.seal(host, bake_dir, {})
