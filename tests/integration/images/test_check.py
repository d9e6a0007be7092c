"""`invoke verify --ami`: the image's tests on an instance booted from an existing AMI.

The local stack runs the real command line on a baked ``base`` AMI (its local
image in a throw-away sandbox). The AWS path runs in-process against the same
moto server, where an instance never answers SSH: that run must fail clearly
and still delete everything it made.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import secrets
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.integration.bakes import ROOT, Project, residue
from toolkit import config
from toolkit.errors import ImageError, VerifyError
from toolkit.hosts.ec2 import Ec2Hosts
from toolkit.images import check as ami_check
from toolkit.local.environment import LocalEnvironment
from toolkit.ui import Silent

pytestmark = pytest.mark.integration

FAILING = "\n\ndef test_deliberately_failing(host):\n    assert host.file('/etc/rodeo-missing').exists\n"
CALLER = "203.0.113.7"


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def tags(ec2, ami: str) -> dict:
    image = ec2.describe_images(ImageIds=[ami])["Images"][0]
    return {t["Key"]: t["Value"] for t in image.get("Tags", [])}


def snapshot_tags(ec2, ami: str) -> list[dict]:
    image = ec2.describe_images(ImageIds=[ami])["Images"][0]
    ids = [m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"] if m.get("Ebs", {}).get("SnapshotId")]
    return [
        {t["Key"]: t["Value"] for t in s.get("Tags", [])} for s in ec2.describe_snapshots(SnapshotIds=ids)["Snapshots"]
    ]


def layer_digest(state: Path, ami: str) -> str:
    """A hash of every path, mode, owner and content in the AMI's own (top) local layer."""
    top = Path(json.loads((state / "local/images" / f"{ami}.json").read_text())["layers"][-1])
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            path = Path(dirpath, name)
            st = path.lstat()
            digest.update(
                f"{path.relative_to(top)} {st.st_mode} {st.st_uid} {st.st_gid} {st.st_size} {st.st_rdev}\n".encode()
            )
            if path.is_symlink():
                digest.update(os.readlink(path).encode())
            elif path.is_file():
                digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def baked(tmp_path_factory, local_stack) -> tuple[Project, str]:
    """A project copy and a freshly baked (or cache-reused) ``base`` AMI."""
    proj = Project(tmp_path_factory.mktemp("verify") / "project", local_stack[0].state_dir)
    result = proj.invoke("bake", "--image", "base", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    return proj, last_json(result.stdout)["ami"]["us-east-1"]


def test_verify_passes_writes_junit_and_tags_the_ami(baked, ec2, tmp_path):
    proj, ami = baked
    before = layer_digest(proj.state, ami)
    junit = tmp_path / "reports" / "r.xml"
    result = proj.invoke("verify", "--ami", ami, "--junit", str(junit), "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    record = last_json(result.stdout)
    assert record["ami"] == ami and record["image"] == "base" and record["verified"] is True
    assert record["failures"] == 0 and record["tests"] >= 5
    assert record["report"] == str(junit)
    assert "passed" not in result.stdout  # pytest's lines go to stderr with the progress in --json mode

    cases = list(ET.parse(junit).getroot().iter("testcase"))
    assert len(cases) == record["tests"]
    assert all(c.find("failure") is None and c.find("error") is None for c in cases)
    found = tags(ec2, ami)
    assert found["rodeo:verified"] == "true" and found["rodeo:verified-at"] == record["verified_at"]
    assert found["rodeo:verified-at"].endswith("Z")
    for snap in snapshot_tags(ec2, ami):
        assert snap["rodeo:verified"] == "true" and snap["rodeo:verified-at"] == record["verified_at"]

    assert layer_digest(proj.state, ami) == before
    runs = sorted((proj.state / "verify").iterdir())
    assert (runs[-1] / "verify.json").is_file()
    assert not (runs[-1] / "layer").exists() and not (runs[-1] / "ssh_key").exists()
    assert residue(proj.state) == {"mounts": [], "processes": []}


def test_failing_image_test_is_the_verdict(baked, project: Project, ec2):
    _, ami = baked
    before = layer_digest(project.state, ami)
    project.append("tests/image/test_base.py", FAILING)
    result = project.invoke("verify", "--ami", ami)
    line = one_error_line(result)
    assert line.startswith(f"error: {ami} failed verification: image test failed: test_deliberately_failing")
    assert f"{ami} (base) FAILED verification" in result.stdout
    assert tags(ec2, ami)["rodeo:verified"] == "false"
    assert all(s["rodeo:verified"] == "false" for s in snapshot_tags(ec2, ami))
    assert layer_digest(project.state, ami) == before
    assert residue(project.state) == {"mounts": [], "processes": []}

    # Fixed tests pass again and the AMI is verified again (also keeps the shared stack's base usable).
    proj, _ = baked
    result = proj.invoke("verify", "--ami", ami, "--image", "base")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"{ami} (base) verified" in result.stdout
    assert tags(ec2, ami)["rodeo:verified"] == "true"


def test_nonexistent_ami_is_one_line_and_makes_nothing(project: Project, ec2):
    runs = set((project.state / "verify").glob("*")) if (project.state / "verify").is_dir() else set()
    result = project.invoke("verify", "--ami", "ami-0123456789abcdef0")
    assert one_error_line(result) == "error: ami-0123456789abcdef0 does not exist in us-east-1"
    assert (set((project.state / "verify").glob("*")) if (project.state / "verify").is_dir() else set()) == runs


def _register(ec2, tag_image: str | None) -> str:
    ami = ec2.register_image(
        Name=f"rodeo-verify-test-{secrets.token_hex(4)}",
        Architecture="x86_64",
        RootDeviceName="/dev/xvda",
        VirtualizationType="hvm",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8}}],
    )["ImageId"]
    if tag_image:
        ec2.create_tags(
            Resources=[ami], Tags=[{"Key": "rodeo:image", "Value": tag_image}, {"Key": "rodeo:app", "Value": "web"}]
        )
    return ami


