"""Fixtures for tests that need the local build instance (root, mmdebstrap)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from toolkit.errors import SandboxError
from toolkit.hosts import sandbox


@pytest.fixture(scope="session")
def rootfs() -> Path:
    """The cached Debian root file system, built on first use (~30 s). A machine that cannot build it fails the
    tests that need it: a skip would turn a broken root file system into a green suite."""
    try:
        sandbox.check_host()
    except SandboxError as exc:
        pytest.fail(f"no local build instance here: {exc}", pytrace=False)
    cache = Path(os.environ.get("RODEO_CACHE_DIR", Path.home() / ".cache/rodeo"))
    try:
        return sandbox.ensure_rootfs(sandbox.rootfs_path(cache))
    except SandboxError as exc:
        pytest.fail(f"cannot build the root file system: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def ssh_key(tmp_path_factory) -> Path:
    """A fresh ed25519 private key; its public half is next to it (``.pub``)."""
    key = tmp_path_factory.mktemp("ssh") / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "rodeo-test", "-f", str(key)], check=True)
    return key


# Fixtures for command-line bakes, shared by test_bake, test_cache and test_verify_ami.
from tests.integration.bakes import ec2, local_stack, project  # noqa: E402, F401
