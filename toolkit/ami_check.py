"""``invoke verify --ami``: run an image's testinfra tests on an instance booted from an existing AMI.

``verify_ami`` looks the AMI up (its image from the ``rodeo:image`` tag unless
named), boots one instance of it, runs the image's tests over SSH through
``toolkit.verify.run`` and records the verdict on the AMI and its snapshots
(``rodeo:verified`` = ``true``/``false``, ``rodeo:verified-at``).

- Real AWS: a fresh ed25519 key imported as a temporary key pair, a temporary
  security group allowing SSH only from the caller's address, one instance
  (IMDSv2 required). Whatever happens, also on Ctrl-C, the instance is
  terminated and the group and key pair deleted, each step on its own.
- Local stack: the AMI's local image in a fresh sandbox whose upper layer is
  thrown away afterwards, so the AMI's own layers never change.

The run's folder ``<state>/verify/<check-id>/`` keeps the report
(``verify.xml``, ``verify.json``); the key and the sandbox layer are removed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

from toolkit import verify
from toolkit.aws import images
from toolkit.aws.session import error_code
from toolkit.config import Config
from toolkit.errors import AwsError, ConfigError, ImageError, VerifyError
from toolkit.provision import BuildHost
from toolkit.ui import Reporter

CHECKIP_URL = "https://checkip.amazonaws.com"
SSH_TIMEOUT = 300.0  # from 'running' until sshd answers: cloud-init, first boot
WAITER = {"Delay": 5, "MaxAttempts": 120}  # instance_running / instance_terminated: 10 min at most
GROUP_DELETE_TIMEOUT = 120.0  # a group stays "in use" for a while after its instance is gone
TAG = "rodeo:verify"


def caller_address(url: str = CHECKIP_URL, timeout: float = 10.0) -> str:
    """This machine's public IP address as AWS sees it (checkip.amazonaws.com)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            text = resp.read(100).decode().strip()
        return str(ipaddress.ip_address(text))
    except (OSError, ValueError) as exc:
        raise AwsError(f"could not find this machine's public address from {url}: {exc}",
                       "check the network; the temporary security group lets SSH in from that address only") from None


def ssh_ingress(address: str) -> dict:
    """The one ingress rule of the temporary security group: SSH from ``address`` only."""
    ip = ipaddress.ip_address(address)
    rule: dict = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22}
    if ip.version == 4:
        rule["IpRanges"] = [{"CidrIp": f"{ip}/32", "Description": "rodeo verify: SSH from the caller"}]
    else:
        rule["Ipv6Ranges"] = [{"CidrIpv6": f"{ip}/128", "Description": "rodeo verify: SSH from the caller"}]
    return rule


def verify_ami(
    config: Config,
    aws: Any,
    ami: str,
    image: str | None = None,
    junit: Path | None = None,
    stack: Any = None,
    state_dir: Path = Path(".rodeo"),
    reporter: Reporter | None = None,
    caller: Callable[[], str] = caller_address,
    ssh_timeout: float = SSH_TIMEOUT,
) -> dict:
    """Boot ``ami``, run its image's tests on it, tag the verdict, and return the result.

    The result is ``{"ami", "image", "verified", "tests", "failures", "report",
    "verified_at", "duration_s"}``. Failing tests raise VerifyError carrying the
    same result as ``.result`` (``verified: false``), after the AMI is tagged.
    A missing AMI is an ImageError and nothing is created. ``caller`` gives the
    address SSH is allowed from on AWS; ``stack`` is required on the local stack.
    """
    reporter = reporter or Reporter()
    started = time.monotonic()
    found = images.find_ami(aws, ami)
    if found is None:
        raise ImageError(f"{ami} does not exist in {aws.region}", "check the id and the environment (--env)")
    name = image_of(config, found, image)
    now = dt.datetime.now(dt.timezone.utc)
    check_id = f"{name}-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
    out_dir = Path(state_dir) / "verify" / check_id
    junit = Path(junit) if junit else out_dir / "verify.xml"
    reporter.info(f"verifying {ami} ({name}) as {check_id}")
    if config.is_local:
        target = _local_host(config, stack, ami, name, out_dir, reporter)
    else:
        target = _aws_host(config, aws, found, name, check_id, out_dir, reporter, caller, ssh_timeout)
    failure: VerifyError | None = None
    with target as host:
        reporter.info(f"→ run {config.image(name).tests} on {host.url}")
        junit.unlink(missing_ok=True)  # a stale report must not stand in for this run's
        try:
            report = verify.run(config, name, host, out_dir, junit, stdout=_test_output(reporter))
            reporter.ok(f"{report['tests']} tests passed")
        except VerifyError as exc:
            failure = exc
            reporter.warn("tests failed: the AMI will be tagged rodeo:verified=false")
    verified_at = record_verdict(aws, found, failure is None)
    result = _result(ami, name, failure is None, out_dir, junit, verified_at, time.monotonic() - started)
    if failure is not None:
        error = VerifyError(f"{ami} failed verification: {failure.message}", f"fix the playbook and bake again, or fix the test; report: {junit}")
        error.result = result
        raise error
    return result


