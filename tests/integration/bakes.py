"""Fixtures for command-line bakes: a copy of the project, a shared local stack, residue checks."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from toolkit import procs
from toolkit.errors import SandboxError
from toolkit.hosts import sandbox
from toolkit.local import stack
from toolkit.local.environment import LocalEnvironment

ROOT = Path(__file__).resolve().parents[2]
COPIED = ("tasks.py", "ansible.cfg", "pyproject.toml", "inventories", "playbooks", "packer", "tests/image", "examples")
CACHE = Path(os.environ.get("RODEO_CACHE_DIR", Path.home() / ".cache" / "rodeo"))


# A minimal app that passes the load balancer's health check: /health served from a folder by Python's file server.
SERVING_TASKS = """\
    - name: The served folder exists
      ansible.builtin.file: {path: /srv/minimal, state: directory, mode: "0755"}
      become: true
    - name: The health path exists
      ansible.builtin.copy: {dest: /srv/minimal/health, content: "ok\\n", mode: "0644"}
      become: true
    - name: The file server is a unit
      ansible.builtin.copy:
        dest: /etc/systemd/system/minimal-web.service
        mode: "0644"
        content: |
          [Service]
          ExecStart=/usr/bin/python3 -m http.server 8080 --directory /srv/minimal
          [Install]
          WantedBy=multi-user.target
      become: true
    - name: The file server starts at boot
      ansible.builtin.systemd: {name: minimal-web.service, enabled: true}
      become: true
