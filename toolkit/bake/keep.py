"""``invoke bake --keep-on-failure`` and ``invoke bake --cleanup``.

With ``--keep-on-failure`` Packer runs with ``-on-error=abort``: a failed
bake leaves its build instance up (no AMI is made: the failure comes before
the snapshot). Rodeo writes the host down (``toolkit.hosts.kept``) and prints
how to log in, how to run only the image tests against it, and how to remove
it. ``cleanup`` removes every kept host: the connector's side (the local
sandbox) and the EC2 side (the instance Packer left and its temporary
security group), the same calls on AWS and on the local stack.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from toolkit.config import Config
from toolkit.errors import RodeoError
from toolkit.hosts import BuildTarget, Hosts
from toolkit.hosts.kept import KeptHost, all_kept, save
from toolkit.hosts.ssh import SshHost, client_config
from toolkit.ui import Reporter

WAITER = {"Delay": 2, "MaxAttempts": 300}


def keep(
    config: Config,
    hosts: Hosts,
    image: str,
    bake_id: str,
    bake_dir: Path,
    target: BuildTarget,
    state_dir: Path,
    failure: RodeoError,
) -> RodeoError:
    """Leave the failed bake's host up and write it down; returns ``failure`` with a hint on how to use it."""
    key = bake_dir / "ssh_key"
    user = config.image(image).ssh_username
    where = hosts.keep_host(target, bake_id, key.with_suffix(".pub").read_text(), user)
    if where is None:
        return type(failure)(
            failure.message, f"{failure.hint}; no build host was left to keep (it failed before it booted)"
        )
    ssh_config = client_config(bake_dir / "kept_ssh_config", SshHost(where["host"], where["port"], user, key))
    kept = KeptHost(
        bake_id=bake_id,
        image=image,
        env=config.env,
        user=user,
        key=str(key),
        bake_dir=str(bake_dir),
        tests=str(config.image(image).tests),
        ssh_config=str(ssh_config),
        **where,
    )
    save(state_dir, kept)
    return type(failure)(failure.message, "\n".join([failure.hint, *kept.lines()]))


def cleanup(config: Config, aws: Any, hosts: Hosts, state_dir: Path, reporter: Reporter) -> list[str]:
    """Remove every kept build host of this environment; returns a line per host."""
    done = []
    for path, kept in all_kept(state_dir):
        if kept.env != config.env:
            continue
        said = hosts.discard(kept)
        ec2 = _ec2_leftovers(aws, kept.bake_id)
        path.unlink(missing_ok=True)
        done.append(f"removed the kept host of {kept.bake_id}: {said}" + (f", {ec2}" if ec2 else ""))
        reporter.ok(done[-1])
    return done


def leftovers(aws: Any, bake_id: str) -> str:
    """Remove what a killed bake left in EC2 (its instance, Packer's group, its key pair); says what went, or ""."""
    said = _ec2_leftovers(aws, bake_id)
    with contextlib.suppress(Exception):  # the bake's own name: gone already is fine
        aws.client("ec2").delete_key_pair(KeyName=f"rodeo-{bake_id}")
    return said


def _ec2_leftovers(aws: Any, bake_id: str) -> str:
    """Terminate the instance Packer left for ``bake_id`` and delete its temporary security groups."""
    ec2 = aws.client("ec2")
    found = [
        i
        for r in ec2.describe_instances(
            Filters=[
                {"Name": "tag:rodeo:bake", "Values": [bake_id]},
                {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]},
            ]
        )["Reservations"]
        for i in r["Instances"]
    ]
    if not found:
        return ""
    ids = [i["InstanceId"] for i in found]
    groups = {
        g["GroupId"] for i in found for g in i.get("SecurityGroups", []) if g.get("GroupName", "").startswith("packer_")
    }
    ec2.terminate_instances(InstanceIds=ids)
    ec2.get_waiter("instance_terminated").wait(InstanceIds=ids, WaiterConfig=WAITER)
    for group in sorted(groups):
        with contextlib.suppress(Exception):
            ec2.delete_security_group(GroupId=group)
    return f"terminated {', '.join(ids)}" + (f" and deleted {', '.join(sorted(groups))}" if groups else "")
