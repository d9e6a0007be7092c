"""Build and test hosts on this machine: sandboxes on the local stack's image layers.

A bake's build host is a sandbox (``hosts/sandbox.py``) on the source AMI's
layers with a fresh upper layer; after the bake that layer is kept as the new
AMI's local image, so a layered bake stacks on it. A check's test host is a
sandbox whose upper layer is thrown away.
"""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from toolkit import procs
from toolkit.config import Config
from toolkit.hosts import HOST_DIRS, BuildTarget, sandbox
from toolkit.hosts.ssh import SshHost, forget_key, new_key
from toolkit.ui import Reporter


@dataclass
class LocalHosts:
    """Sandboxes on the local stack's image store (``stack.store``)."""

    stack: Any
    name = "local sandbox"

    def check(self) -> None:
        """Linux, root and unshare, or a SandboxError saying what is missing."""
        sandbox.check_host()

    def has_image(self, ami: str) -> bool:
        """True when the stack's store holds ``ami``'s layers (gone after a restart of the stack)."""
        return self.stack.store.has(ami)

    @contextlib.contextmanager
    def build_host(self, source_ami: str, bake_dir: Path, public_key: str, user: str, reporter: Reporter) -> Iterator[BuildTarget]:
        """sshd in a sandbox on ``source_ami``'s layers, writing into ``bake_dir/layer``."""
        sandbox.ensure_rootfs(self.stack.rootfs, reporter)
        layers = self.stack.store.layers(source_ami)
        upper = bake_dir / HOST_DIRS[0]
        with sandbox.build_instance(layers, upper, public_key, user=user, log=bake_dir / "sshd.log") as inst:
            reporter.detail(f"build instance: sandbox sshd on {inst.host}:{inst.port} ({len(layers)} lower layer(s))")
            yield BuildTarget(host=inst.host, port=inst.port, ssh_source_cidrs=(f"{inst.host}/32",), pid=inst.pid,
                              layers=tuple(layers), upper=upper)

    def keep_image(self, target: BuildTarget, bake_id: str, amis: dict[str, str]) -> None:
        """Keep the sandbox's upper layer as the local image of the new AMI (and of its copies)."""
        assert target.upper is not None
        kept = self.stack.store.layer_dir(bake_id)
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(target.upper), str(kept))
        for ami in amis.values():
            self.stack.store.add(ami, list(target.layers) + [kept])

    def keep_host(self, target: BuildTarget, bake_id: str, public_key: str, user: str) -> dict | None:
        """Boot the failed bake's disk (its layers and upper layer) again in a sandbox that outlives this run."""
        if target.upper is None or not target.upper.is_dir():
            return None
        inst = sandbox.start_kept(list(target.layers), target.upper, public_key, user)
        return {"connector": "local", "host": inst.host, "port": inst.port, "pid": inst.pid,
                "pid_started": procs.started(inst.pid) or "", "upper": str(target.upper)}

    def discard(self, kept: Any) -> str:
        """Stop a kept sandbox (unless its pid now belongs to another process) and remove its overlay folders."""
        running = kept.pid and procs.alive(kept.pid) and (not kept.pid_started or procs.started(kept.pid) == kept.pid_started)
        sandbox.stop_kept(kept.pid if running else None, Path(kept.upper))
        return f"stopped sandbox pid {kept.pid}" if running else f"sandbox pid {kept.pid} had already ended"

    @contextlib.contextmanager
    def test_host(self, config: Config, found: dict, image: str, run_dir: Path, reporter: Reporter) -> Iterator[SshHost]:
        """A sandbox on the AMI's local image with a throw-away upper layer."""
        ami = found["ImageId"]
        layers = self.stack.store.layers(ami)  # SandboxError when this machine has no image of it
        sandbox.check_host()
        sandbox.ensure_rootfs(self.stack.rootfs, reporter)
        run_dir.mkdir(parents=True)
        key = new_key(run_dir, f"rodeo-verify-{run_dir.name}")
        upper = run_dir / "layer"
        user = config.image(image).ssh_username
        try:
            reporter.info(f"→ boot {ami} in a sandbox ({len(layers)} layer(s), throw-away upper layer)")
            with sandbox.build_instance(layers, upper, key.with_suffix(".pub").read_text(), user=user) as running:
                reporter.ok(f"sandbox sshd on {running.host}:{running.port}")
                yield SshHost(running.host, running.port, user, key)
        finally:
            shutil.rmtree(upper, ignore_errors=True)
            forget_key(key)
