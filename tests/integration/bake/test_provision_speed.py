"""Provisioning with Mitogen, its fallback to plain Ansible, and the bake's one SSH connection.

Each test runs the bake's steps (provision, image tests, seal) as Packer's
shell-local provisioners would, against a real sandbox on the cached Debian
root file system: no moto, no Packer, the same SSH.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from toolkit import config as config_mod
from toolkit.bake import image_tests, provision, seal
from toolkit.errors import VerifyError
from toolkit.hosts import sandbox, ssh
from toolkit.hosts.ssh import SshHost

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def venv_on_path(monkeypatch):
    """ansible-playbook and pytest from this venv, as Packer's environment has them (``packer_env``)."""
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{os.environ['PATH']}")


def settings(strategy: str) -> config_mod.Config:
    cfg = config_mod.load("local", ROOT)
    return dataclasses.replace(
        cfg, images={k: dataclasses.replace(v, ansible_strategy=strategy) for k, v in cfg.images.items()}
    )


def few_tasks(strategy: str) -> config_mod.Config:
    """Settings whose image ``base`` runs the sample app's playbook: a few tasks, for tests of how Ansible runs, not of the base role."""
    cfg = settings(strategy)
    return dataclasses.replace(
        cfg, images={"base": dataclasses.replace(cfg.images["base"], playbook=Path("playbooks/app.yml"))}
    )


@contextlib.contextmanager
def build_host(layers: list[Path], bake_dir: Path, key: Path):
    """A sandbox on ``layers`` writing into ``bake_dir/layer``, its sshd log in ``bake_dir/sshd.log``."""
    bake_dir.mkdir(parents=True, exist_ok=True)
    with sandbox.build_instance(
        layers, bake_dir / "layer", key.with_suffix(".pub").read_text(), log=bake_dir / "sshd.log"
    ) as inst:
        host = SshHost(inst.host, inst.port, "admin", key)
        try:
            yield host
        finally:
            ssh.close_master(host, bake_dir / "ssh_config")


def image_files(upper: Path, lower: list[Path]) -> dict[str, tuple]:
    """What an upper layer adds or changes: every file and link, and folders the lower layers lack or hold otherwise."""
    out = {}
    for top, dirs, files in os.walk(upper):
        for name in dirs + files:
            path = Path(top) / name
            rel = str(path.relative_to(upper))
            st = path.lstat()
            meta = (stat.filemode(st.st_mode), st.st_uid, st.st_gid)
            if stat.S_ISDIR(st.st_mode):
                below = next((layer / rel for layer in reversed(lower) if (layer / rel).exists()), None)
                if below is not None and below.is_dir():
                    bst = below.lstat()
                    if (stat.filemode(bst.st_mode), bst.st_uid, bst.st_gid) == meta:
                        continue  # copied up with the same metadata: no change to the image
                out[rel] = meta
            elif stat.S_ISLNK(st.st_mode):
                out[rel] = (*meta, os.readlink(path))
            else:
                out[rel] = (*meta, hashlib.sha256(path.read_bytes()).hexdigest())
    return out


def app_source_vars(cfg, bake_dir: Path) -> None:
    """What the pipeline hands the app role (``toolkit.bake.source``): here the sample's folder as it is."""
    bake_dir.mkdir(parents=True, exist_ok=True)
    (bake_dir / provision.APP_VARS).write_text(
        json.dumps({"rodeo_app_dir": str(cfg.root / "examples/webapp"), "rodeo_app_version": "1.0.0"})
    )


def provision_once(cfg, image: str, host: SshHost, bake_dir: Path) -> dict:
    """Provision ``image`` on ``host``; the run's counts, output and record."""
    out = io.StringIO()
    app_source_vars(cfg, bake_dir)
    counts = provision.run(cfg, image, host, bake_dir, out=out)
    record = json.loads((bake_dir / provision.RECORD).read_text())
    return {"counts": counts, "output": out.getvalue(), "record": record}


