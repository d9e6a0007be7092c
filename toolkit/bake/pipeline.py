"""``invoke bake``: gather, plan, then build one image (its parent first when needed).

The bake is planned first (``toolkit.bake.plan``) and then carried out here:
a cache look-up by inputs hash, a fresh SSH key imported as the bake's EC2
key pair, the build host from the environment's connector
(``toolkit.hosts``), ``packer build`` of the bake's own copy of the
template, and the bake's record. Whatever happens, the key pair is deleted
and the build host torn down; Packer deletes what it made when a step fails,
so a failed bake registers no AMI.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

from toolkit import __version__, lineage, lock, notify, procs, secrets
from toolkit.aws import AWS_ERRORS, error_code
from toolkit.bake import handoff, inputs, keep, procfile, source
from toolkit.bake.plan import BakePlan, gather, plan_bake
from toolkit.bake.provision import APP_VARS, EXTRA_VARS
from toolkit.bake.provision import RECORD as PROVISION_RECORD
from toolkit.cancel import Cancel
from toolkit.config import Config
from toolkit.errors import LockError, PackerError, ProvisionError, RodeoError, TableMissing, VerifyError
from toolkit.hosts import HOST_DIRS, BuildTarget, Hosts
from toolkit.hosts.ssh import new_key
from toolkit.packer import render
from toolkit.packer import run as packer
from toolkit.progress import Progress
from toolkit.ui import Reporter

PROCFILE_RECORD = "procfile.json"  # an image baked by Rodeo's app role: its Procfile and runtime, as read
BAKE_WAIT = 3 * 3600  # how long a bake waits for another bake of the same inputs (Packer's own limits end one sooner)


@dataclass(frozen=True)
class BakeResult:
    """What ``invoke bake`` made or reused; ``to_dict`` is its ``--json``."""

    image: str
    ami: dict[str, str]  # region -> AMI id
    source_ami: str
    tags: dict[str, str]
    cached: bool
    template: str
    inputs_hash: str
    bake_id: str | None = None
    phases: dict[str, float] = field(default_factory=dict)
    duration_s: float = 0.0
    artifacts: str | None = None
    message: str = ""
    why: list[str] = field(default_factory=list)  # the inputs that changed since the last bake of the image
    vars: dict[str, str] = field(default_factory=dict)  # extra Ansible variables (--var)
    app: dict[str, str] = field(default_factory=dict)  # the app source: source, commit, version (images with one)
    parent: "BakeResult | None" = None

    def to_dict(self) -> dict:
        """Plain data; the parent is summed up (its AMI, whether it was baked, its time)."""
        data = dataclasses.asdict(dataclasses.replace(self, parent=None))
        data["parent"] = (
            None
            if self.parent is None
            else {
                "image": self.parent.image,
                "ami": self.parent.ami,
                "cached": self.parent.cached,
                "duration_s": self.parent.duration_s,
            }
        )
        if self.bake_id is None:
            data.pop("bake_id")
        return data

    def lines(self) -> list[str]:
        """The result as a person reads it."""
        amis = ", ".join(f"{r} {a}" for r, a in self.ami.items())
        app = (
            f"app {self.app['version']} ({self.app['source']} at {self.app['commit'].removeprefix('sha256:')[:12]})"
            if self.app
            else ""
        )
        if self.cached:
            return [f"{self.image}: {amis} (unchanged inputs; --force bakes anyway)"] + ([f"  {app}"] if app else [])
        phases = ", ".join(f"{k} {v:.1f}s" for k, v in self.phases.items())
        if self.parent and not self.parent.cached:
            phases += f"; its parent {self.parent.image} baked first in {self.parent.duration_s:.1f}s"
        out = [f"\n{self.image} baked: {amis}", f"  {self.duration_s:.1f}s in all ({phases})"]
        if self.why:
            out.append(f"  because: {'; '.join(self.why)}")
        if app:
            out.append(f"  {app}")
        if self.vars:
            out.append(f"  vars: {', '.join(f'{k}={v}' for k, v in sorted(self.vars.items()))}")
        out.append(f"  git {self.tags.get('rodeo:git-sha', '?')[:12]}, inputs {self.inputs_hash[:12]}")
        out.append(f"  artifacts: {self.artifacts}")
        return out


def bake(
    config: Config,
    aws: Any,
    hosts: Hosts,
    image_name: str,
    state_dir: Path,
    reporter: Reporter | None = None,
    force: bool = False,
    environ: Mapping[str, str] = os.environ,
    extra_vars: dict[str, str] | None = None,
    ref: str | None = None,
    wait: bool = True,
    break_lock: bool = False,
    keep_on_failure: bool = False,
) -> BakeResult:
    """Bake ``image_name`` into a verified, tagged AMI and return the result.

    A layered image first makes sure its parent is current (a cache hit, or a
    bake of the parent). Then, unless ``force``, a verified AMI with the same
    inputs hash in every region is reused instead of baking (``cached``).
    One bake of an image's inputs runs at a time (a lock in the app's
    DynamoDB table, shared by CI and laptops): a second one waits and reuses
    its AMI, or, without ``wait``, refuses. ``keep_on_failure`` leaves a
    failed bake's build host up (``toolkit.bake.keep``).
    ``extra_vars`` are Ansible variables for this image only (not its parent),
    and inputs of its hash; ``ref`` overrides the ref of its git app source.
    Raises a RodeoError naming the failing step; nothing is registered when a
    step fails.
    """
    reporter = reporter or Reporter()
    started = time.monotonic()
    # Secrets reach the provision step through the environment Packer inherits: check them now.
    values = secrets.collect(config.secrets, environ)
    app = source.resolve(
        config, config.image(image_name), state_dir / "sources", ref
    )  # a bad source fails before the parent bakes
    hosts.check()
    parent = config.image(image_name).parent
    parent_result = None
    if parent:
        try:
            parent_result = bake(
                config,
                aws,
                hosts,
                parent,
                state_dir,
                reporter,
                environ=environ,
                wait=wait,
                break_lock=break_lock,
                keep_on_failure=keep_on_failure,
            )
        except RodeoError as exc:
            raise type(exc)(
                f"parent image {parent} has no current verified AMI and its bake failed: {exc.message}", exc.hint
            ) from None
    return bake_image(
        config,
        aws,
        hosts,
        image_name,
        state_dir,
        reporter,
        parent_result,
        values,
        app,
        force=force,
        extra_vars=extra_vars,
        wait=wait,
        break_lock=break_lock,
        keep_on_failure=keep_on_failure,
        started=started,
    )


def bake_image(
    config: Config,
    aws: Any,
    hosts: Hosts,
    image_name: str,
    state_dir: Path,
    reporter: Reporter,
    parent_result: BakeResult | None,
    values: dict[str, str],
    app: source.Resolved | None,
    force: bool = False,
    extra_vars: dict[str, str] | None = None,
    wait: bool = True,
    break_lock: bool = False,
    keep_on_failure: bool = False,
    started: float | None = None,
    cancel: Cancel | None = None,
) -> BakeResult:
    """Bake one image whose parent (if any) is current: ``parent_result``; the rest of ``bake``.

    ``values`` are the secrets (``secrets.collect``), ``app`` the image's
    resolved app source (``source.resolve``), both checked by the caller
    first. ``cancel`` stops it as Ctrl-C would (a bake among several, in a
    thread of its own: ``toolkit.bake.parallel``).
    """
    started = time.monotonic() if started is None else started
    t0 = time.monotonic()
    facts = gather(
        config, aws, image_name, state_dir, parent_result.ami[config.region] if parent_result else None, extra_vars, app
    )
    plan = plan_bake(facts, config, state_dir)
    render_s = time.monotonic() - t0
    if not force:
        hit = cached(config, aws, hosts, plan)
        if hit is not None:
            reporter.ok(hit.message)
            return dataclasses.replace(hit, duration_s=round(time.monotonic() - started, 2), parent=parent_result)
    with _bake_lock(config, aws, plan, wait, break_lock, reporter, cancel) as waited:
        hit = cached(config, aws, hosts, plan) if waited and not force else None
        if hit is not None:
            reporter.ok(f"{hit.message} (baked by the run this one waited for)")
            return dataclasses.replace(hit, duration_s=round(time.monotonic() - started, 2), parent=parent_result)
        return _bake_planned(
            config,
            aws,
            hosts,
            plan,
            values,
            reporter,
            state_dir,
            started,
            parent_result,
            render_s,
            keep_on_failure,
            cancel,
        )


def _bake_planned(
    config: Config,
    aws: Any,
    hosts: Hosts,
    plan: BakePlan,
    values: dict[str, str],
    reporter: Reporter,
    state_dir: Path,
    started: float,
    parent_result: BakeResult | None,
    render_s: float,
    keep_on_failure: bool = False,
    cancel: Cancel | None = None,
) -> BakeResult:
    """Carry out ``plan``: Packer on a build host, the local image kept, the record written."""
    why = _why(state_dir, plan)
    reporter.ok(
        f"planned {plan.image} (Packer {'.'.join(map(str, plan.packer_version))}, inputs {plan.inputs_hash[:12]})"
    )
    for reason in why:
        reporter.info(f"{plan.image}: {reason}")
    reporter.info(f"baking {plan.image} from {plan.source_ami} as {plan.bake_id}")
    plan.bake_dir.mkdir(parents=True)
    plan.template.write_text(plan.template_text)
    if plan.extra_vars:
        (plan.bake_dir / EXTRA_VARS).write_text(json.dumps(plan.extra_vars, indent=1, sort_keys=True) + "\n")
    app = _export_app(config, plan, state_dir, reporter)
    seen: dict[str, BuildTarget] = {}
    shown = Progress(reporter)
    shown.record("render", render_s, plan.template.name)
    built = None
    try:
        with shown:
            built, target = _build(
                config, aws, hosts, plan, values, shown, app, seen, "abort" if keep_on_failure else "cleanup", cancel
            )
    except RodeoError as exc:
        notify.send(
            config,
            aws,
            notify.event(
                config,
                "bake.failed",
                f"bake of {plan.image} failed: {exc.message}",
                image=plan.image,
                bake_id=plan.bake_id,
                reason=exc.message,
                hint=exc.hint or None,
            ),
            reporter,
        )
        if keep_on_failure and "target" in seen:
            raise keep.keep(
                config, hosts, plan.image, plan.bake_id, plan.bake_dir, seen["target"], state_dir, exc
            ) from None
        raise
    finally:
        if built is None and not (keep_on_failure and "target" in seen):
            _drop_host_disk(plan.bake_dir)
        secrets.redact_files(
            plan.bake_dir, values, skip=("ssh_key", source.APP_DIR, *HOST_DIRS)
        )  # on failure too: nothing Rodeo keeps holds a secret
    hosts.keep_image(target, plan.bake_id, built.amis)  # after teardown: the layer is unmounted and scrubbed
    found = lineage.find_ami(aws, built.amis[config.region])
    result = BakeResult(
        image=plan.image,
        bake_id=plan.bake_id,
        ami=built.amis,
        source_ami=plan.source_ami,
        tags=lineage.lineage((found or {}).get("tags", {})),
        cached=False,
        template=str(plan.template.relative_to(config.root))
        if plan.template.is_relative_to(config.root)
        else str(plan.template),
        inputs_hash=plan.inputs_hash,
        phases=dict({"render": round(render_s, 2)}, **built.phases),
        duration_s=round(time.monotonic() - started, 2),
        artifacts=str(plan.bake_dir),
        why=why,
        parent=parent_result,
        vars=plan.extra_vars,
        app=lineage.app_source(found["tags"]) if found else {},
    )
    record = dict(
        result.to_dict(),
        inputs=plan.inputs,
        provision=_provision_record(plan.bake_dir),
        packer_window=list(built.window),
    )
    if (
        plan.bake_dir / PROCFILE_RECORD
    ).is_file():  # the Procfile as read (its release command too, for the release phase)
        record["procfile"] = json.loads((plan.bake_dir / PROCFILE_RECORD).read_text())
    (plan.bake_dir / "bake.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    version = f" (app {result.app['version']})" if result.app else ""
    notify.send(
        config,
        aws,
        notify.event(
            config,
            "bake.done",
            f"{plan.image} baked{version}: {built.amis[config.region]} in {result.duration_s:.0f}s",
            image=plan.image,
            ami=built.amis[config.region],
            amis=built.amis,
            bake_id=plan.bake_id,
            app_version=result.app.get("version"),
            git_sha=result.tags.get("rodeo:git-sha"),
        ),
        reporter,
    )
    return result


@dataclass(frozen=True)
class Preview:
    """What a bake of one image of a lineage would do: reuse an AMI, or bake (and why)."""

    image: str
    action: str  # reuse or bake
    ami: str | None
    why: list[str] = field(default_factory=list)

    def line(self) -> str:
        """One line of a plan."""
        if self.action == "reuse":
            return f"{self.image}: reuse {self.ami} (inputs unchanged)"
        return f"{self.image}: bake" + (f" because {'; '.join(self.why)}" if self.why else "")


def preview(
    config: Config, aws: Any, hosts: Hosts, image_name: str, state_dir: Path, ref: str | None = None
) -> list[Preview]:
    """What ``bake`` of ``image_name`` would do for it and each parent, root first; changes nothing."""
    out: list[Preview] = []
    for image in config.lineage(image_name):
        app = source.resolve(config, image, state_dir / "sources", ref if image.name == image_name else None)
        out.append(preview_image(config, aws, hosts, image.name, state_dir, out[-1] if out else None, app))
    return out


def preview_image(
    config: Config,
    aws: Any,
    hosts: Hosts,
    image_name: str,
    state_dir: Path,
    parent: Preview | None,
    app: source.Resolved | None,
) -> Preview:
    """What a bake of ``image_name`` would do, given its parent's preview (None: it has no parent); changes nothing."""
    if parent is not None and parent.ami is None:
        return Preview(image_name, "bake", None, [f"its parent {parent.image} bakes first"])
    plan = plan_bake(
        gather(config, aws, image_name, state_dir, parent.ami if parent else None, None, app), config, state_dir
    )
    hit = cached(config, aws, hosts, plan)
    if hit is not None:
        return Preview(image_name, "reuse", hit.ami[config.region], [])
    return Preview(image_name, "bake", None, _why(state_dir, plan) or ["no verified AMI has these inputs"])


