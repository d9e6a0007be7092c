"""The build-host connector on the local stack (``toolkit.hosts``): instances the live stack boots from image layers.

A bake's build host is the instance Packer launches (RunInstances on moto),
booted by the live stack on the source AMI's layers with a fresh upper layer;
after the bake that layer is kept as the new AMI's local image, so a layered
bake stacks on it. A check's test host is an instance whose disk is thrown
away. ``hosts/sandbox.py``'s chroot remains for tests of the seal.
"""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from toolkit import procs
from toolkit.config import Config
from toolkit.hosts import HOST_DIRS, BuildTarget, instance, sandbox
from toolkit.hosts.ssh import SshHost, forget_key, new_key, wait_for_ssh
from toolkit.local import buildinstances
from toolkit.ui import Reporter


@dataclass
class LocalHosts:
    """Sandboxes on the local stack's image store (``stack.store``)."""

    stack: Any
    aws: Any = None
    name = "local instance"

    def check(self) -> None:
        """Linux, root and unshare, or a SandboxError saying what is missing."""
        sandbox.check_host()

    def has_image(self, ami: str) -> bool:
        """True when the stack's store holds ``ami``'s layers (gone after a restart of the stack)."""
        return self.stack.store.has(ami)

    @contextlib.contextmanager
    def build_host(
        self, source_ami: str, bake_dir: Path, public_key: str, user: str, reporter: Reporter
    ) -> Iterator[BuildTarget]:
        """The instance Packer launches from ``source_ami``, booted by the live stack; its disk ends in ``bake_dir/layer``.

        Packer's SSH goes to a 127.0.0.1 port relaying to the instance's sshd
        (``hosts/instance.py``); cloud-init writes the key pair's key there.
        """
        sandbox.ensure_rootfs(self.stack.rootfs, reporter)
        layers = self.stack.store.layers(source_ami)
        upper = bake_dir / HOST_DIRS[0]
        bake_id = bake_dir.name
        ec2 = self.aws.client("ec2")
        sock = buildinstances.ssh_socket(bake_id)
        try:
            with instance.ssh_port(sock, bake_dir) as (port, pid):
                reporter.detail(
                    f"build instance: booted by the local stack, SSH through 127.0.0.1:{port} ({len(layers)} lower layer(s))"
                )
                yield BuildTarget(
                    host="127.0.0.1",
                    port=port,
                    ssh_source_cidrs=("127.0.0.1/32",),
                    pid=pid,
                    layers=tuple(layers),
                    upper=upper,
                )
        finally:
            self._after_packer(ec2, bake_id, bake_dir, upper)

    def _after_packer(self, ec2: Any, bake_id: str, bake_dir: Path, upper: Path) -> None:
        """The build instance's disk back in ``upper`` once it is down; a failed bake's goes, as its volume does on EC2.

        An instance Packer left running after a failure is the host
        ``--keep-on-failure`` keeps (Packer's ``-on-error=abort``): it stays up.
        """
        found = instance.launched(ec2, bake_id)
        succeeded = (bake_dir / "manifest.json").is_file()
        if not succeeded and any(i["State"]["Name"] in ("pending", "running") for i in found):
            return
        instance.end_instances(ec2, bake_id)
        instance.take_disk(buildinstances.handed_over(self.stack.live_dir, bake_id), upper, bool(found))
        if not succeeded:
            shutil.rmtree(upper, ignore_errors=True)

    def keep_image(self, target: BuildTarget, bake_id: str, amis: dict[str, str]) -> None:
        """Keep the sandbox's upper layer as the local image of the new AMI (and of its copies)."""
        assert target.upper is not None
        kept = self.stack.store.layer_dir(bake_id)
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(target.upper), str(kept))
        for ami in amis.values():
            self.stack.store.add(ami, list(target.layers) + [kept])

    def keep_host(self, target: BuildTarget, bake_id: str, public_key: str, user: str) -> dict | None:
        """The failed bake's instance, left running by Packer, reached through a forwarder that outlives this run."""
        assert target.upper is not None
        running = [
            i
            for i in instance.launched(self.aws.client("ec2"), bake_id)
            if i["State"]["Name"] in ("pending", "running")
        ]
        if not running:
            return None
        port, pid = instance.kept_ssh_port(buildinstances.ssh_socket(bake_id), target.upper.parent)
        return {
            "connector": "local",
            "host": "127.0.0.1",
            "port": port,
            "pid": pid,
            "pid_started": procs.started(pid) or "",
            "upper": str(target.upper),
            "instance_id": running[0]["InstanceId"],
        }

    def discard(self, kept: Any) -> str:
        """Stop a kept host's forwarder (unless its pid now belongs to another process); terminate its instance, keep its disk."""
        running = (
            kept.pid and procs.alive(kept.pid) and (not kept.pid_started or procs.started(kept.pid) == kept.pid_started)
        )
        sandbox.stop_kept(kept.pid if running else None, Path(kept.upper))
        said = f"stopped forwarder pid {kept.pid}" if running else f"forwarder pid {kept.pid} had already ended"
        if (
            kept.instance_id and self.aws is not None
        ):  # without clients (the stack going down) the instance goes with it
            ec2 = self.aws.client("ec2")
            ended = instance.end_instances(ec2, kept.bake_id)
            instance.take_disk(
                buildinstances.handed_over(self.stack.live_dir, kept.bake_id), Path(kept.upper), bool(ended)
            )
            said += f", terminated {kept.instance_id}" if ended else ""
        return said

    @contextlib.contextmanager
    def test_host(
        self, config: Config, found: dict, image: str, run_dir: Path, reporter: Reporter
    ) -> Iterator[SshHost]:
        """An instance of the AMI booted by the local stack (cloud-init writes the check's key pair), thrown away afterwards."""
        ami = found["ImageId"]
        layers = self.stack.store.layers(ami)  # SandboxError when this machine has no image of it
        sandbox.check_host()
        sandbox.ensure_rootfs(self.stack.rootfs, reporter)
        run_dir.mkdir(parents=True)
        check_id = run_dir.name
        name = f"rodeo-verify-{check_id}"
        key = new_key(run_dir, name)
        ec2 = self.aws.client("ec2")
        tags = [{"Key": buildinstances.VERIFY_TAG, "Value": check_id}, {"Key": "Name", "Value": name}]
        try:
            ec2.import_key_pair(KeyName=name, PublicKeyMaterial=key.with_suffix(".pub").read_bytes())
            with instance.ssh_port(buildinstances.ssh_socket(check_id), run_dir) as (port, _):
                reply = ec2.run_instances(
                    ImageId=ami,
                    InstanceType=config.image(image).instance_type,
                    MinCount=1,
                    MaxCount=1,
                    KeyName=name,
                    TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
                )
                iid = reply["Instances"][0]["InstanceId"]
                reporter.info(f"→ boot {ami} as {iid} on the local stack ({len(layers)} layer(s), throw-away disk)")
                wait_for_ssh("127.0.0.1", port, instance.SSH_WAIT, iid)
                reporter.ok(f"{iid} answers SSH on 127.0.0.1:{port}")
                yield SshHost("127.0.0.1", port, config.image(image).ssh_username, key)
        finally:
            ever = bool(instance.launched(ec2, check_id, buildinstances.VERIFY_TAG))
            instance.end_instances(ec2, check_id, buildinstances.VERIFY_TAG)
            instance.take_disk(buildinstances.handed_over(self.stack.live_dir, check_id), run_dir / "layer", ever)
            shutil.rmtree(run_dir / "layer", ignore_errors=True)
            with contextlib.suppress(Exception):
                ec2.delete_key_pair(KeyName=name)
            forget_key(key)