def test_ami_without_a_local_image(project: Project, ec2):
    ami = _register(ec2, "base")
    line = one_error_line(project.invoke("verify", "--ami", ami))
    assert line == f"error: {ami} has no local image on this machine"
    assert "rodeo:verified" not in tags(ec2, ami)


def test_ami_without_an_image_tag(project: Project, ec2):
    ami = _register(ec2, None)
    result = project.invoke("verify", "--ami", ami)
    assert one_error_line(result) == f"error: {ami} has no rodeo:image tag"
    assert "--image NAME" in result.stderr


# --- the AWS path, against the moto server -----------------------------------------


class Spy(Silent):
    """Records the rules of Rodeo's temporary security groups whenever progress is reported."""

    def __init__(self, ec2, interrupt_on: str = "") -> None:
        super().__init__()
        self.ec2, self.interrupt_on = ec2, interrupt_on
        self.rules: list = []

    def _look(self, message: str) -> None:
        groups = self.ec2.describe_security_groups(Filters=[{"Name": "tag-key", "Values": ["rodeo:verify"]}])[
            "SecurityGroups"
        ]
        self.rules += [
            [
                (
                    r["IpProtocol"],
                    r.get("FromPort"),
                    r.get("ToPort"),
                    [x["CidrIp"] for x in r.get("IpRanges", [])],
                    [x["CidrIpv6"] for x in r.get("Ipv6Ranges", [])],
                    r.get("UserIdGroupPairs", []),
                    r.get("PrefixListIds", []),
                )
                for r in g["IpPermissions"]
            ]
            for g in groups
        ]
        if self.interrupt_on and self.interrupt_on in message:
            raise KeyboardInterrupt

    info = detail = ok = warn = _look

    def begin(self, label: str, note: str = ""):
        self._look(label)
        return super().begin(label, note)


@pytest.fixture()
def aws_env(local_stack, ec2):
    """A Config for a real-AWS environment whose endpoint is the moto server, and its clients."""
    cfg = dataclasses.replace(config.load("local", ROOT), stack="aws")
    return cfg, LocalEnvironment(region="us-east-1", endpoint=local_stack[1])


