"""``invoke bake``: render, build, provision, verify and tag one image.

The bake is planned first (``plan_bake``: image, source AMI, inputs hash,
variables) and then carried out (``bake``): a fresh SSH key imported as the
bake's EC2 key pair, the build instance (on the local stack, a chroot sandbox
on the parent's layers; on AWS, the instance Packer launches), ``packer
build``, and the bake's record. Whatever happens, the key pair is deleted and
the sandbox torn down; Packer deletes what it made when a step fails, so a
failed bake registers no AMI.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from secrets import token_hex
import signal
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

from toolkit import __version__, inputs, procs, secrets, verify
from toolkit.aws import images
from toolkit.aws.session import error_code
from toolkit.config import Config
from toolkit.errors import PackerError, ProvisionError, RodeoError, VerifyError
from toolkit.local.stack import Stack
from toolkit.packer import render
from toolkit.packer import run as packer
from toolkit.ui import Reporter


@dataclass(frozen=True)
class BakePlan:
    """Everything decided before Packer runs."""

    image: str
    bake_id: str
    bake_dir: Path
    template: Path
    source_ami: str
    parent_ami: str | None
    inputs_hash: str
    git_sha: str
    built_at: str
    packer_version: tuple[int, ...]


def git_sha(root: Path) -> str:
    """HEAD's commit, with ``-dirty`` when the work tree has changes; ``unknown`` outside git."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha


def plan_bake(config: Config, aws: Any, image_name: str, state_dir: Path, parent_ami: str | None = None) -> BakePlan:
    """Decide a bake of ``image_name``: its id, folder, template, source and inputs hash."""
    image = config.image(image_name)
    version = packer.version()
    template = render.write(config, image.name, version, memo=state_dir / "render-memo.json")
    source = parent_ami or images.resolve_source(aws, image)
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    bake_id = f"{image.name}-{now:%Y%m%d-%H%M%S}-{token_hex(2)}"
    return BakePlan(
        image=image.name,
        bake_id=bake_id,
        bake_dir=state_dir / "bakes" / bake_id,
        template=template,
        source_ami=source,
        parent_ami=parent_ami,
        inputs_hash=inputs.inputs_hash(config, image, template.read_text(), parent_ami or "", __version__),
        git_sha=git_sha(config.root),
        built_at=now.isoformat().replace("+00:00", "Z"),
        packer_version=version,
    )


