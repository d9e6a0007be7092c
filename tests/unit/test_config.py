"""rodeo.yml is read into frozen dataclasses; every mistake is one ConfigError naming file and key."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import pytest

from toolkit import config, regions
from toolkit.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]

GOOD = """
app: web
stack: local
region: us-east-1
images:
  base:
    source_ami: {name: "debian-12-*", owners: ["self"]}
    playbook: pb.yml
    tests: t.py
  app:
    parent: base
    playbook: pb.yml
    tests: t.py
release:
  load_balancer: web
  slots: {blue: web-blue, green: web-green}
"""


def project(tmp_path: Path, text: str, env: str = "dev") -> Path:
    (tmp_path / "inventories" / env).mkdir(parents=True)
    (tmp_path / "inventories" / env / "rodeo.yml").write_text(textwrap.dedent(text))
    (tmp_path / "pb.yml").write_text("- hosts: all\n")
    (tmp_path / "t.py").write_text("def test_x(): pass\n")
    return tmp_path


def test_the_local_environment_loads():
    cfg = config.load("local", ROOT)
    assert cfg.env == "local" and cfg.is_local
    assert [i.name for i in cfg.lineage("app")] == ["base", "app"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.app = "other"


def test_a_good_file_gives_typed_values(tmp_path):
    cfg = config.load("dev", project(tmp_path, GOOD))
    assert cfg.images["base"].source_ami == config.AmiFilter(name="debian-12-*", owners=("self",))
    assert cfg.images["app"].parent == "base"
    assert cfg.release.steps == (10, 50, 100)
    assert cfg.release.capacity == config.Capacity(2, 4, 2)


def test_a_classic_elb_rotates_in_two_steps_unless_told_one(tmp_path):
    classic = _edit(GOOD, "  slots:", "  load_balancer_type: classic\n  slots:")
    assert config.load("dev", project(tmp_path / "a", classic)).release.steps == (50, 100)
    one = _edit(classic, "  slots:", "  steps: [100]\n  slots:")
    assert config.load("dev", project(tmp_path / "b", one)).release.steps == (100,)


def test_each_region_of_a_release_in_waves_sees_its_own_ids_and_the_config_of_region(tmp_path):
    waves = _edit(
        GOOD,
        "  slots:",
        "  subnets: [subnet-0e1e1e1e1]\n  alarms: [web-5xx]\n  one_box: true\n"
        "  regions: [us-east-1, {region: us-west-2, subnets: [subnet-0a1a1a1a1], alarms: [web-west-5xx]}]\n  slots:",
    )
    cfg = config.load("dev", project(tmp_path, _edit(waves, "images:", "copy_to_regions: [us-west-2]\nimages:")))
    east, west = (regions.in_region(cfg, wave, first=i == 0) for i, wave in enumerate(regions.waves(cfg)))
    assert (east.region, east.config_region, east.release.subnets, east.release.alarms) == (
        "us-east-1",
        "us-east-1",
        ("subnet-0e1e1e1e1",),
        ("web-5xx",),
    )
    assert (west.region, west.config_region, west.release.subnets, west.release.alarms) == (
        "us-west-2",
        "us-east-1",
        ("subnet-0a1a1a1a1",),
        ("web-west-5xx",),
    )
    assert (east.release.one_box, west.release.one_box, east.release.regions, west.release.security_groups) == (
        True,
        False,
        (),
        (),
    )


def _edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


BAD = [
    # (change to GOOD, words the message must hold, words the hint must hold)
    (("app: web", "app: web\nregoin: x"), "regoin: unknown key", "did you mean 'region'"),
    (
        ("    playbook: pb.yml\n    tests: t.py\n  app", "    playbok: pb.yml\n    tests: t.py\n  app"),
        "images.base.playbok: unknown key",
        "did you mean 'playbook'",
    ),
    (("region: us-east-1", "region: us-east-l"), "region: 'us-east-l' is not an AWS region", "us-east-1"),
    (("stack: local", "stack: cloud"), "stack: 'cloud' is not known", "local, aws"),
    (("    parent: base", "    parent: bsae"), "images.app.parent: no image named 'bsae'", "app, base"),
    (
        ("    playbook: pb.yml\n    tests: t.py\nrelease", "    playbook: missing.yml\n    tests: t.py\nrelease"),
        "images.app.playbook: missing.yml does not exist",
        "relative to the project root",
    ),
    (
        ("    playbook: pb.yml\n    tests: t.py\nrelease", "    playbook: ../../etc/passwd\n    tests: t.py\nrelease"),
        "is outside the project",
        "inside the project",
    ),
    (
        ("  slots:", "  steps: [50, 10, 100]\n  slots:"),
        "release.steps: [50, 10, 100] must increase and end at 100",
        "percentages",
    ),
    (("  slots:", "  steps: [10, 50]\n  slots:"), "must increase and end at 100", ""),
    (("  slots:", "  capacity: {min: -1, desired: 2, max: 4}\n  slots:"), "counts must be positive", ""),
    (("  slots:", "  capacity: {min: 3, desired: 2, max: 4}\n  slots:"), "need min <= desired <= max", ""),
    (
        ("  slots:", "  pause_seconds: soon\n  slots:"),
        "release.pause_seconds: expected a whole number",
        "without quotes",
    ),
    (("  slots:", "  pause_seconds: true\n  slots:"), "release.pause_seconds: expected a whole number", ""),
    (("  load_balancer: web\n", ""), "release.load_balancer: required key is missing", "add 'load_balancer:'"),
    (("  slots:", "  release_command: ' '\n  slots:"), "release.release_command: is empty", "bin/migrate"),
    (("  slots:", "  release_command: [bin/migrate]\n  slots:"), "release.release_command: expected", ""),
    (
        ("  slots:", "  release_timeout_seconds: 0\n  slots:"),
        "release.release_timeout_seconds: must be at least 1",
        "seconds",
    ),
    (("app: web", "app: 'web; rm -rf /'"), "app: 'web; rm -rf /' is not a valid name", "lowercase"),
    (("  app:\n    parent", "  'a$(id)':\n    parent"), "is not a valid image name", "lowercase"),
    (
        ('    source_ami: {name: "debian-12-*", owners: ["self"]}', "    source_ami: ami-xyz"),
        "source_ami: 'ami-xyz' is not an AMI id",
        "",
    ),
    (
        (
            '    source_ami: {name: "debian-12-*", owners: ["self"]}',
            '    source_ami: {name: "debian-12-*", owner: ["self"]}',
        ),
        "images.base.source_ami.owner: unknown key",
        "did you mean 'owners'",
    ),
    (
        ("    parent: base", "    parent: base\n    source_ami: ami-12345678"),
        "set exactly one of 'parent' or 'source_ami'",
        "",
    ),
    (("images:", "copy_to_regions: us-west-2\nimages:"), "copy_to_regions: expected a list", ""),
    (
        ("    parent: base", "    parent: base\n    ansible_strategy: fast"),
        "images.app.ansible_strategy: 'fast' is not known",
        "mitogen, linear",
    ),
    (
        ("images:", "notify: {webhooks: ['ftp://hooks.example.com/x']}\nimages:"),
        "notify.webhooks[0]: a ftp: URL is not an http(s) URL",
        "${NAME}",
    ),
    (
        ("images:", "notify: {webhooks: [hooks.example.com/x]}\nimages:"),
        "notify.webhooks[0]: 'hooks.example.com/x' is not an http(s) URL",
        "https://",
    ),
    (("images:", "notify: {webhooks: https://hooks.example.com/x}\nimages:"), "notify.webhooks: expected a list", ""),
    (
        ("images:", "notify: {sns_topic: deploys}\nimages:"),
        "notify.sns_topic: 'deploys' is not an SNS topic ARN",
        "arn:aws:sns:",
    ),
    (
        ("images:", "notify: {timeout_seconds: 600}\nimages:"),
        "notify.timeout_seconds: 600 must be between 1 and 30",
        "",
    ),
    (
        ("images:", "notify: {webhook: [https://hooks.example.com/x]}\nimages:"),
        "notify.webhook: unknown key",
        "did you mean 'webhooks'",
    ),
    (
        ("    parent: base", "    parent: base\n    ssh_interface: session_manager"),
        "images.app.ssh_interface: 'session_manager' is not supported (Debian's AMIs carry no SSM agent",
        "public_ip, private_ip, public_dns, private_dns",
    ),
    (
        ("    parent: base", "    parent: base\n    ssh_interface: public-ip"),
        "images.app.ssh_interface: 'public-ip' is not supported",
        "public_ip, private_ip",
    ),
    (
        ("    parent: base", "    parent: base\n    associate_public_ip_address: yes please"),
        "images.app.associate_public_ip_address: expected true or false",
        "",
    ),
    (("images:", "review: {domain: localhost}\nimages:"), "review.domain: 'localhost' is not a DNS domain", "review."),
    (("images:", "review: {domain: review.example.c0m}\nimages:"), "is not a DNS domain an ALB rule can match", ""),
    (("images:", "review: {domian: review.localhost}\nimages:"), "review.domian: unknown key", "'domain'"),
    (("images:", "review: {}\nimages:"), "review.domain: required key is missing", ""),
    (
        ("  slots:", "  load_balancer_type: network\n  slots:"),
        "release.load_balancer_type: 'network' is not one of application, classic",
        "classic for a Classic Load Balancer",
    ),
    (
        ("  slots:", "  load_balancer_type: classic\n  steps: [10, 50, 100]\n  slots:"),
        "release.steps: [10, 50, 100] cannot be kept behind a Classic ELB: it has no weights",
        "leave steps out",
    ),
    (
        ("  slots:", "  load_balancer_type: classic\n  smoke_check: {path: /health, port: 8081}\n  slots:"),
        "release.smoke_check: needs an ALB (a Classic ELB sends to every InService instance alike)",
        "remove it",
    ),
    (
        ("  slots:", "  load_balancer_type: classic\n  analysis: {enabled: true}\n  slots:"),
        "release.analysis: needs an ALB",
        "enabled: false",
    ),
    (
        ("images:", "review: {domain: review.localhost}\nimages:"),
        "review: review apps need an ALB's host rules",
        "remove review:",
        "classic",
    ),
    (
        ("images:", "scaling:\n  target_tracking: [{name: busy, metric: requests_per_target, target: 100}]\nimages:"),
        "scaling.target_tracking[0].metric: requests_per_target needs an ALB's target group",
        "track cpu",
        "classic",
    ),
    (
        ("  slots:", "  regions: [us-east-1, us-wets-2]\n  slots:"),
        "release.regions[1]: 'us-wets-2' is not an AWS region",
        "did you mean 'us-west-2'",
    ),
    (
        ("  slots:", "  regions: [us-east-1, us-east-1]\n  slots:"),
        "release.regions[1]: us-east-1 is named twice",
        "once",
    ),
    (
        ("  slots:", "  regions: [us-east-1, {region: us-west-2, subnets: [subnet-0a1a1a1a1]}]\n  slots:"),
        "release.regions[1]: us-west-2 has no copy of the AMIs (not in copy_to_regions)",
        "add us-west-2 to copy_to_regions",
    ),
    (
        ("images:", "copy_to_regions: [us-west-2]\nimages:", "  slots:", "  regions: [us-west-2]\n  slots:"),
        "release.regions: us-east-1 (region:) is not one of them",
        "regions: [us-east-1, us-west-2]",
    ),
    (
        (
            "images:",
            "copy_to_regions: [us-west-2]\nimages:",
            "  slots:",
            "  regions: [us-east-1, {region: us-west-2, subnets: [subnet-1]}]\n  slots:",
        ),
        "release.regions[1].subnets[0]: 'subnet-1' is not an id like subnet-0abc1234",
        "give us-west-2's subnets by id",
    ),
    (
        ("  slots:", "  one_box: true\n  steps: [100]\n  slots:"),
        "release.one_box: the first step (100%) is the one-box's share: it must be below 100",
        "[10, 50, 100]",
    ),
    (
        ("  slots:", "  one_box: true\n  slots:"),
        "release.one_box: needs an ALB's weights",
        "remove one_box",
        "classic",
    ),
]


@pytest.mark.parametrize(
    "change,message,hint,lb", [b if len(b) == 4 else (*b, "") for b in BAD], ids=[b[1][:40] for b in BAD]
)
def test_mistakes_name_the_file_and_key(tmp_path, change, message, hint, lb):
    text = _edit(GOOD, "  slots:", f"  load_balancer_type: {lb}\n  slots:") if lb else GOOD
    for at in range(0, len(change), 2):
        text = _edit(text, *change[at : at + 2])
    root = project(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        config.load("dev", root)
    assert err.value.message.startswith("inventories/dev/rodeo.yml: "), err.value.message
    assert message in err.value.message
    assert hint in err.value.hint


@pytest.mark.parametrize(
    "text,message",
    [
        ("", "must be a mapping of settings, got nothing (empty)"),
        ("- a\n- b\n", "must be a mapping of settings, got a list"),
        ("app: [unclosed\n", "not valid YAML at line"),
        ("app: web\nregion: us-east-1\n", "images: required key is missing"),
    ],
)
def test_files_that_are_not_settings(tmp_path, text, message):
    with pytest.raises(ConfigError, match="inventories/dev/rodeo.yml") as err:
        config.load("dev", project(tmp_path, text))
    assert message in err.value.message


def test_an_unknown_environment_lists_the_known_ones(tmp_path):
    root = project(tmp_path, GOOD)
    with pytest.raises(ConfigError) as err:
        config.load("prod", root)
    assert "no environment 'prod'" in err.value.message
    assert err.value.hint == "choose one of: dev"
    with pytest.raises(ConfigError, match="not a valid environment name"):
        config.load("../dev", root)


def test_image_lookup_lists_valid_names(tmp_path):
    cfg = config.load("dev", project(tmp_path, GOOD))
    with pytest.raises(ConfigError) as err:
        cfg.image("ap")
    assert err.value.hint == "choose one of: app, base"


def test_images_run_ansible_with_mitogen_unless_told_otherwise(tmp_path):
    root = project(tmp_path, _edit(GOOD, "    parent: base", "    parent: base\n    ansible_strategy: linear"))
    cfg = config.load("dev", root)
    assert cfg.image("base").ansible_strategy == "mitogen" and cfg.image("app").ansible_strategy == "linear"


@pytest.mark.parametrize(
    ("lines", "interface", "public"),
    [
        ("", "public_ip", True),  # the default: like invoke verify --ami's instance, reached at its public IP
        ("    ssh_interface: public_dns\n", "public_dns", True),
        ("    ssh_interface: private_ip\n", "private_ip", False),  # Packer inside the VPC: the subnet's default
        ("    ssh_interface: private_ip\n    associate_public_ip_address: true\n", "private_ip", True),
        ("    associate_public_ip_address: false\n", "public_ip", False),
    ],
)
def test_how_packer_reaches_the_build_instance(tmp_path, lines, interface, public):
    cfg = config.load("dev", project(tmp_path, _edit(GOOD, "    parent: base\n", "    parent: base\n" + lines)))
    assert (cfg.images["app"].ssh_interface, cfg.images["app"].public_address) == (interface, public)


def test_review_apps_need_the_release_they_run_behind(tmp_path):
    text = GOOD.split("release:")[0] + "review: {domain: review.localhost}\n"
    with pytest.raises(ConfigError, match="review: needs a release: section"):
        config.load("dev", project(tmp_path, text))
    assert config.load("local", ROOT).review == config.Review(domain="review.localhost")