def cached(config: Config, aws: Any, hosts: Hosts, plan: BakePlan) -> BakeResult | None:
    """The result of a verified AMI with ``plan``'s inputs hash in every region, or None."""
    amis = {}
    for region in [config.region, *config.copy_to_regions]:
        found = lineage.find_by_inputs(aws, config.app, plan.image, plan.inputs_hash, region)
        if found is None:
            return None
        amis[region] = found
    primary = amis[config.region]
    if not hosts.has_image(primary["ImageId"]):
        return None  # its local image is gone (the stack was restarted): bake again
    tags = lineage.lineage(primary["tags"])
    sha = tags.get("rodeo:git-sha", "?")
    return BakeResult(
        image=plan.image,
        ami={region: found["ImageId"] for region, found in amis.items()},
        source_ami=plan.source_ami,
        tags=tags,
        cached=True,
        template=str(plan.template.name),
        inputs_hash=plan.inputs_hash,
        vars=plan.extra_vars,
        app=lineage.app_source(tags),
        message=f"reused {primary['ImageId']} built {tags.get('rodeo:built-at', '?')} from {sha[:12]}: inputs unchanged",
    )


def _export_app(config: Config, plan: BakePlan, state_dir: Path, reporter: Reporter) -> source.Exported | None:
    """Write the pinned app source into the bake's folder and the playbook's variables naming it."""
    if plan.app is None:
        return None
    t0 = time.monotonic()
    exported = source.export(
        config, config.image(plan.image), plan.app, plan.bake_dir / source.APP_DIR, state_dir / "sources"
    )
    variables = {
        "rodeo_app_dir": str(exported.path),
        "rodeo_app_commit": plan.app.commit or plan.app.pin,
        "rodeo_app_version": exported.version,
        "rodeo_app_source": plan.app.location,
    }
    if config.image(plan.image).procfile:  # Rodeo's app role: the Procfile's process types and the runtime
        app = procfile.read(exported.path)
        variables |= app.variables()
        (plan.bake_dir / PROCFILE_RECORD).write_text(json.dumps(app.variables(), indent=1, sort_keys=True) + "\n")
        reporter.ok(
            f"Procfile: {', '.join(n for n, _ in app.procfile.processes)} on {app.runtime.name}"
            + (f" ({app.runtime.file})" if app.runtime.file else "")
            + ("; release: kept for the release phase" if app.procfile.release else "")
        )
    (plan.bake_dir / APP_VARS).write_text(json.dumps(variables, indent=1, sort_keys=True) + "\n")
    reporter.ok(
        f"app source {plan.app.location} at {plan.app.short}: version {exported.version} ({time.monotonic() - t0:.1f}s)"
    )
    return exported


