"""Nothing outlives the live stack: kill -9 of its server leaves no process, mount or namespace."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.integration.local.conftest import CACHE, leftovers
from toolkit.errors import SandboxError, StackError
from toolkit.hosts import sandbox
from toolkit.local import seed, stack
from toolkit.local.environment import LocalEnvironment

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

REGION = "us-east-1"
CLEAN = {"processes": [], "mounts": [], "netns": [], "cgroups": []}


@pytest.fixture(scope="module")
def rootfs() -> Path:
    try:
        sandbox.check_host()
        stack.check_live_host()
        return sandbox.ensure_rootfs(sandbox.rootfs_path(CACHE))
    except (SandboxError, StackError) as exc:
        pytest.fail(f"no live local stack here: {exc}", pytrace=False)


def boot_one(st: stack.Stack) -> str:
    """Start the stack and one instance of the seeded base AMI (plus a load balancer, so HAProxy serves); wait until it runs."""
    url = stack.up(st, REGION)
    ec2 = LocalEnvironment(region=REGION, endpoint=url).client("ec2")
    ami = ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [seed.BASE_AMI_NAME]}])["Images"][0][
        "ImageId"
    ]
    subnet = ec2.describe_subnets(Filters=[{"Name": "tag:rodeo:seed", "Values": ["local"]}])["Subnets"][0]["SubnetId"]
    iid = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, SubnetId=subnet)["Instances"][0]["InstanceId"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"]["Name"]
        if state == "running":
            return iid
        time.sleep(0.5)
    raise AssertionError(f"{iid} is {state} after 60s")


def server_pid(st: stack.Stack) -> int:
    """The moto server itself: the only child of the unshare process recorded as the stack's pid."""
    pid = stack.status(st)["pid"]
    return int(Path(f"/proc/{pid}/task/{pid}/children").read_text().split()[0])


def wait_clean(st: stack.Stack, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while (found := leftovers(st)) != CLEAN and time.monotonic() < deadline:
        time.sleep(0.2)
    return found


@pytest.mark.parametrize("victim", ["unshare", "server"])
def test_kill_9_leaves_nothing_and_the_next_up_starts_clean(rootfs, tmp_path, victim):
    st = stack.Stack(state_dir=tmp_path / "state", cache_dir=CACHE, live=True)
    try:
        boot_one(st)
        running = leftovers(st)["processes"]
        assert running, "the instance and its helpers run"
        # the metadata service's and the AWS endpoint's forwarders are among what must end
        assert any("imds.sock" in p for p in running) and any("aws.sock" in p for p in running), running
        pid = stack.status(st)["pid"] if victim == "unshare" else server_pid(st)
        os.kill(pid, signal.SIGKILL)
        # Processes, mounts and namespaces go with the server; its instance's empty cgroup folders wait for the
        # next up or down (nothing else runs to remove them).
        assert wait_clean(st) | {"cgroups": []} == CLEAN
        assert not stack.status(st)["running"]
        iid = boot_one(st)  # starts clean: a new server, a fresh instance folder only
        assert [p.name for p in (st.live_dir / "instances").iterdir()] == [iid]
        assert {Path(p).name for p in leftovers(st)["cgroups"]} == {f"{st.run_dir.name}-{iid}"}  # the old ones swept
    finally:
        stack.down(st)
    assert leftovers(st) == CLEAN
