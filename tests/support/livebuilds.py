"""Sample app builds for releases on the live local stack (tests and benchmarks).

A build is the sample base and app layers (``tests/integration/local/conftest.py``
bakes them once, cached by the playbooks' content) plus a thin layer of its
own: its version in ``/opt/web/config.json`` and, for a deliberately broken
build, the ``webapp_fault`` drop-in the app role writes (``health``: /health
answers 500; ``start``: the service fails at start; ``root``: / answers 500;
``syntax``: its ``app.py`` has a syntax error, so the app crashes at each start;
``slow``: every page answers ``SLOW_MS`` later; ``flaky``: ``FLAKY_PERCENT`` of
the pages answer 500).
It is registered as a verified AMI of app ``web``, image ``app``, as a bake
would tag it: these builds exercise releases, not bakes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from toolkit import config
from toolkit.bake.provision import MITOGEN_STRATEGY, mitogen_plugins
from toolkit.hosts import sandbox
from toolkit.local import seed, stack
from toolkit.local.environment import LocalEnvironment
from toolkit.release import slots
from toolkit.release.watch import AlarmTiming

BIN = Path(sys.executable).parent
APP_SOURCE = "examples/webapp"  # the sample app's source (images.app.app_source)


def sample_layers(root: Path, cache: Path, rootfs: Path) -> dict[str, Path]:
    """``{"rootfs", "base", "app"}``: the sample playbooks run into layers, cached by the playbooks' content."""
    digest = hashlib.sha256(rootfs.name.encode())  # a new root file system (other packages) is new layers
    for path in (
        sorted((root / "playbooks").rglob("*"))
        + sorted((root / "inventories/local/group_vars").rglob("*"))
        + sorted((root / APP_SOURCE).rglob("*"))
    ):
        if path.is_file():
            digest.update(str(path.relative_to(root)).encode() + path.read_bytes())
    folder = cache / "live-test-layers" / digest.hexdigest()[:16]
    folder.parent.mkdir(parents=True, exist_ok=True)
    # Test workers and benchmarks ask at the same time: one bakes, the others wait for it.
    with open(folder.parent / f".{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / "done").exists():
            shutil.rmtree(folder, ignore_errors=True)
            _bake(root, rootfs, folder)
            (folder / "done").touch()
    return {"rootfs": rootfs, "base": folder / "base", "app": folder / "app"}


def _bake(root: Path, rootfs: Path, folder: Path) -> None:
    work = Path(tempfile.mkdtemp(prefix="rodeo-layers-", dir="/tmp"))
    try:
        key = work / "id_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        public = key.with_suffix(".pub").read_text()
        with sandbox.build_instance([rootfs], folder / "base", public) as instance:
            _playbook(root, work, instance, key, "base.yml")
        with sandbox.build_instance([rootfs, folder / "base"], folder / "app", public) as instance:
            _playbook(root, work, instance, key, "app.yml")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _playbook(root: Path, work: Path, instance, key: Path, playbook: str) -> None:
    inventory = work / "inventory"
    shutil.copytree(root / "inventories/local/group_vars", inventory / "group_vars", dirs_exist_ok=True)
    (inventory / "hosts.ini").write_text(
        f"build ansible_host={instance.host} ansible_port={instance.port} ansible_user={instance.user} ansible_ssh_private_key_file={key}\n"
    )
    env = {
        "PATH": f"{BIN}:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(work),
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCAL_TEMP": str(work / "ansible-tmp"),
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(work / "cp"),
        "ANSIBLE_STRATEGY": MITOGEN_STRATEGY,
        "ANSIBLE_STRATEGY_PLUGINS": str(mitogen_plugins()),
    }  # as bakes run
    cmd = [
        str(BIN / "ansible-playbook"),
        "-i",
        str(inventory),
        str(root / "playbooks" / playbook),
        "-e",
        f"rodeo_app_dir={root / APP_SOURCE}",
    ]
    result = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"{playbook} failed on the layer: {result.stdout[-4000:]}{result.stderr[-2000:]}")