"""


class Project:
    """A copy of the project to change and run ``invoke`` in, as a user would."""

    venv_bin = Path(sys.executable).parent

    def __init__(self, root: Path, state: Path) -> None:
        self.root, self.state = root, state
        for rel in COPIED:
            src, dst = ROOT / rel, root / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(src, dst)

    def env(self, path: str | None = None, extra: dict | None = None) -> dict:
        env = dict(os.environ, RODEO_STATE_DIR=str(self.state), RODEO_CACHE_DIR=str(CACHE), **(extra or {}))
        env.pop("RODEO_DEBUG", None)
        # The shared stack is live (build instances boot); a stack these commands would start is not.
        env.setdefault("RODEO_LOCAL_LIVE", "0")
        env["PATH"] = path or f"{self.venv_bin}:{env['PATH']}"
        return env

    def invoke(
        self, *args: str, path: str | None = None, env: dict | None = None, timeout: int = 600
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.venv_bin / "invoke"), *args],
            cwd=self.root,
            env=self.env(path, env),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def invoke_here(self, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        """``invoke ARGS`` in this process (the project's own tasks.py, its cwd and environment): no interpreter start-up.

        For commands that end before any subprocess or signal handler matters (bad config, bad flags).
        """
        import contextlib
        import importlib.util
        import io

        out, err, code = io.StringIO(), io.StringIO(), 0
        saved_env, saved_cwd = dict(os.environ), os.getcwd()
        saved_signal = signal.getsignal(signal.SIGTERM)
        wanted = {k: v for k, v in self.env(extra=env).items() if v is not None}
        try:
            os.environ.clear()
            os.environ.update(wanted)
            os.chdir(self.root)
            spec = importlib.util.spec_from_file_location(f"rodeo_tasks_{id(self)}", self.root / "tasks.py")
            tasks = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(tasks)
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    tasks.RodeoProgram(namespace=tasks.ns, name="invoke", binary="invoke").run(
                        ["invoke", *args]
                    )  # what tasks.py gives invoke's own program
                except SystemExit as exc:
                    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            os.chdir(saved_cwd)
            os.environ.clear()
            os.environ.update(saved_env)
            signal.signal(signal.SIGTERM, saved_signal)
        return subprocess.CompletedProcess(["invoke", *args], code, out.getvalue(), err.getvalue())

    def minimal_images(self, serving: bool = False) -> None:
        """One-task base and app playbooks with one test each: for tests of the bake's mechanics, not the sample's content.

        ``serving``: the app image also answers the load balancer's health check (``/health`` on 8080, a static
        file server started at boot), for tests that release it: the instances of a release boot for real.
        """
        for image in ("base", "app"):
            self.write(
                f"playbooks/{image}.yml",
                f"- name: {image} image\n  hosts: all\n  gather_facts: false\n  tasks:\n"
                "    - name: Mark the image\n      ansible.builtin.command: /bin/true\n      changed_when: false\n"
                + (SERVING_TASKS if serving and image == "app" else ""),
            )
            self.write(
                f"tests/image/test_{image}.py",
                "def test_the_host_answers(host):\n    assert host.file('/etc/os-release').exists\n",
            )

    def start(self, *args: str) -> subprocess.Popen:
        """``invoke ARGS`` running, to be interrupted: Ctrl-C reaches it even when this suite runs in the background."""
        return subprocess.Popen(
            [str(self.venv_bin / "invoke"), *args],
            cwd=self.root,
            env=self.env(),
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=default_sigint,
        )

    def read(self, rel: str) -> str:
        return (self.root / rel).read_text()

    def write(self, rel: str, text: str) -> None:
        (self.root / rel).write_text(text)

    def append(self, rel: str, text: str) -> None:
        with open(self.root / rel, "a") as fh:
            fh.write(text)

    def live_slot_at_capacity(self, endpoint: str, timeout: float = 120.0) -> None:
        """The app's live slot sized to its ``capacity`` (desired, min, max) with that many healthy targets.

        The modules on a worker share its stack and the app ``web``: one before
        may have left the live slot smaller (``test_deploy.quick``: one
        instance), and a test that checks the invariant against ``capacity.min``
        must start from an environment that meets it.
        """
        from toolkit import config
        from toolkit.release import slots

        cfg = config.load("local", self.root)
        aws = LocalEnvironment(region=cfg.region, endpoint=endpoint)
        env = slots.resolve(cfg, aws)
        live = slots.read(env, aws).active.name
        cap = cfg.release.capacity
        slots.set_capacity(env, aws, live, cap.desired, cap.min, cap.max)
        assert slots.wait_in_service(env, aws, live, cap.desired, timeout), slots.read(env, aws)

    @staticmethod
    def amis(ec2) -> list[str]:
        return sorted(i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"])


def default_sigint() -> None:
    """In a child before exec: SIGINT back to its default (a background shell starts commands with it ignored,
    and Python then installs no KeyboardInterrupt handler)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def residue(state: Path) -> dict:
    """Mounts and processes (sshd, unshare, packer, a build instance) that still refer to the state folder.

    The live stack's own (moto, HAProxy, the instances of its seeded release)
    are not a bake's; a build instance is (its folder names its bake), and so
    is whatever still serves a bake's SSH socket.
    """
    needle, live = str(state), str(state / "local" / "live")
    sockets = tuple(f"/run/rodeo-bakes/{bake.name}.sock" for bake in state.glob("bakes/*"))
    processes = [
        f"{cmdline} {root}"[:200]
        for _, cmdline, root in procs.processes()
        if (
            needle in f"{cmdline} {root}" and "moto" not in cmdline and (live not in cmdline or _a_bakes(cmdline, live))
        )
        or any(sock in cmdline for sock in sockets)
    ]
    return {"mounts": procs.mounts((needle,)), "processes": processes}


def _a_bakes(cmdline: str, live: str) -> bool:
    """True when a live-stack process belongs to a build instance (its instance folder is marked with its bake)."""
    head = live + "/instances/"
    if head not in cmdline:
        return False
    iid = cmdline.split(head, 1)[1].split("/", 1)[0].split()[0]
    return (Path(head) / iid / "bake-id").exists()


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory):
    """One moto server for the bake tests, stopped at the end."""
    try:
        sandbox.check_host()
        sandbox.ensure_rootfs(sandbox.rootfs_path(CACHE))
    except SandboxError as exc:
        pytest.fail(f"no local build instance here: {exc}", pytrace=False)
    if shutil.which("packer") is None:
        pytest.fail("packer is not installed (make setup)", pytrace=False)
    state = tmp_path_factory.mktemp("state")
    s = stack.Stack(
        state_dir=state, cache_dir=CACHE, live=True
    )  # the build instances boot (toolkit/local/buildinstances.py)
    url = stack.up(s, "us-east-1")
    yield s, url
    stack.down(s)


@pytest.fixture()
def project(tmp_path, local_stack) -> Project:
    return Project(tmp_path / "project", local_stack[0].state_dir)


@pytest.fixture()
def ec2(local_stack):
    return LocalEnvironment(region="us-east-1", endpoint=local_stack[1]).client("ec2")