def image_of(config: Config, found: dict, image: str | None) -> str:
    """The image whose tests apply: ``image`` when given, else the AMI's ``rodeo:image`` tag."""
    name = image or found["tags"].get("rodeo:image")
    if not name:
        raise ImageError(f"{found['ImageId']} has no rodeo:image tag", "name its image with --image NAME")
    config.image(name)  # ConfigError listing the valid names
    return name


def record_verdict(aws: Any, found: dict, verified: bool) -> str:
    """Tag the AMI and its snapshots ``rodeo:verified`` and ``rodeo:verified-at``; return that time."""
    at = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    snapshots = [m["Ebs"]["SnapshotId"] for m in found.get("BlockDeviceMappings", []) if m.get("Ebs", {}).get("SnapshotId")]
    tags = [{"Key": "rodeo:verified", "Value": "true" if verified else "false"}, {"Key": "rodeo:verified-at", "Value": at}]
    aws.client("ec2").create_tags(Resources=[found["ImageId"], *snapshots], Tags=tags)
    return at


def _result(ami: str, image: str, verified: bool, out_dir: Path, junit: Path, at: str, took: float) -> dict:
    try:
        report = json.loads((out_dir / "verify.json").read_text())
    except (OSError, ValueError):
        report = {}
    return {
        "ami": ami,
        "image": image,
        "verified": verified,
        "tests": report.get("tests", 0),
        "failures": report.get("failures", 0) + report.get("errors", 0),
        "report": str(junit),
        "verified_at": at,
        "duration_s": round(took, 2),
    }


def _test_output(reporter: Reporter) -> Any:
    """Where pytest's own lines go: with the progress (stderr in --json mode), or nowhere when quiet."""
    if reporter.quiet:
        return subprocess.DEVNULL
    stream = reporter.console.file
    try:
        stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    stream.flush()
    return stream


def _forget_key(key: Path) -> None:
    for path in (key, key.with_suffix(".pub")):
        path.unlink(missing_ok=True)


# --- the local stack: a sandbox on the AMI's layers ---------------------------------


@contextlib.contextmanager
def _local_host(config: Config, stack: Any, ami: str, image: str, out_dir: Path, reporter: Reporter) -> Iterator[BuildHost]:
    """A sandbox on ``ami``'s local image with a throw-away upper layer."""
    from toolkit.local import sandbox

    assert stack is not None, "the local stack is required on a local environment"
    layers = stack.store.layers(ami)  # SandboxError when this machine has no image of it
    sandbox.check_host()
    sandbox.ensure_rootfs(stack.rootfs, reporter)
    out_dir.mkdir(parents=True)
    key = verify.new_ssh_key(out_dir, f"rodeo-verify-{out_dir.name}")
    upper = out_dir / "layer"
    user = config.image(image).ssh_username
    try:
        reporter.info(f"→ boot {ami} in a sandbox ({len(layers)} layer(s), throw-away upper layer)")
        with sandbox.build_instance(layers, upper, key.with_suffix(".pub").read_text(), user=user) as running:
            reporter.ok(f"sandbox sshd on {running.host}:{running.port}")
            yield BuildHost(running.host, running.port, user, key)
    finally:
        shutil.rmtree(upper, ignore_errors=True)
        _forget_key(key)