FAULTS = {
    "": None,
    "health": "[Service]\nEnvironment=WEBAPP_FAULT=health\n",
    "root": "[Service]\nEnvironment=WEBAPP_FAULT=root\n",
    "start": "[Service]\nExecStartPre=/bin/false\n",
    "syntax": None,  # app.py itself is broken (SYNTAX_ERROR)
    "slow": "[Service]\nEnvironment=WEBAPP_FAULT=slow\nEnvironment=WEBAPP_FAULT_DELAY_MS={slow_ms}\n",
    "flaky": "[Service]\nEnvironment=WEBAPP_FAULT=flaky\nEnvironment=WEBAPP_FAULT_ERROR_PERCENT={flaky_percent}\n",
}
SLOW_MS = 50  # the role's defaults (webapp_fault_delay_ms, webapp_fault_error_percent)
FLAKY_PERCENT = 1
# What the "syntax" build's app.py says at each start: the sample app with the colon of its WSGI function cut.
SYNTAX_ERROR = "SyntaxError: expected ':'"


def build(
    st: Any,
    ec2: Any,
    layers: dict[str, Path],
    folder: Path,
    version: str,
    fault: str = "",
    app: str = "web",
    slow_ms: float = SLOW_MS,
    flaky_percent: float = FLAKY_PERCENT,
) -> str:
    """Register a build of the sample app with ``version`` (and ``fault``: ``slow`` by ``slow_ms``, ``flaky`` at
    ``flaky_percent``); return its AMI id."""
    top = folder / f"build-{version}"
    shutil.rmtree(top, ignore_errors=True)
    (top / "opt/web").mkdir(parents=True)
    (top / "opt/web/config.json").write_text(json.dumps({"version": version, "port": 8080}))
    if FAULTS[fault]:
        (top / "etc/systemd/system/web.service.d").mkdir(parents=True)
        dropin = FAULTS[fault].format(slow_ms=slow_ms, flaky_percent=flaky_percent)
        (top / "etc/systemd/system/web.service.d/fault.conf").write_text(dropin)
    if fault == "syntax":
        source = (layers["app"] / "opt/web/app.py").read_text()
        broken = source.replace("def app(environ, start_response):", "def app(environ, start_response)", 1)
        assert broken != source, "the sample app has no 'def app(environ, start_response):' to break"
        (top / "opt/web/app.py").write_text(broken)
        (top / "opt/web/app.py").chmod(0o644)
    tags = {
        "rodeo:app": app,
        "rodeo:image": "app",
        "rodeo:verified": "true",
        "rodeo:git-sha": version,
        "rodeo:app-version": version,
        "rodeo:built-at": f"2026-11-27T00:00:{len(version):02d}Z",
    }
    return register(st, ec2, f"{app}-app-{version}", tags, [layers["rootfs"], layers["base"], layers["app"], top])


