"""The Packer template is rendered with python-hcl2, deterministically, per Packer version."""

from __future__ import annotations

import os
from pathlib import Path

import hcl2
import pytest

from toolkit import config
from toolkit.packer import render

ROOT = Path(__file__).resolve().parents[3]
GOLDEN = Path(__file__).parent / "golden"
VERSIONS = {"1.6.6": (1, 6, 6), "1.9.4": (1, 9, 4)}


@pytest.fixture(scope="module")
def cfg():
    return config.load("local", ROOT)


def golden_file(image: str, name: str) -> Path:
    """Debian's Packer (1.6.6) renders the committed packer/*.pkr.hcl; newer ones have golden copies."""
    return ROOT / "packer" / f"{image}.pkr.hcl" if name == "1.6.6" else GOLDEN / f"{image}-packer-{name}.pkr.hcl"


@pytest.mark.parametrize("name", sorted(VERSIONS))
@pytest.mark.parametrize("image", ["base", "app"])
def test_matches_the_golden_file(cfg, image, name):
    """For 1.6.6 this also proves the committed templates are current ('invoke render' and commit)."""
    text = render.render(cfg, image, VERSIONS[name])
    golden = golden_file(image, name)
    if os.environ.get("RODEO_UPDATE_GOLDEN") == "1":
        golden.write_text(text)
    assert text == golden.read_text(), f"re-run with RODEO_UPDATE_GOLDEN=1 if the change to {golden.name} is intended"


def test_is_deterministic(cfg):
    assert render.render(cfg, "app", (1, 6, 6)) == render.render(cfg, "app", (1, 6, 6))


def test_required_plugins_only_from_packer_1_7(cfg):
    old = hcl2.loads(render.render(cfg, "base", (1, 6, 6)))
    new = hcl2.loads(render.render(cfg, "base", (1, 7, 0)))
    assert "packer" not in old
    plugins = new["packer"][0]["required_plugins"][0]["amazon"]
    assert plugins["source"] == '"github.com/hashicorp/amazon"'


def test_round_trip_keeps_the_shape(cfg):
    doc = hcl2.loads(render.render(cfg, "app", (1, 6, 6)))
    source = doc["source"][0]['"amazon-ebs"']['"app"']
    assert source["source_ami"] == "${var.source_ami}"
    assert source["custom_endpoint_ec2"] == "${var.endpoint}"
    assert source["tags"]['"rodeo:image"'] == '"app"'
    assert source["tags"]['"rodeo:verified"'] == '"true"'
    # The app image has an app source: its tags say which (base has none).
    assert set(source["tags"]) == {f'"{k}"' for k in render.LINEAGE_TAGS | render.APP_TAGS}
    assert source["snapshot_tags"] == source["tags"]
    provisioners = doc["build"][0]["provisioner"]
    commands = [p['"shell-local"']["inline"][0] for p in provisioners]
    assert len(commands) == 1 and "-m toolkit.bake.handoff" in commands[0]  # provision, image tests, seal: one process
    assert all("${build.Host}" in c and "${build.Port}" in c and "${build.User}" in c for c in commands)
    variables = {list(v)[0].strip('"') for v in doc["variable"]}
    assert variables == set(render.VARIABLES) | set(render.APP_VARIABLES)


def test_only_an_image_with_an_app_source_has_app_tags(cfg):
    base = hcl2.loads(render.render(cfg, "base", (1, 6, 6)))["source"][0]['"amazon-ebs"']['"base"']
    assert set(base["tags"]) == {f'"{k}"' for k in render.LINEAGE_TAGS}


def test_no_machine_specific_value_in_the_template(cfg):
    text = render.render(cfg, "app", (1, 6, 6))
    for volatile in (str(ROOT), "127.0.0.1", "ami-", ".rodeo"):
        assert volatile not in text


def test_var_file_refuses_unknown_variables():
    assert render.var_file({"app": "web", "ssh_port": 2222, "skip_region_validation": True}) == 'app = "web"\nssh_port = 2222\nskip_region_validation = true\n'
    with pytest.raises(KeyError):
        render.var_file({"nope": 1})