# --- real AWS: a temporary key pair, security group and instance --------------------


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
def _aws_host(config: Config, aws: Any, found: dict, image: str, check_id: str, out_dir: Path,
              reporter: Reporter, caller: Callable[[], str], ssh_timeout: float) -> Iterator[BuildHost]:
    """One instance of the AMI reachable over SSH from the caller only; all of it deleted afterwards."""
    rule = ssh_ingress(caller())
    vpc_id, subnet_id = _network(aws, config)
    out_dir.mkdir(parents=True)
    key = verify.new_ssh_key(out_dir, f"rodeo-verify-{check_id}")
    made = _Temporary(aws, reporter)
    tags = [{"Key": TAG, "Value": check_id}, {"Key": "Name", "Value": f"rodeo-verify-{check_id}"}]
    try:
        with reporter.step(f"boot {found['ImageId']} in {subnet_id}") as box:
            made.key_name = f"rodeo-verify-{check_id}"
            made.ec2.import_key_pair(KeyName=made.key_name, PublicKeyMaterial=key.with_suffix(".pub").read_bytes(),
                                     TagSpecifications=[{"ResourceType": "key-pair", "Tags": tags}])
            made.group_id = made.ec2.create_security_group(
                GroupName=f"rodeo-verify-{check_id}", Description=f"rodeo verify {check_id}: SSH from the caller only",
                VpcId=vpc_id, TagSpecifications=[{"ResourceType": "security-group", "Tags": tags}])["GroupId"]
            made.ec2.authorize_security_group_ingress(GroupId=made.group_id, IpPermissions=[rule])
            made.instance_id = _run_instance(made.ec2, found["ImageId"], config.image(image).instance_type, subnet_id, made.group_id, made.key_name, tags)
            address = _wait_running(made.ec2, made.instance_id)
            box["result"] = f"{made.instance_id} running at {address}"
        with reporter.step(f"wait for SSH on {address}:22 (up to {ssh_timeout:.0f}s)"):
            wait_for_ssh(address, 22, ssh_timeout, made.instance_id, _cidr(rule))
        yield BuildHost(address, 22, config.image(image).ssh_username, key)
    finally:
        reporter.info("cleaning up: instance, security group, key pair")
        made.delete()
        _forget_key(key)


def _network(aws: Any, config: Config) -> tuple[str, str]:
    """The VPC and subnet to boot in: rodeo.yml's ``subnet_id``, else a default subnet of the default VPC."""
    ec2 = aws.client("ec2")
    if config.subnet_id:
        subnets = ec2.describe_subnets(SubnetIds=[config.subnet_id])["Subnets"]
        return subnets[0]["VpcId"], subnets[0]["SubnetId"]
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [v["VpcId"] for v in vpcs]},
                                            {"Name": "default-for-az", "Values": ["true"]}])["Subnets"] if vpcs else []
    if not subnets:
        raise ConfigError(f"{config.path.name}: subnet_id: not set, and {aws.region} has no default VPC with a default subnet",
                          "set subnet_id in rodeo.yml to a subnet with a route to the internet")
    chosen = min(subnets, key=lambda s: s["AvailabilityZone"])
    return chosen["VpcId"], chosen["SubnetId"]


def _run_instance(ec2: Any, ami: str, instance_type: str, subnet_id: str, group_id: str, key_name: str, tags: list) -> str:
    reply = ec2.run_instances(
        ImageId=ami, InstanceType=instance_type, MinCount=1, MaxCount=1, KeyName=key_name,
        NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": subnet_id, "Groups": [group_id], "AssociatePublicIpAddress": True}],
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


def wait_for_ssh(address: str, port: int, timeout: float, instance_id: str = "", allowed: str = "") -> None:
    """Return once ``address:port`` sends an SSH banner; VerifyError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            with socket.create_connection((address, port), timeout=min(5.0, left)) as sock:
                sock.settimeout(min(5.0, max(left, 0.1)))
                if sock.recv(64).startswith(b"SSH-"):
                    return
                last = "not an SSH server"
        except OSError as exc:
            last = str(exc) or type(exc).__name__
        time.sleep(min(2.0, max(deadline - time.monotonic(), 0)))
    raise VerifyError(
        f"{instance_id or address} did not answer SSH on {address}:{port} within {timeout:.0f}s ({last}); no test ran",
        f"SSH is allowed from {allowed or 'the caller'} only: check that this is your address, that the subnet routes to the internet "
        "(or set subnet_id in rodeo.yml), and that the AMI starts sshd",
    )