def _procfile_release(bake_dir: Path) -> str:
    """The release: line of the Procfile the bake read (``_export_app`` wrote its record before Packer), "" without one."""
    return json.loads((bake_dir / PROCFILE_RECORD).read_text())["rodeo_procfile"]["release"] or ""


def _provision_record(bake_dir: Path) -> dict | None:
    """How the provision step ran Ansible (strategy, Mitogen's fallback and why, counts), or None."""
    with contextlib.suppress(OSError, ValueError):
        return json.loads((bake_dir / PROVISION_RECORD).read_text())
    return None


def _why(state_dir: Path, plan: BakePlan) -> list[str]:
    """What changed since the last bake of this image here (from its record), as phrases, or []."""
    last = None
    for record in sorted((state_dir / "bakes").glob(f"{plan.image}-*/bake.json"), reverse=True):
        with contextlib.suppress(OSError, ValueError):
            last = json.loads(record.read_text()).get("inputs")
            if last:
                break
    return inputs.describe(last, plan.inputs) if last else []


def _build(
    config: Config,
    aws: Any,
    hosts: Hosts,
    plan: BakePlan,
    values: dict[str, str],
    shown: Progress,
    app: source.Exported | None,
    seen: dict,
    on_error: str,
    cancel: Cancel | None = None,
) -> tuple[packer.BuildResult, BuildTarget]:
    """Run Packer on a build host with a fresh key; key pair and host go away whatever happens.

    ``seen["target"]`` is the build host once it is up (a failure's ``--keep-on-failure`` boots it again).
    """
    key = new_key(plan.bake_dir, f"rodeo-{plan.bake_id}")
    user = config.image(plan.image).ssh_username
    shown.begin("boot")
    booting = time.monotonic()
    with (
        _key_pair(aws, plan, key, shown.reporter) as key_name,
        hosts.build_host(
            plan.source_ami, plan.bake_dir, key.with_suffix(".pub").read_text(), user, shown.reporter
        ) as target,
    ):
        seen["target"] = target
        var_file = plan.bake_dir / "bake.pkrvars.hcl"
        var_file.write_text(render.var_file(_variables(config, aws, plan, key, key_name, target, app)))
        env = packer.packer_env(aws.env())
        if render.needs_plugins(plan.packer_version):
            packer.init(plan.template, env)
        # The steps start now, and import what they need while the instance boots; Packer hands them the host.
        steps = handoff.start(
            plan.bake_dir,
            ["--env", config.env, "--image", plan.image, "--bake-dir", str(plan.bake_dir), "--key", str(key)],
            env,
            config.root,
        )
        try:
            redact = (lambda line: secrets.redact(line, values)) if values else None
            before_packer = time.monotonic() - booting  # the build host's own boot, before Packer's
            packer_env = {
                k: v for k, v in env.items() if not k.startswith(secrets.PREFIX)
            }  # the steps have them; Packer needs none
            built = packer.build(
                plan.template,
                var_file,
                plan.bake_dir,
                packer_env,
                config.root,
                on_event=shown,
                redact=redact,
                phase="boot",
                on_error=on_error,
                cancel=cancel,
            )
            built.phases["boot"] = round(built.phases.get("boot", 0) + before_packer, 2)
            return built, target
        except PackerError as exc:
            raise _bake_failure(plan.bake_dir, exc) from None
        finally:
            handoff.stop(steps)
            reap(plan.bake_dir, keep={target.pid})