def provision_twice(cfg, image: str, host: SshHost, bake_dir: Path) -> dict:
    """Provision, then again: the second run must change nothing. Returns the first run's counts, output and record.

    The images compare because the seal removes apt's binary caches (var/cache/apt/*.bin), whose
    bytes depend on when apt built them.
    """
    made = provision_once(cfg, image, host, bake_dir)
    # ansible-runner adds a run's events to those already in its artifacts folder: keep the first run's apart
    (bake_dir / "ansible/artifacts/provision").rename(bake_dir / "ansible/artifacts/provision-first")
    again = provision.run(cfg, image, host, bake_dir, out=io.StringIO())
    assert again["changed"] == 0 and again["failures"] == 0, f"{image}: a second run changed something: {again}"
    return made


def provision_once_and_seal(cfg, image: str, host: SshHost, bake_dir: Path) -> dict:
    """Provision and seal: the image plain Ansible makes (the run Mitogen's is compared with)."""
    made = provision_once(cfg, image, host, bake_dir)
    seal.seal(host, bake_dir, {})
    return made


def bake_as_the_pipeline_does(cfg, image: str, host: SshHost, bake_dir: Path) -> dict:
    """Mitogen, as a bake runs it: provision (twice: idempotence), image tests, seal, all on one SSH login."""
    cfg_file = bake_dir / "ssh_config"
    made = provision_twice(cfg, image, host, bake_dir)
    assert ssh.master_running(host, cfg_file)  # kept for the next step (ssh -O check)
    report = image_tests.run(cfg, image, host, bake_dir, stdout=subprocess.DEVNULL)
    assert report["tests"] > 0 and report["failures"] == 0, report
    seal.seal(host, bake_dir, {})
    assert not ssh.master_running(host, cfg_file)  # the seal step ends it
    logins = [ln for ln in (bake_dir / "sshd.log").read_text().splitlines() if ln.startswith("Accepted publickey")]
    assert len(logins) == 1, logins
    return made


def test_sample_playbooks_bake_the_same_layered_images_with_mitogen_and_plain_ansible(rootfs, ssh_key, tmp_path):
    """The sample playbooks, base then app on it: the same PLAY RECAP counts and the same files either way.

    The Mitogen bakes run as the pipeline runs them, and a second run changes
    nothing: the image tests pass, and provisioning, the tests and the seal
    share one SSH login. Plain Ansible provisions once: its image is what is
    compared (a second run would cost two more plain-Ansible runs of the
    sample's playbooks and prove nothing about the image).
    """
    made: dict[str, dict] = {}
    for strategy in ("mitogen", "linear"):
        cfg, layers = settings(strategy), [rootfs]
        for image in ("base", "app"):
            bake_dir = tmp_path / strategy / image
            with build_host(layers, bake_dir, ssh_key) as host:
                baked = (
                    bake_as_the_pipeline_does(cfg, image, host, bake_dir)
                    if strategy == "mitogen"
                    else provision_once_and_seal(cfg, image, host, bake_dir)
                )
                made[f"{strategy}/{image}"] = dict(baked, files=image_files(bake_dir / "layer", layers))
            assert sandbox.leftovers(bake_dir / "layer") == {"mounts": [], "processes": []}
            layers = [*layers, bake_dir / "layer"]
    for image in ("base", "app"):
        fast, plain = made[f"mitogen/{image}"], made[f"linear/{image}"]
        assert fast["record"]["strategy"] == "mitogen" and fast["record"]["fallback"] is None, fast["output"]
        assert plain["record"]["strategy"] == "linear"
        assert fast["counts"] == plain["counts"] and fast["counts"]["changed"] > 0
        assert fast["files"] == plain["files"], {
            k for k in set(fast["files"]) | set(plain["files"]) if fast["files"].get(k) != plain["files"].get(k)
        }
        assert [f for f in fast["files"] if f.startswith("var/cache/apt/") and f.endswith(".bin")] == []  # the seal
    # Each layer holds only its own image's changes.
    base, app = made["mitogen/base"]["files"], made["mitogen/app"]["files"]
    assert "etc/ssh/sshd_config.d/50-rodeo.conf" in base and "opt/web/app.py" not in base
    assert "opt/web/app.py" in app and not any(path.startswith("etc/ssh/sshd_config.d") for path in app)