def register(st: Any, ec2: Any, name: str, tags: dict[str, str], layers: list[Path]) -> str:
    """Register an AMI ``name`` with ``tags``, made of ``layers`` (bottom first) on the local stack; its id."""
    ami = ec2.register_image(Name=name, Architecture="x86_64", RootDeviceName="/dev/xvda", VirtualizationType="hvm")[
        "ImageId"
    ]
    ec2.create_tags(Resources=[ami], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    st.store.add(ami, layers)
    return ami


def same_build(st: Any, ec2: Any, ami: str) -> str:
    """Another AMI of the build ``ami`` is: the same layers and tags (an A/A release: the very same code again)."""
    image = ec2.describe_images(ImageIds=[ami])["Images"][0]
    tags = {t["Key"]: t["Value"] for t in image.get("Tags", []) if not t["Key"].startswith("aws:")}
    return register(st, ec2, f"{image['Name']}-again-{int(time.time() * 1000)}", tags, st.store.layers(ami))


RELEASE_YML = """\
app: web
stack: local
region: us-east-1
images:
  base: {{source_ami: {{name: "debian-12-*", owners: [self]}}, playbook: playbooks/base.yml, tests: tests/image/test_base.py}}
  app: {{parent: base, playbook: playbooks/app.yml, tests: tests/image/test_app.py, app_source: {{dir: examples/webapp, version_file: VERSION}}}}
release:
  load_balancer: web
  listener_port: 80
  slots: {{blue: web-blue, green: web-green}}
  image: app
  capacity: {{min: 2, max: 4, desired: 2}}
  steps: [10, 50, 100]
  pause_seconds: {pause}
  alarms: []
  health_timeout_seconds: {health_timeout}
  smoke_check: {{path: {smoke_path}, port: 8081, timeout_seconds: 3, requests: 3}}
  instance_profile: web-instance  # seeded with invoke iam-policy --for instance: the loader and shipper get its credentials
  # Every release judged, as the local inventory has it: too few requests in a short step go on at once.
  analysis: {{enabled: true, latency: {{floor_ms: 5}}}}
  subnets: [{subnets}]          # the seeded private subnets and instances' group (toolkit.local.seed._network)
  security_groups: [{group}]
"""


def project(root: Path, repo: Path, pause: int = 2, health_timeout: int = 90, smoke_path: str = "/health") -> Path:
    """A project folder with the sample playbooks and tests and a release tuned for the live stack.

    No gate alarm: a watch of a few seconds is too short for one to fire (``toolkit.release.watch``);
    see ``with_alarm`` for the releases that are gated on the seeded ``web-5xx``.
    """
    for rel in ("playbooks", "tests/image", "inventories/local/group_vars", APP_SOURCE):
        shutil.copytree(repo / rel, root / rel, dirs_exist_ok=True)
    from toolkit.local import seed

    (root / "inventories/local/rodeo.yml").write_text(
        RELEASE_YML.format(
            pause=pause,
            health_timeout=health_timeout,
            smoke_path=smoke_path,
            subnets=", ".join(seed.PRIVATE_SUBNETS),
            group=seed.INSTANCE_SG,
        )
    )
    for rel in ("tasks.py", "ansible.cfg"):
        shutil.copy2(repo / rel, root / rel)
    return root


def behind_classic(cfg: Any, app: str | None = None, **release_changes: Any) -> Any:
    """``cfg`` released behind a Classic ELB (``release.load_balancer_type: classic``), without what needs an ALB
    (the smoke check's test listener, canary analysis, review apps); as app ``app`` when given."""
    rel = cfg.release
    release = dataclasses.replace(
        rel,
        load_balancer_type="classic",
        steps=(50, 100),
        smoke_check=None,
        analysis=dataclasses.replace(rel.analysis, enabled=False),
        **release_changes,
    )
    return dataclasses.replace(cfg, release=release, review=None, app=app or cfg.app)


def with_alarm(cfg: Any) -> Any:
    """``cfg`` gated on the alarm ``web-5xx`` (what seeding it needs), with the pause the alarm needs to fire."""
    pause = AlarmTiming("web-5xx", seed.ALARM_PERIOD, 1).seconds_to_fire()  # seed._alarms: one period
    return dataclasses.replace(cfg, release=dataclasses.replace(cfg.release, alarms=("web-5xx",), pause_seconds=pause))


@contextlib.contextmanager
def live_release(
    folder: Path, repo: Path, cache: Path, pause: int = 2, region: str = "us-east-1"
) -> Iterator[tuple[Any, Any, Any]]:
    """``(config, stack, aws)``: a live local stack seeded for ``project(folder / "project")``'s release, its blue
    slot (the stack's placeholder app) healthy within 180 s; stopped afterwards."""
    from toolkit import config
    from toolkit.local import seed, stack
    from toolkit.release import slots

    cfg = config.load("local", project(folder / "project", repo, pause=pause))
    st = stack.Stack(state_dir=folder / "state", cache_dir=cache, live=True)
    url = stack.up(st, region, seeders=(seed.seed_release(cfg),))
    try:
        aws = LocalEnvironment(region=region, endpoint=url, stack=st)
        env, deadline = slots.resolve(cfg, aws), time.monotonic() + 180
        while slots.read(env, aws).blue.healthy < 2:
            if time.monotonic() > deadline:
                raise RuntimeError(f"blue not healthy in 180 s: {slots.read(env, aws).blue}")
            time.sleep(0.5)
        yield cfg, st, aws
    finally:
        stack.down(st)


def killed_then_rerun(
    project: Path,
    state: Path,
    cache: Path,
    ami: str,
    at: str = "weight 50%",
    reached: Callable[[], bool] | None = None,
    killed: Callable[[], None] | None = None,
) -> subprocess.CompletedProcess:
    """``invoke release --ami AMI`` killed with SIGKILL (its whole process group) after the line holding ``at``, then run again.

    ``reached``: polled after that line until it is true (the line is printed before the change it names is made),
    then the kill. ``killed``: called between the kill and the rerun (to look at what the kill left).
    Returns the rerun; the kill happens within 300 s whatever the output.
    """
    env = dict(os.environ, RODEO_STATE_DIR=str(state), RODEO_CACHE_DIR=str(cache), RODEO_LOCAL_LIVE="1")
    invoke = str(BIN / "invoke")
    proc = subprocess.Popen(
        [invoke, "release", "--ami", ami],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if at in line or time.monotonic() > deadline:
            break
    while reached is not None and any(at in line for line in seen) and not reached() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    if not any(at in line for line in seen):
        raise RuntimeError(f"the release never printed {at!r}: {''.join(seen[-10:])}")
    if reached is not None and not reached():
        raise RuntimeError(f"the release printed {at!r} but never got there in 300 s")
    if killed is not None:
        killed()
    return subprocess.run(
        [invoke, "release", "--ami", ami], cwd=project, env=env, capture_output=True, text=True, timeout=600
    )


@dataclass
class LiveSample:
    """A live local stack serving the sample project: its folder, config, stack, clients and release resources."""

    project: Path
    cfg: Any
    st: Any
    aws: Any
    env: Any

    def urls(self) -> dict[int, str]:
        """Listener port -> the local load balancer's loopback URL."""
        return stack.listener_urls(self.st, "web")


@contextlib.contextmanager
def live_sample(
    folder: Path, repo: Path, cache: Path, pause: int = 2, boot_timeout: float = 300, alarmed: bool = False
) -> Iterator[LiveSample]:
    """A live local stack (seeded for releases) for a sample project under ``folder``, blue's placeholder app healthy; stopped after.

    ``alarmed``: its config gated on the seeded alarm ``web-5xx``, with the pause it needs to fire (``with_alarm``).
    """
    root = project(folder / "project", repo, pause=pause)
    cfg = config.load("local", root)
    cfg = with_alarm(cfg) if alarmed else cfg
    st = stack.Stack(state_dir=folder / "state", cache_dir=cache, live=True)
    url = stack.up(st, "us-east-1", seeders=(seed.seed_release(cfg),))
    try:
        aws = LocalEnvironment(region="us-east-1", endpoint=url, stack=st)
        env = slots.resolve(cfg, aws)
        deadline = time.monotonic() + boot_timeout
        while slots.read(env, aws).blue.healthy < 2:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the placeholder app is not healthy in blue after {boot_timeout:.0f}s")
            time.sleep(0.5)
        yield LiveSample(root, cfg, st, aws, env)
    finally:
        stack.down(st)


PROCFILE_APP = "examples/procfile-app"  # the sample Procfile app (no playbook, no tests of its own)


def procfile_repository(folder: Path, repo: Path) -> Path:
    """A fresh git repository under ``folder`` holding only the sample Procfile app, one commit on ``main``."""
    shutil.copytree(repo / PROCFILE_APP, folder, ignore=shutil.ignore_patterns("__pycache__"))
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.com",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.com",
    )
    for cmd in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "a Procfile app"]):
        subprocess.run(["git", "-C", str(folder), *cmd], check=True, env=env, capture_output=True, timeout=30)
    return folder


