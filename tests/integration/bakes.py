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
        # These tests measure bakes and moto-side releases: no booted instances (tests/integration/local/ covers those).
        env.setdefault("RODEO_LOCAL_LIVE", "0")
        env["PATH"] = path or f"{self.venv_bin}:{env['PATH']}"
        return env

    def invoke(self, *args: str, path: str | None = None, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.venv_bin / "invoke"), *args], cwd=self.root, env=self.env(path, env),
                              capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def invoke_here(self, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        """``invoke ARGS`` in this process (the project's own tasks.py, its cwd and environment): no interpreter start-up.

        For commands that end before any subprocess or signal handler matters (bad config, bad flags).
        """
        import contextlib
        import importlib.util
        import io

        from invoke import Program

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
                    Program(namespace=tasks.ns, name="invoke", binary="invoke").run(["invoke", *args])
                except SystemExit as exc:
                    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            os.chdir(saved_cwd)
            os.environ.clear()
            os.environ.update(saved_env)
            signal.signal(signal.SIGTERM, saved_signal)
        return subprocess.CompletedProcess(["invoke", *args], code, out.getvalue(), err.getvalue())

    def minimal_images(self) -> None:
        """One-task base and app playbooks with one test each: for tests of the bake's mechanics, not the sample's content."""
        for image in ("base", "app"):
            self.write(f"playbooks/{image}.yml", f"- name: {image} image\n  hosts: all\n  gather_facts: false\n  tasks:\n"
                                                 "    - name: Mark the image\n      ansible.builtin.command: /bin/true\n      changed_when: false\n")
            self.write(f"tests/image/test_{image}.py", "def test_the_host_answers(host):\n    assert host.file('/etc/os-release').exists\n")

    def start(self, *args: str) -> subprocess.Popen:
        """``invoke ARGS`` running, to be interrupted: Ctrl-C reaches it even when this suite runs in the background."""
        return subprocess.Popen([str(self.venv_bin / "invoke"), *args], cwd=self.root, env=self.env(), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, start_new_session=True,
                                preexec_fn=default_sigint)

    def read(self, rel: str) -> str:
        return (self.root / rel).read_text()

    def write(self, rel: str, text: str) -> None:
        (self.root / rel).write_text(text)

    def append(self, rel: str, text: str) -> None:
        with open(self.root / rel, "a") as fh:
            fh.write(text)

    @staticmethod
    def amis(ec2) -> list[str]:
        return sorted(i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"])


def default_sigint() -> None:
    """In a child before exec: SIGINT back to its default (a background shell starts commands with it ignored,
    and Python then installs no KeyboardInterrupt handler)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def residue(state: Path) -> dict:
    """Mounts and processes (sshd, unshare, packer) that still refer to the state folder."""
    needle = str(state)
    processes = [f"{cmdline} {root}"[:200] for _, cmdline, root in procs.processes()
                 if needle in f"{cmdline} {root}" and "moto" not in cmdline]
    return {"mounts": procs.mounts((needle,)), "processes": processes}


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
    s = stack.Stack(state_dir=state, cache_dir=CACHE)
    url = stack.up(s, "us-east-1")
    yield s, url
    stack.down(s)


@pytest.fixture()
def project(tmp_path, local_stack) -> Project:
    return Project(tmp_path / "project", local_stack[0].state_dir)


@pytest.fixture()
def ec2(local_stack):
    return LocalEnvironment(region="us-east-1", endpoint=local_stack[1]).client("ec2")