@pytest.mark.parametrize("version", [(1, 6, 6), (1, 9, 4)])
def test_safe_defaults_in_every_template(cfg, version):
    """Encrypted EBS, SSH only from the caller, the bake's own key pair, IMDSv2 where Packer allows it."""
    doc = hcl2.loads(render.render(cfg, "app", version))
    variables = {list(v)[0].strip('"'): list(v.values())[0] for v in doc["variable"]}
    assert variables["encrypt_boot"]["default"] is True
    assert "default" not in variables["ssh_source_cidrs"]  # no 0.0.0.0/0 fallback: the caller's /32 is required
    assert "default" not in variables["ssh_keypair_name"]  # Rodeo's per-bake key pair, deleted after the bake
    source = doc["source"][0]['"amazon-ebs"']['"app"']
    assert source["temporary_security_group_source_cidrs"] == "${var.ssh_source_cidrs}"
    assert source["encrypt_boot"] == "${var.encrypt_boot}"
    imds = source.get("metadata_options")
    if render.needs_plugins(version):
        assert imds == [{"http_endpoint": '"enabled"', "http_tokens": '"required"', "http_put_response_hop_limit": 1, "__is_block__": True}]
    else:
        assert imds is None  # Packer 1.6.6 rejects the block; the launch template requires IMDSv2 instead
    steps = [p['"shell-local"']["inline"][0].split(" -m ")[1].split()[0] for p in doc["build"][0]["provisioner"]]
    assert steps == ["toolkit.bake.handoff"]


def test_packer_cleans_up_on_error():
    from toolkit.packer.run import build_command

    assert "-on-error=cleanup" in build_command(Path("t.pkr.hcl"), Path("v.pkrvars.hcl"))


def test_write_renders_again_only_when_the_file_is_not_current(tmp_path):
    import shutil

    root = tmp_path / "p"
    for rel in ("inventories", "playbooks", "tests/image"):
        shutil.copytree(ROOT / rel, root / rel)
    cfg = config.load("local", root)
    path = render.write(cfg, "base", (1, 6, 6))
    expected = path.read_text()
    path.write_text(expected + "# edited by hand\n")
    assert render.write(cfg, "base", (1, 6, 6)).read_text() == expected
    assert render.write(cfg, "base", (1, 9, 4)).read_text() == render.render(cfg, "base", (1, 9, 4))


def test_a_bake_renders_from_its_cache_and_never_writes_packer(tmp_path, cfg):
    from toolkit.bake.plan import rendered

    before = {p: p.read_bytes() for p in (ROOT / "packer").iterdir()}
    cache = tmp_path / "cache"
    text = rendered(cfg, "base", (1, 9, 4), cache)
    assert text == render.render(cfg, "base", (1, 9, 4))
    (only,) = cache.iterdir()
    only.write_text("remembered\n")  # the second call reads the cache, not python-hcl2
    assert rendered(cfg, "base", (1, 9, 4), cache) == "remembered\n"
    assert {p: p.read_bytes() for p in (ROOT / "packer").iterdir()} == before


@pytest.mark.parametrize("version", [(1, 6, 6), (1, 9, 4)])
def test_packer_reaches_the_build_instance_the_way_the_image_says(cfg, version):
    """Issue 19 item 12: without ssh_interface and associate_public_ip_address Packer SSHes to a private IP and times out.

    Item 16: the AMI waiters poll for an hour (aws_polling), not the SDK's 10 minutes; every second, not every 15.
    """
    doc = hcl2.loads(render.render(cfg, "base", version))
    variables = {next(iter(v)).strip('"'): next(iter(v.values())) for v in doc["variable"]}
    assert (variables["ssh_interface"]["default"], variables["associate_public_ip_address"]["default"]) == ('"public_ip"', True)
    source = doc["source"][0]['"amazon-ebs"']['"base"']
    assert (source["ssh_interface"], source["associate_public_ip_address"]) == ("${var.ssh_interface}", "${var.associate_public_ip_address}")
    assert source["aws_polling"] == [{"delay_seconds": 1, "max_attempts": 3600, "__is_block__": True}]


def test_a_procfile_image_records_its_release_line_on_the_ami_and_snapshots(cfg):
    """Rodeo's app role's images (no playbook of their own): the release: line as a tag, for the release phase."""
    import dataclasses

    from toolkit.lineage import RELEASE_COMMAND_TAG, TAG_KEYS

    image = dataclasses.replace(
        cfg.image("app"), playbook=config.PROCFILE_PLAYBOOK, tests=config.PROCFILE_TESTS
    )  # what an app_source without a playbook gets
    procfile = dataclasses.replace(cfg, images={**cfg.images, "app": image})
    doc = hcl2.loads(render.render(procfile, "app", (1, 6, 6)))
    source = doc["source"][0]['"amazon-ebs"']['"app"']
    assert source["tags"][f'"{RELEASE_COMMAND_TAG}"'] == "${var.release_command}"
    assert source["snapshot_tags"] == source["tags"] and RELEASE_COMMAND_TAG in TAG_KEYS
    variables = {list(v)[0].strip('"'): list(v.values())[0] for v in doc["variable"]}
    assert variables["release_command"]["default"] == '""'  # no release: line, no release phase
    assert set(render.PROCFILE_TAGS) == {RELEASE_COMMAND_TAG}
    assert "release_command = \"bin/migrate\"" in render.var_file({"release_command": "bin/migrate"})