def test_a_mitogen_that_fails_to_load_falls_back_to_plain_ansible(rootfs, ssh_key, tmp_path):
    broken = tmp_path / "broken-strategy"
    broken.mkdir()
    (broken / f"{provision.MITOGEN_STRATEGY}.py").write_text("raise ImportError('this Mitogen is broken on purpose')\n")
    out = io.StringIO()
    bake_dir = tmp_path / "bake"
    minimal = few_tasks("mitogen")  # the fallback is what is tested, not the base role
    with build_host([rootfs], bake_dir, ssh_key) as host:
        app_source_vars(minimal, bake_dir)
        counts = provision.run(minimal, "base", host, bake_dir, out=out, strategy_plugins=broken)
    lines = out.getvalue().splitlines()
    announced = [ln for ln in lines if ln.startswith("mitogen: ")]
    assert len(announced) == 1 and "provisioning with Ansible's linear strategy instead" in announced[0], lines
    record = json.loads((bake_dir / provision.RECORD).read_text())
    assert record["strategy"] == "linear" and record["fallback"].startswith("failed to load")
    assert record["status"] == "successful" and counts["failures"] == 0 and counts["changed"] > 0
    # Both runs' artifacts are kept: the failed attempt's and the run that provisioned.
    artifacts = bake_dir / "ansible/artifacts"
    assert (artifacts / "provision/rc").read_text().strip() == "0"
    assert (artifacts / "provision-mitogen/rc").read_text().strip() != "0"


def test_linear_runs_plain_ansible_without_trying_mitogen(rootfs, ssh_key, tmp_path):
    out = io.StringIO()
    bake_dir = tmp_path / "bake"
    minimal = few_tasks("linear")
    with build_host([rootfs], bake_dir, ssh_key) as host:
        app_source_vars(minimal, bake_dir)
        provision.run(minimal, "base", host, bake_dir, out=out)
    assert "mitogen" not in out.getvalue()
    assert json.loads((bake_dir / provision.RECORD).read_text())["strategy"] == "linear"
    assert not (bake_dir / "ansible/artifacts/provision-mitogen").exists()


def test_the_seal_finds_the_key_in_a_file_changed_during_the_bake_not_in_older_files(
    rootfs, ssh_key, tmp_path, monkeypatch
):
    """The scan reads what changed since provisioning began (ctime on the host's clock), and finds the bake key there."""
    bake_dir = tmp_path / "bake"
    minimal = few_tasks("mitogen")
    with build_host([rootfs], bake_dir, ssh_key) as host:
        app_source_vars(minimal, bake_dir)
        provision.run(minimal, "base", host, bake_dir, out=io.StringIO())
        cfg_file = bake_dir / "ssh_config"
        markers = seal.key_markers(ssh_key)
        needles = list(markers.items())
        ssh.run(
            host,
            cfg_file,
            "sudo -n tee /var/lib/leaked-key >/dev/null",
            stdin=markers["the bake's private SSH key"] + "\n",
        )
        with pytest.raises(VerifyError, match="private SSH key was found on the build instance in /var/lib/leaked-key"):
            seal.seal(host, bake_dir, {})
        # A scan that starts after the file changed skips it; a full scan finds it.
        monkeypatch.setattr(seal, "CLOCK_MARGIN", 0)
        time.sleep(1.2)
        since = int(ssh.run(host, cfg_file, "date +%s").stdout)
        assert seal.scan_host(host, cfg_file, needles, since=since) == []
        assert ("the bake's private SSH key", "/var/lib/leaked-key") in seal.scan_host(
            host, cfg_file, needles, since=None
        )