def procfile_project(root: Path, repo: Path, app_repo: Path, pause: int = 2) -> Path:
    """``project`` whose ``app`` image is the Procfile app in ``app_repo``, in the three lines a team writes."""
    project(root, repo, pause=pause)
    yml = root / "inventories/local/rodeo.yml"
    lines = [line for line in yml.read_text().splitlines(keepends=True) if not line.startswith("  app: {")]
    at = next(i for i, line in enumerate(lines) if line.startswith("release:"))
    lines[at:at] = ["  app:\n", "    parent: base\n", f"    app_source: {{git: {app_repo}, ref: main}}\n"]
    yml.write_text("".join(lines))
    return root


def register_base(cfg: Any, st: Any, aws: Any, layers: dict[str, Path]) -> str:
    """Register the cached sample base layer as the verified AMI a bake of ``base`` would make now (its inputs hash):
    a bake of a child image reuses it instead of baking base. Returns its id."""
    from toolkit.bake.plan import gather, plan_bake

    plan = plan_bake(gather(cfg, aws, "base", st.state_dir), cfg, st.state_dir)
    tags = {
        "rodeo:app": cfg.app,
        "rodeo:image": "base",
        "rodeo:verified": "true",
        "rodeo:inputs-hash": plan.inputs_hash,
        "rodeo:git-sha": "layers",
        "rodeo:built-at": plan.built_at,
    }
    return register(
        st, aws.client("ec2"), f"web-base-{plan.inputs_hash[:12]}", tags, [layers["rootfs"], layers["base"]]
    )
