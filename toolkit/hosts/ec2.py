"""Build and test hosts on AWS: the instance Packer launches, and one booted to check an AMI.

A bake's build instance is Packer's own (amazon-ebs launches it, with the
bake's key pair and a temporary security group open to this machine's address
only). ``invoke verify --ami`` boots one instance itself: a fresh key imported
as a temporary key pair, a temporary security group allowing SSH only from the
caller's address, one instance (IMDSv2 required). Whatever happens, also on
Ctrl-C, the instance is terminated and the group and key pair deleted, each
step on its own.
"""

from __future__ import annotations

import contextlib
import ipaddress
import signal
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from toolkit.aws import error_code, once_settled
from toolkit.config import Config
from toolkit.errors import AwsError, ConfigError
from toolkit.hosts import BuildTarget
from toolkit.hosts.ssh import SshHost, forget_key, new_key, wait_for_ssh
from toolkit.ui import Reporter

CHECKIP_URL = "https://checkip.amazonaws.com"
SSH_TIMEOUT = 300.0  # from 'running' until sshd answers: cloud-init, first boot
WAITER = {"Delay": 5, "MaxAttempts": 120}  # instance_running / instance_terminated: 10 min at most
GROUP_DELETE_TIMEOUT = 120.0  # a group stays "in use" for a while after its instance is gone
TAG = "rodeo:verify"


@dataclass
class Ec2Hosts:
    """Hosts on AWS: Packer launches the build instance; a check boots its own."""

    aws: Any
    caller: Callable[[], str] = field(default=lambda: caller_address())
    ssh_timeout: float = SSH_TIMEOUT
    name = "EC2"

    def check(self) -> None:
        """Nothing to check on this machine: the build instance runs in the account."""

    def has_image(self, ami: str) -> bool:
        """An AMI on AWS is its own image."""
        return True

    @contextlib.contextmanager
    def build_host(
        self, source_ami: str, bake_dir: Path, public_key: str, user: str, reporter: Reporter
    ) -> Iterator[BuildTarget]:
        """Packer launches the instance itself: SSH is let in from this machine's address only."""
        yield BuildTarget(ssh_source_cidrs=(f"{self.caller()}/32",))

    def keep_image(self, target: BuildTarget, bake_id: str, amis: dict[str, str]) -> None:
        """The AMI Packer registered is the image: nothing to keep here."""

    def keep_host(self, target: BuildTarget, bake_id: str, public_key: str, user: str) -> dict | None:
        """The instance Packer left up (``-on-error=abort``), found by its ``rodeo:bake`` tag."""
        found = [
            i
            for r in self.aws.client("ec2").describe_instances(
                Filters=[
                    {"Name": "tag:rodeo:bake", "Values": [bake_id]},
                    {"Name": "instance-state-name", "Values": ["pending", "running"]},
                ]
            )["Reservations"]
            for i in r["Instances"]
        ]
        if not found:
            return None
        inst = found[0]
        return {
            "connector": "ec2",
            "host": inst.get("PublicIpAddress") or inst.get("PrivateIpAddress", ""),
            "port": 22,
            "instance_id": inst["InstanceId"],
            "region": self.aws.region,
        }

    def discard(self, kept: Any) -> str:
        """Nothing on this side: the instance and Packer's group go with the bake's EC2 leftovers."""
        return f"instance {kept.instance_id}"

    def test_host(
        self, config: Config, found: dict, image: str, run_dir: Path, reporter: Reporter
    ) -> contextlib.AbstractContextManager[SshHost]:
        """One instance of the AMI reachable over SSH from the caller only; all of it deleted afterwards."""
        return _aws_host(config, self.aws, found, image, run_dir.name, run_dir, reporter, self.caller, self.ssh_timeout)


