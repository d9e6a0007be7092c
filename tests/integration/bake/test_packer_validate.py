"""The rendered templates are valid for the real Packer binary."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from toolkit import config
from toolkit.packer import render
from toolkit.packer.run import version

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def packer_version():
    if shutil.which("packer") is None:
        pytest.fail("packer is not installed (make setup)", pytrace=False)
    return version()


@pytest.mark.parametrize(
    ("image", "reach"),
    [
        ("base", {}),
        ("app", {}),
        # issue 19 item 12: Packer inside the VPC, no public IP asked for
        ("base", {"ssh_interface": "private_ip", "associate_public_ip_address": False}),
    ],
)
def test_packer_validate_accepts_the_template(tmp_path, packer_version, image, reach):
    """Also proves Packer 1.6.6 takes ssh_interface, associate_public_ip_address and the aws_polling block (item 16)."""
    cfg = config.load("local", ROOT)
    template = tmp_path / f"{image}.pkr.hcl"
    template.write_text(render.render(cfg, image, packer_version))
    key = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    values = {
        "app": "web",
        "env": "local",
        "region": "us-east-1",
        "source_ami": "ami-12345678",
        "ssh_keypair_name": "k",
        "ssh_private_key_file": str(key),
        "bake_id": "b",
        "bake_dir": str(tmp_path),
        "git_sha": "0" * 40,
        "inputs_hash": "h",
        "toolkit_version": "0",
        "built_at": "2026-01-01T00:00:00Z",
        "copy_to_regions": ["us-west-2"],
        "ssh_source_cidrs": ["127.0.0.1/32"],
    }
    values.update(reach)
    if cfg.image(image).app_source is not None:
        values.update(app_source="examples/webapp", app_commit="sha256:" + "0" * 64, app_version="1.0.0")
    var_file = tmp_path / "v.pkrvars.hcl"
    var_file.write_text(render.var_file(values))
    if render.needs_plugins(packer_version):
        subprocess.run(["packer", "init", str(template)], check=True)
    proc = subprocess.run(
        ["packer", "validate", f"-var-file={var_file}", str(template)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_packer_validate_rejects_the_other_versions_template(tmp_path, packer_version):
    """The version switch matters: 1.6.6 refuses required_plugins (so we must not render it there)."""
    if render.needs_plugins(packer_version):
        pytest.skip("only meaningful with a Packer older than 1.7")
    cfg = config.load("local", ROOT)
    template = tmp_path / "base.pkr.hcl"
    template.write_text(render.render(cfg, "base", (1, 9, 0)))
    proc = subprocess.run(["packer", "validate", "-syntax-only", str(template)], capture_output=True, text=True)
    assert proc.returncode != 0
    assert 'Blocks of type "required_plugins" are not expected here' in proc.stdout + proc.stderr, (
        proc.stdout + proc.stderr
    )