def _made(ec2) -> dict:
    """What Rodeo's verify runs left in AWS: live instances, security groups and key pairs."""
    live = ec2.describe_instances(
        Filters=[
            {"Name": "tag-key", "Values": ["rodeo:verify"]},
            {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped", "shutting-down"]},
        ]
    )
    return {
        "instances": [i["InstanceId"] for r in live["Reservations"] for i in r["Instances"]],
        "groups": [
            g["GroupId"]
            for g in ec2.describe_security_groups(Filters=[{"Name": "tag-key", "Values": ["rodeo:verify"]}])[
                "SecurityGroups"
            ]
        ],
        "key_pairs": [
            k["KeyName"]
            for k in ec2.describe_key_pairs(Filters=[{"Name": "key-name", "Values": ["rodeo-verify-*"]}])["KeyPairs"]
        ],
    }


def _instances(ec2) -> list[dict]:
    found = ec2.describe_instances(Filters=[{"Name": "tag-key", "Values": ["rodeo:verify"]}])
    return [i for r in found["Reservations"] for i in r["Instances"]]


NOTHING = {"instances": [], "groups": [], "key_pairs": []}
ONLY_CALLER = [("tcp", 22, 22, [f"{CALLER}/32"], [], [], [])]


def test_aws_path_fails_clearly_when_ssh_never_answers_and_cleans_up(aws_env, ec2, tmp_path):
    cfg, aws = aws_env
    ami = _register(ec2, "base")
    seen = {i["InstanceId"] for i in _instances(ec2)}
    spy = Spy(ec2)
    # ssh_timeout=0: moto hands out public-looking addresses; never send a packet to one.
    with pytest.raises(VerifyError) as err:
        ami_check.verify_ami(
            cfg, aws, Ec2Hosts(aws, caller=lambda: CALLER, ssh_timeout=0), ami, state_dir=tmp_path, reporter=spy
        )
    assert "did not answer SSH on" in err.value.message and err.value.message.endswith("no test ran")
    assert f"{CALLER}/32" in err.value.hint

    assert _made(ec2) == NOTHING
    (inst,) = [i for i in _instances(ec2) if i["InstanceId"] not in seen]
    assert inst["State"]["Name"] == "terminated" and inst["ImageId"] == ami
    assert inst["InstanceType"] == "t3.micro" and inst["MetadataOptions"]["HttpTokens"] == "required"
    assert spy.rules and all(rules == ONLY_CALLER for rules in spy.rules)
    assert "rodeo:verified" not in tags(ec2, ami)  # no test ran: no verdict
    assert not list(tmp_path.glob("verify/*/ssh_key*"))


def test_aws_path_cleans_up_on_ctrl_c(aws_env, ec2, tmp_path):
    cfg, aws = aws_env
    ami = _register(ec2, "base")
    with pytest.raises(KeyboardInterrupt):
        # ssh_timeout=0: should the interrupt not come, no packet goes to moto's public-looking address.
        ami_check.verify_ami(
            cfg,
            aws,
            Ec2Hosts(aws, caller=lambda: CALLER, ssh_timeout=0),
            ami,
            state_dir=tmp_path,
            reporter=Spy(ec2, interrupt_on="wait for SSH"),
        )
    assert _made(ec2) == NOTHING


def test_aws_path_missing_ami_makes_nothing(aws_env, ec2, tmp_path):
    cfg, aws = aws_env
    called = []
    with pytest.raises(ImageError) as err:
        ami_check.verify_ami(
            cfg,
            aws,
            Ec2Hosts(aws, caller=lambda: called.append(1) or CALLER),
            "ami-0123456789abcdef0",
            state_dir=tmp_path,
            reporter=Spy(ec2),
        )
    assert err.value.message == "ami-0123456789abcdef0 does not exist in us-east-1"
    assert _made(ec2) == NOTHING and not called and not (tmp_path / "verify").exists()