def caller_address(url: str = CHECKIP_URL, timeout: float = 10.0) -> str:
    """This machine's public IP address as AWS sees it (checkip.amazonaws.com)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            text = resp.read(100).decode().strip()
        return str(ipaddress.ip_address(text))
    except (OSError, ValueError) as exc:
        raise AwsError(
            f"could not find this machine's public address from {url}: {exc}",
            "check the network; the temporary security group lets SSH in from that address only",
        ) from None


def ssh_ingress(address: str) -> dict:
    """The one ingress rule of the temporary security group: SSH from ``address`` only."""
    ip = ipaddress.ip_address(address)
    rule: dict = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22}
    if ip.version == 4:
        rule["IpRanges"] = [{"CidrIp": f"{ip}/32", "Description": "rodeo verify: SSH from the caller"}]
    else:
        rule["Ipv6Ranges"] = [{"CidrIpv6": f"{ip}/128", "Description": "rodeo verify: SSH from the caller"}]
    return rule


class _Temporary:
    """What one AWS check made; ``delete`` removes each piece on its own, and may run twice."""

    def __init__(self, aws: Any, reporter: Reporter) -> None:
        self.ec2 = aws.client("ec2")
        self.reporter = reporter
        self.key_name: str | None = None
        self.group_id: str | None = None
        self.instance_id: str | None = None

    def delete(self) -> None:
        with _sigint_ignored():
            self._step("terminate instance", self.instance_id, self._terminate)
            self._step("delete security group", self.group_id, self._delete_group)
            self._step("delete key pair", self.key_name, lambda name: self.ec2.delete_key_pair(KeyName=name))

    def _step(self, what: str, ident: str | None, fn: Callable[[str], None]) -> None:
        if ident is None:
            return
        try:
            fn(ident)
            self.reporter.detail(f"{what} {ident}: done")
        except Exception as exc:  # keep going: the other pieces must go too
            self.reporter.warn(f"could not {what} {ident}: {exc}; remove it by hand (tag {TAG})")

    def _terminate(self, instance_id: str) -> None:
        try:
            self.ec2.terminate_instances(InstanceIds=[instance_id])
        except Exception as exc:
            if error_code(exc) != "InvalidInstanceID.NotFound":
                raise
            return
        self.ec2.get_waiter("instance_terminated").wait(InstanceIds=[instance_id], WaiterConfig=WAITER)

    def _delete_group(self, group_id: str) -> None:
        deadline = time.monotonic() + GROUP_DELETE_TIMEOUT
        while True:
            try:
                self.ec2.delete_security_group(GroupId=group_id)
                return
            except Exception as exc:
                code = error_code(exc)
                if code == "InvalidGroup.NotFound":
                    return
                if code != "DependencyViolation" or time.monotonic() > deadline:
                    raise
            time.sleep(5)


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Let cleanup finish when Ctrl-C is pressed again (main thread only; a no-op elsewhere)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def _aws_host(
    config: Config,
    aws: Any,
    found: dict,
    image: str,
    check_id: str,
    out_dir: Path,
    reporter: Reporter,
    caller: Callable[[], str],
    ssh_timeout: float,
) -> Iterator[SshHost]:
    """One instance of the AMI reachable over SSH from the caller only; all of it deleted afterwards."""
    rule = ssh_ingress(caller())
    vpc_id, subnet_id = _network(aws, config)
    out_dir.mkdir(parents=True)
    key = new_key(out_dir, f"rodeo-verify-{check_id}")
    made = _Temporary(aws, reporter)
    tags = [{"Key": TAG, "Value": check_id}, {"Key": "Name", "Value": f"rodeo-verify-{check_id}"}]
    try:
        with reporter.step(f"boot {found['ImageId']} in {subnet_id}") as box:
            made.key_name = f"rodeo-verify-{check_id}"
            made.ec2.import_key_pair(
                KeyName=made.key_name,
                PublicKeyMaterial=key.with_suffix(".pub").read_bytes(),
                TagSpecifications=[{"ResourceType": "key-pair", "Tags": tags}],
            )
            made.group_id = made.ec2.create_security_group(
                GroupName=f"rodeo-verify-{check_id}",
                Description=f"rodeo verify {check_id}: SSH from the caller only",
                VpcId=vpc_id,
                TagSpecifications=[{"ResourceType": "security-group", "Tags": tags}],
            )["GroupId"]
            # A security group just made may be InvalidGroup.NotFound for a few seconds (EC2 is eventually consistent).
            once_settled(lambda: made.ec2.authorize_security_group_ingress(GroupId=made.group_id, IpPermissions=[rule]))
            made.instance_id = once_settled(
                lambda: _run_instance(
                    made.ec2,
                    found["ImageId"],
                    config.image(image).instance_type,
                    subnet_id,
                    made.group_id,
                    made.key_name,
                    tags,
                )
            )
            address = _wait_running(made.ec2, made.instance_id)
            box["result"] = f"{made.instance_id} running at {address}"
        with reporter.step(f"wait for SSH on {address}:22 (up to {ssh_timeout:.0f}s)"):
            wait_for_ssh(address, 22, ssh_timeout, made.instance_id, _cidr(rule))
        yield SshHost(address, 22, config.image(image).ssh_username, key)
    finally:
        reporter.info("cleaning up: instance, security group, key pair")
        made.delete()
        forget_key(key)


def _network(aws: Any, config: Config) -> tuple[str, str]:
    """The VPC and subnet to boot in: rodeo.yml's ``subnet_id``, else a default subnet of the default VPC."""
    ec2 = aws.client("ec2")
    if config.subnet_id:
        subnets = ec2.describe_subnets(SubnetIds=[config.subnet_id])["Subnets"]
        return subnets[0]["VpcId"], subnets[0]["SubnetId"]
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
    subnets = (
        ec2.describe_subnets(
            Filters=[
                {"Name": "vpc-id", "Values": [v["VpcId"] for v in vpcs]},
                {"Name": "default-for-az", "Values": ["true"]},
            ]
        )["Subnets"]
        if vpcs
        else []
    )
    if not subnets:
        raise ConfigError(
            f"{config.path.name}: subnet_id: not set, and {aws.region} has no default VPC with a default subnet",
            "set subnet_id in rodeo.yml to a subnet with a route to the internet",
        )
    chosen = min(subnets, key=lambda s: s["AvailabilityZone"])
    return chosen["VpcId"], chosen["SubnetId"]


def _run_instance(
    ec2: Any, ami: str, instance_type: str, subnet_id: str, group_id: str, key_name: str, tags: list
) -> str:
    reply = ec2.run_instances(
        ImageId=ami,
        InstanceType=instance_type,
        MinCount=1,
        MaxCount=1,
        KeyName=key_name,
        NetworkInterfaces=[
            {"DeviceIndex": 0, "SubnetId": subnet_id, "Groups": [group_id], "AssociatePublicIpAddress": True}
        ],
        MetadataOptions={"HttpTokens": "required", "HttpEndpoint": "enabled"},
        InstanceInitiatedShutdownBehavior="terminate",
        TagSpecifications=[{"ResourceType": kind, "Tags": tags} for kind in ("instance", "volume")],
    )
    return reply["Instances"][0]["InstanceId"]


def _wait_running(ec2: Any, instance_id: str) -> str:
    """Wait until the instance runs; return the address to SSH to (public, else private)."""
    ec2.get_waiter("instance_running").wait(InstanceIds=[instance_id], WaiterConfig=WAITER)
    inst = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    return inst.get("PublicIpAddress") or inst["PrivateIpAddress"]


def _cidr(rule: dict) -> str:
    ranges = rule.get("IpRanges") or rule.get("Ipv6Ranges")
    return ranges[0].get("CidrIp") or ranges[0].get("CidrIpv6")