def bake(config: Config, aws: Any, image_name: str, state_dir: Path, stack: Stack | None = None,
         reporter: Reporter | None = None, force: bool = False, environ: Mapping[str, str] = os.environ) -> dict:
    """Bake ``image_name`` into a verified, tagged AMI and return the bake's record.

    A layered image first makes sure its parent is current (a cache hit, or a
    bake of the parent). Then, unless ``force``, a verified AMI with the same
    inputs hash in every region is reused instead of baking (``"cached":
    true``). ``stack`` is the local stack (required when ``config.is_local``):
    the build instance is then a sandbox on this machine. Raises a RodeoError
    naming the failing step; nothing is registered when a step fails.
    """
    reporter = reporter or Reporter()
    started = time.monotonic()
    # Secrets reach the provision step through the environment Packer inherits: check them now.
    secrets.collect(config.secrets, environ)
    if config.is_local:
        from toolkit.local import sandbox

        sandbox.check_host()
    parent = config.image(image_name).parent
    parent_ami, parent_record = None, None
    if parent:
        try:
            parent_record = bake(config, aws, parent, state_dir, stack, reporter, environ=environ)
            parent_ami = parent_record["ami"][config.region]
        except RodeoError as exc:
            raise type(exc)(f"parent image {parent} has no current verified AMI and its bake failed: {exc.message}", exc.hint) from None
    t0 = time.monotonic()
    plan = plan_bake(config, aws, image_name, state_dir, parent_ami)
    render_s = time.monotonic() - t0
    if not force:
        hit = cached(config, aws, plan, stack)
        if hit is not None:
            reporter.ok(hit["message"])
            return dict(hit, duration_s=round(time.monotonic() - started, 2), parent=_parent_summary(parent_record))
    reporter.ok(f"rendered {plan.template.relative_to(config.root)} (Packer {'.'.join(map(str, plan.packer_version))}, inputs {plan.inputs_hash[:12]})")
    reporter.info(f"baking {plan.image} from {plan.source_ami} as {plan.bake_id}")
    plan.bake_dir.mkdir(parents=True)
    result, host = _build(config, aws, plan, stack, reporter)
    if stack is not None:  # after teardown: the layer is unmounted and scrubbed
        _keep_layer(stack, plan, host, result.amis)
    found = images.find_ami(aws, result.amis[config.region])
    tags = images.lineage((found or {}).get("tags", {}))
    record = dict(_record(config, plan, result, tags, render_s, time.monotonic() - started), parent=_parent_summary(parent_record))
    (plan.bake_dir / "bake.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record


def _parent_summary(record: dict | None) -> dict | None:
    """What became of the parent in this run: its AMI, and whether it was baked (its time counts in ours)."""
    if record is None:
        return None
    return {"image": record["image"], "ami": record["ami"], "cached": record["cached"], "duration_s": record["duration_s"]}


def cached(config: Config, aws: Any, plan: BakePlan, stack: Stack | None) -> dict | None:
    """The record of a verified AMI with ``plan``'s inputs hash in every region, or None."""
    regions = [config.region, *config.copy_to_regions]
    amis = {}
    for region in regions:
        found = images.find_by_inputs(aws, config.app, plan.image, plan.inputs_hash, region)
        if found is None:
            return None
        amis[region] = found
    primary = amis[config.region]
    if stack is not None and not stack.store.has(primary["ImageId"]):
        return None  # its local image is gone (the stack was restarted): bake again
    tags = images.lineage(primary["tags"])
    sha = tags.get("rodeo:git-sha", "?")
    return {
        "image": plan.image,
        "ami": {region: found["ImageId"] for region, found in amis.items()},
        "source_ami": plan.source_ami,
        "tags": tags,
        "cached": True,
        "phases": {},
        "artifacts": None,
        "template": str(plan.template.relative_to(config.root)),
        "message": f"reused {primary['ImageId']} built {tags.get('rodeo:built-at', '?')} from {sha[:12]}: inputs unchanged",
    }


def _build(config: Config, aws: Any, plan: BakePlan, stack: Stack | None, reporter: Reporter) -> tuple[packer.BuildResult, "Host"]:
    """Run Packer on a build host with a fresh key; key pair and sandbox go away whatever happens."""
    key = verify.new_ssh_key(plan.bake_dir, f"rodeo-{plan.bake_id}")
    with _key_pair(aws, plan, key) as key_name, _build_host(config, stack, plan, key, reporter) as host:
        values = _variables(config, aws, plan, key, key_name, host)
        var_file = plan.bake_dir / "bake.pkrvars.hcl"
        var_file.write_text(render.var_file(values))
        env = packer.packer_env(aws.env())
        if render.needs_plugins(plan.packer_version):
            packer.init(plan.template, env)
        try:
            return packer.build(plan.template, var_file, plan.bake_dir, env, config.root, on_line=reporter.detail), host
        except PackerError as exc:
            raise _bake_failure(plan.bake_dir, exc) from None
        finally:
            reap(plan.bake_dir, keep={host.pid})


def _bake_failure(bake_dir: Path, exc: PackerError) -> RodeoError:
    """The provision/verify step's own reason when it wrote one, else Packer's."""
    try:
        failure = json.loads((bake_dir / "failure.json").read_text())
    except (OSError, ValueError):
        return exc
    kind = {"provision": ProvisionError, "verify": VerifyError, "seal": VerifyError}.get(failure.get("phase"), PackerError)
    return kind(f"{failure['message']}; no AMI was made", failure.get("hint", ""))


def reap(bake_dir: Path, keep: set[int] = frozenset(), grace: float = 10.0) -> list[int]:
    """End the bake's provisioners that outlived Packer (after Ctrl-C); return their pids.

    Packer stops waiting for a shell-local step when interrupted; the step
    (ansible-runner, pytest) is told too and stops on its own within seconds,
    so give it ``grace`` seconds before SIGTERM, then SIGKILL. ``keep`` are
    pids that belong there (the build instance, which has its own teardown).
    """
    needle = str(bake_dir)
    found = [pid for pid, cmdline, _ in procs.processes() if pid not in keep and needle in cmdline]
    deadline = time.monotonic() + grace
    for sig in (None, signal.SIGTERM, signal.SIGKILL):
        for pid in found:
            if sig is not None:
                with contextlib.suppress(OSError):
                    os.kill(pid, sig)
        while any(procs.alive(p) for p in found) and time.monotonic() < deadline:
            time.sleep(0.1)
        deadline = time.monotonic() + 3
    return found


@contextlib.contextmanager
def _key_pair(aws: Any, plan: BakePlan, key: Path) -> Iterator[str]:
    """The bake's public key as an EC2 key pair, deleted afterwards whatever happens."""
    ec2 = aws.client("ec2")
    name = f"rodeo-{plan.bake_id}"
    try:
        ec2.import_key_pair(KeyName=name, PublicKeyMaterial=key.with_suffix(".pub").read_bytes(),
                            TagSpecifications=[{"ResourceType": "key-pair", "Tags": [{"Key": "rodeo:bake", "Value": plan.bake_id}]}])
    except Exception as exc:
        # The name is this bake's own: a duplicate means a retried import had already succeeded.
        if error_code(exc) != "InvalidKeyPair.Duplicate":
            raise
    try:
        yield name
    finally:
        with contextlib.suppress(Exception):
            ec2.delete_key_pair(KeyName=name)


@dataclass(frozen=True)
class Host:
    """Where Packer should SSH: empty host means 'the instance it launched'."""

    host: str = ""
    port: int = 22
    layers: tuple[Path, ...] = ()
    upper: Path | None = None
    pid: int = 0  # the local build instance's process


@contextlib.contextmanager
def _build_host(config: Config, stack: Stack | None, plan: BakePlan, key: Path, reporter: Reporter) -> Iterator[Host]:
    if not config.is_local:
        yield Host()
        return
    from toolkit.local import sandbox

    assert stack is not None, "the local stack is required for a local bake"
    sandbox.ensure_rootfs(stack.rootfs, reporter)
    layers = stack.store.layers(plan.source_ami)
    upper = plan.bake_dir / "layer"
    user = config.image(plan.image).ssh_username
    with sandbox.build_instance(layers, upper, key.with_suffix(".pub").read_text(), user=user) as inst:
        reporter.detail(f"build instance: sandbox sshd on {inst.host}:{inst.port} ({len(layers)} lower layer(s))")
        yield Host(host=inst.host, port=inst.port, layers=tuple(layers), upper=upper, pid=inst.pid)


def _variables(config: Config, aws: Any, plan: BakePlan, key: Path, key_name: str, host: Host) -> dict:
    image = config.image(plan.image)
    return {
        "app": config.app,
        "env": config.env,
        "region": config.region,
        "source_ami": plan.source_ami,
        "instance_type": image.instance_type,
        "ssh_username": image.ssh_username,
        "volume_size_gb": image.volume_size_gb,
        "copy_to_regions": list(config.copy_to_regions),
        "encrypt_boot": config.encrypt_boot,
        "subnet_id": config.subnet_id or "",
        "endpoint": aws.endpoint or "",
        "local_stack": config.is_local,
        "ssh_source_cidrs": [f"{host.host}/32"] if host.host else [_caller_cidr()],
        "ssh_host": host.host,
        "ssh_port": host.port,
        "ssh_keypair_name": key_name,
        "ssh_private_key_file": str(key),
        "python": sys.executable,
        "bake_id": plan.bake_id,
        "bake_dir": str(plan.bake_dir),
        "git_sha": plan.git_sha,
        "inputs_hash": plan.inputs_hash,
        "toolkit_version": __version__,
        "built_at": plan.built_at,
    }


def _caller_cidr() -> str:
    """This machine's public address as a /32: the temporary security group lets only it in."""
    from toolkit.ami_check import caller_address

    return f"{caller_address()}/32"


def _keep_layer(stack: Stack, plan: BakePlan, host: Host, amis: dict[str, str]) -> None:
    """Keep the sandbox's upper layer as the local image of the new AMI (and of its copies)."""
    assert host.upper is not None
    target = stack.store.layer_dir(plan.bake_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(host.upper), str(target))
    for ami in amis.values():
        stack.store.add(ami, list(host.layers) + [target])


def _record(config: Config, plan: BakePlan, result: packer.BuildResult, tags: dict, render_s: float, total_s: float) -> dict:
    """The bake's summary; ``tags`` are read back from the AMI, not assumed."""
    return {
        "image": plan.image,
        "bake_id": plan.bake_id,
        "ami": result.amis,
        "source_ami": plan.source_ami,
        "tags": tags,
        "cached": False,
        "phases": dict({"render": round(render_s, 2)}, **result.phases),
        "duration_s": round(total_s, 2),
        "artifacts": str(plan.bake_dir),
        "template": str(plan.template.relative_to(config.root)),
    }
