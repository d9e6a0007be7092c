"""The config loader's unit at a first boot where AWS is not ready yet (issue 19, item 10), booted for real.

The loader fails once (as it does when the instance profile's credentials
come later than its minute of retries); systemd starts it again
(``Restart=on-failure``), and the app that requires it starts then. Without
the unit's ``ExecStartPost`` the app stays dead: systemd 252 fails the
dependent start job and never queues it again (systemd/systemd#18856). The
unit is the base role's own file, with only its ``ExecStart`` (a script that
fails on its first run) and ``RestartSec`` (1 s, to keep the test short)
replaced; the machine is the stack's Debian root file system under an overlay,
booted by systemd-nspawn with no network, and without cloud-init (its
``cloud-init.disabled`` file): with no metadata service to answer, cloud-init
would hold the boot for its ``max_wait`` (60 s) before any of this starts.
"""

from __future__ import annotations

import re
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.integration.local.conftest import CACHE
from toolkit.errors import SandboxError, StackError
from toolkit.hosts import sandbox
from toolkit.local import cgroups, stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
ROOT = Path(__file__).resolve().parents[3]
UNIT = ROOT / "playbooks/roles/base/files/rodeo-config.service"
FAILS_ONCE = "/bin/sh -c 'test -e /run/rodeo-config/tried || { touch /run/rodeo-config/tried; exit 1; }'"
APP = """[Unit]
Requires=rodeo-config.service
After=rodeo-config.service
[Service]
ExecStart=/bin/sleep infinity
[Install]
WantedBy=multi-user.target
"""
# Once the boot settles (at most 20 s): the app's state, the loader's, and how often systemd restarted the loader; then off.
REPORT = """[Unit]
After=multi-user.target
[Service]
Type=oneshot
ExecStart=/bin/sh -c 'for i in $$(seq 40); do systemctl is-active -q app.service && break; sleep 0.5; done; \
{ systemctl is-active app.service; systemctl is-active rodeo-config.service; systemctl show -p NRestarts --value rodeo-config.service; } > /report/out; \
systemctl poweroff'
[Install]
WantedBy=multi-user.target
"""


@pytest.fixture
def machine(tmp_path):
    """An overlay of the stack's root file system (mounted), the folder the machine reports into; unmounted afterwards."""
    try:
        sandbox.check_host()
        stack.check_live_host()
        rootfs = sandbox.ensure_rootfs(sandbox.rootfs_path(CACHE))
    except (SandboxError, StackError) as exc:
        pytest.skip(f"no live local stack here: {exc}")
    for name in ("upper", "work", "merged", "report"):
        (tmp_path / name).mkdir()
    merged = tmp_path / "merged"
    subprocess.run(
        [
            "mount",
            "-t",
            "overlay",
            "overlay",
            "-o",
            f"lowerdir={rootfs},upperdir={tmp_path / 'upper'},workdir={tmp_path / 'work'}",
            str(merged),
        ],
        check=True,
    )
    try:
        yield merged, tmp_path / "report"
    finally:
        subprocess.run(["umount", str(merged)], check=True)
    assert str(merged) not in Path("/proc/mounts").read_text()


def test_the_app_starts_after_the_loader_failed_once(machine):
    merged, report = machine
    unit = UNIT.read_text()
    unit = re.sub(r"(?m)^ExecStart=.*$", f"ExecStart={FAILS_ONCE}", unit)
    unit = re.sub(r"(?m)^RestartSec=.*$", "RestartSec=1", unit)
    systemd = merged / "etc/systemd/system"
    wants = systemd / "multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    (merged / "etc/cloud/cloud-init.disabled").write_text("")
    for name, text in (("rodeo-config.service", unit), ("app.service", APP), ("report.service", REPORT)):
        (systemd / name).write_text(text)
        (wants / name).symlink_to(f"/etc/systemd/system/{name}")
    name = f"test-{uuid.uuid4().hex[:8]}"
    # In a cgroup of its own, as the stack's instances boot: nspawn --keep-unit makes its payload and supervisor
    # cgroups where it starts, and left them empty beside the worker's own.
    folders = cgroups.folders_for(name)
    try:
        booted = _boot(merged, report, f"{cgroups.PREFIX}{name}", folders)
        ran_in = [f for f in folders if (f / "payload").is_dir()]
    finally:
        cgroups.remove(folders)
    assert ran_in == folders and [f for f in folders if f.exists()] == []
    console = re.sub(r"\x1b\[[0-9;]*m", "", booted.stdout + booted.stderr)
    assert "Dependency failed for app.service" in console, console[-3000:]  # the first try failed the app's start job
    # app, loader, restarts of the loader
    assert (report / "out").read_text().split() == ["active", "active", "1"], [
        line for line in console.splitlines() if ".service" in line
    ]


def _boot(merged: Path, report: Path, name: str, folders: list[Path]) -> subprocess.CompletedProcess:
    """Boot ``merged`` until its report service powers it off, nspawn started in ``folders``."""
    return subprocess.run(
        [
            "systemd-nspawn",
            "-q",
            "--register=no",
            "--keep-unit",
            "--private-network",
            "-D",
            str(merged),
            f"--bind={report}:/report",
            "-b",
            "-M",
            name,
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: cgroups.enter(folders),
    )