def _bake_failure(bake_dir: Path, exc: PackerError) -> RodeoError:
    """The provision/verify step's own reason when it wrote one, else Packer's."""
    try:
        failure = json.loads((bake_dir / "failure.json").read_text())
    except (OSError, ValueError):
        return exc
    kind = {"provision": ProvisionError, "verify": VerifyError, "seal": VerifyError}.get(
        failure.get("phase"), PackerError
    )
    first, newline, lines = failure["message"].partition("\n")  # an image test's own lines follow its first line
    return kind(f"{first}; no AMI was made{newline}{lines}", failure.get("hint", ""))


def _drop_host_disk(bake_dir: Path) -> None:
    """A failed bake's build host disk goes with it, as an EC2 build instance's volume does: it may hold what the
    seal would have refused (a secret, the bake key). ``--keep-on-failure`` keeps it instead."""
    for name in HOST_DIRS:
        shutil.rmtree(bake_dir / name, ignore_errors=True)


def reap(bake_dir: Path, keep: set[int] = frozenset(), grace: float = 10.0) -> list[int]:
    """End the bake's provisioners that outlived Packer (after Ctrl-C); return their pids.

    Packer stops waiting for a shell-local step when interrupted, but the step
    (ansible-runner, pytest) may still be running. Each gets SIGTERM at once
    (the provision step stops Ansible and redacts its artifacts on the way
    out), ``grace`` seconds to end, then SIGKILL. ``keep`` are pids that belong
    there (the build instance, which has its own teardown).
    """
    needle = str(bake_dir)
    found = [pid for pid, cmdline, _ in procs.processes() if pid not in keep and needle in cmdline]
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 3.0)):
        for pid in found:
            with contextlib.suppress(OSError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while any(procs.alive(p) for p in found) and time.monotonic() < deadline:
            time.sleep(0.05)
    return found


@contextlib.contextmanager
def _bake_lock(
    config: Config,
    aws: Any,
    plan: BakePlan,
    wait: bool,
    break_lock: bool,
    reporter: Reporter,
    cancel: Cancel | None = None,
) -> Iterator[bool]:
    """Hold the lock of ``plan``'s inputs; yields True when another bake held it first (its AMI may be there now)."""
    what = f"the bake of {plan.image} with inputs {plan.inputs_hash[:12]}"
    waited, deadline = False, time.monotonic() + BAKE_WAIT
    while True:
        if cancel is not None:
            cancel.check()
        try:
            held = lock.acquire(
                config,
                aws,
                f"bake {plan.bake_id}",
                break_lock,
                reporter,
                lock.bake_key(plan.image, plan.inputs_hash),
                what,
            )
            break
        except LockError as exc:
            if not wait:
                raise LockError(
                    f"{exc.message}: another bake of the same inputs is running",
                    "run without --no-wait to wait for it and reuse its AMI",
                ) from None
            if time.monotonic() > deadline:
                raise
            if not waited:
                reporter.info(f"waiting: {exc.message}")
            waited = True
            if cancel is not None:
                cancel.wait(2)
            else:
                time.sleep(2)
        except TableMissing as exc:  # no table yet (invoke setup makes it): bake unserialized rather than not at all
            reporter.warn(f"bakes of the same inputs are not serialized: {exc.message} ({exc.hint})")
            yield False
            return
    dead = (held.took_over or {}).get("purpose", "")
    if dead.startswith("bake "):  # a killed bake (kill -9) left what Packer made: its instance, group and key pair
        said = keep.leftovers(aws, dead.removeprefix("bake "))
        if said:
            reporter.warn(f"cleaned up after the killed bake {dead.removeprefix('bake ')}: {said}")
    try:
        yield waited
    finally:
        with contextlib.suppress(Exception):
            lock.free(aws, held)


@contextlib.contextmanager
def _key_pair(aws: Any, plan: BakePlan, key: Path, reporter: Reporter) -> Iterator[str]:
    """The bake's public key as an EC2 key pair, deleted afterwards whatever happens (a failed delete is said)."""
    ec2 = aws.client("ec2")
    name = f"rodeo-{plan.bake_id}"
    try:
        ec2.import_key_pair(
            KeyName=name,
            PublicKeyMaterial=key.with_suffix(".pub").read_bytes(),
            TagSpecifications=[{"ResourceType": "key-pair", "Tags": [{"Key": "rodeo:bake", "Value": plan.bake_id}]}],
        )
    except Exception as exc:
        # The name is this bake's own: a duplicate means a retried import had already succeeded.
        if error_code(exc) != "InvalidKeyPair.Duplicate":
            raise
    try:
        yield name
    finally:
        try:
            ec2.delete_key_pair(KeyName=name)
        except AWS_ERRORS as exc:
            reporter.warn(
                f"could not delete the bake's key pair {name} ({error_code(exc) or exc}); "
                f"delete it: aws ec2 delete-key-pair --key-name {name} --region {aws.region}"
            )


def _variables(
    config: Config, aws: Any, plan: BakePlan, key: Path, key_name: str, target: BuildTarget, app: source.Exported | None
) -> dict:
    """The template's variables: the bake's own, then the environment's (its endpoint and checks, none on AWS)."""
    image = config.image(plan.image)
    extra = {}
    if plan.app is not None and app is not None:
        extra = {
            "app_source": plan.app.location,
            "app_commit": plan.app.commit or f"sha256:{plan.app.digest}",
            "app_version": app.version,
        }
    if image.procfile:  # the Procfile's release: line, tagged on the AMI for the release phase
        extra["release_command"] = _procfile_release(plan.bake_dir)
    return (
        extra
        | {
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
            "ssh_interface": image.ssh_interface,
            "associate_public_ip_address": image.public_address,
            "ssh_source_cidrs": list(target.ssh_source_cidrs),
            "ssh_host": target.host,
            "ssh_port": target.port,
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
        | aws.packer_variables()
    )
