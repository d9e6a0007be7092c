"""Packer's build instances on the live local stack: booted like any instance, reached over SSH, their disk kept.

Packer's amazon-ebs launches the build instance with RunInstances, tagged
``rodeo:bake=<bake id>``. The controller boots it like every instance
(systemd-nspawn in its own network namespace, the metadata service, cloud-init
at first boot) with three differences, each the local form of what EC2 does:

- its state stays what moto says (``running`` at once): on EC2 an instance is
  ``running`` when its VM starts, long before SSH answers, and Packer's waiter
  for ``running`` polls every 15 s;
- once its systemd is up, its port 22 is served on a unix socket named after
  the bake (``ssh_socket``), which the bake's forwarder on a 127.0.0.1 port
  (``hosts/instance.py``) waits for and connects to: Packer's SSH is that port;
- when it stops or ends, its upper layer (the disk the bake wrote) is handed
  to the bake at ``handed_over`` instead of being deleted: the bake keeps it
  as the new AMI's layer, or deletes it.

No AWS endpoint configuration is written onto its disk (on EC2 the build
instance has none, and the image must not carry any).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

BAKE_TAG = "rodeo:bake"
VERIFY_TAG = "rodeo:verify"  # ``invoke verify --ami``'s instance: reached and thrown away the same way


def bake_id_of(inst) -> str:
    """The bake (or check) a moto instance was launched for (its ``rodeo:bake`` or ``rodeo:verify`` tag), or ""."""
    tags = inst.get_tags() if hasattr(inst, "get_tags") else []
    for tag in tags:
        if (tag.get("key") or tag.get("Key")) in (BAKE_TAG, VERIFY_TAG):
            return str(tag.get("value") or tag.get("Value") or "")
    return ""


SOCKETS = Path("/run/rodeo-bakes")


def ssh_socket(bake_id: str) -> Path:
    """Where the build instance of ``bake_id`` answers SSH: a unix socket the bake can see.

    Not in the stack's run folder, which is private to the stack's mount
    namespace; short, as a socket path has at most 107 bytes.
    """
    return SOCKETS / f"{bake_id}.sock"


def handed_over(live_dir: Path, bake_id: str) -> Path:
    """Where the build instance of ``bake_id`` leaves its upper layer once it is down."""
    return Path(live_dir) / "baked" / bake_id


MARK = "bake-id"


def mark(instance_dir: Path, bake_id: str) -> None:
    """Say in the instance's folder which bake it serves (for whoever looks for what a bake left running)."""
    (instance_dir / MARK).write_text(bake_id + "\n")


def hand_over(instance_dir: Path, live_dir: Path, bake_id: str) -> None:
    """Move a stopped build instance's upper layer to ``handed_over`` (atomic: the bake sees all of it or none)."""
    upper = instance_dir / "upper"
    if not upper.is_dir():
        return
    target = handed_over(live_dir, bake_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        upper.rename(target)


def with_key(identity, inst):
    """``identity`` with the key pair RunInstances named (its public key as moto keeps it), as EC2's metadata serves it."""
    from toolkit.local.motostate import LOCK

    name = getattr(inst, "key_name", None) or ""
    with LOCK:  # moto's key pairs, between two requests
        pair = inst.ec2_backend.key_pairs.get(name) if name else None
    if pair is None:
        return identity
    material = pair.material_public
    return dataclasses.replace(
        identity, key_name=name, public_key=material.decode() if isinstance(material, bytes) else str(material)
    )
