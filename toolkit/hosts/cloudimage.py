"""What makes the local root file system a cloud image: cloud-init, set up for the local stack.

Debian's cloud images run cloud-init, which at an instance's first boot reads
EC2's metadata service, makes the default user (``admin``), writes the key
pair's key into its ``authorized_keys`` (and root's, behind ``disable_root``)
and makes the SSH host keys. The local stack's instances boot under
systemd-nspawn, where cloud-init cannot tell it runs on EC2: it reads no DMI
data inside a container (``cloudinit.dmi.read_dmi_data``) and
``/sys/hypervisor/uuid`` cannot be bind-mounted over sysfs. So the image
names its data source, as cloud-init's documentation says for a platform it
cannot identify:

- ``datasource_list: [ Ec2 ]`` on one line: ds-identify (the systemd
  generator that enables cloud-init) uses a single listed source as found;
- ``datasource: Ec2: strict_id: false``: the Ec2 source then reads the
  metadata service although the platform is "unknown". Unknown, it reads it
  with IMDSv1 only (cloud-init 22.4.2 asks for a token only on an identified
  AWS): an instance whose metadata options require tokens gets no metadata
  from cloud-init here, where on EC2 it would. ``max_wait`` is short so such
  an instance's boot waits 4 s for it, not 120 (the service is there from
  the container's start; nothing else makes it late).

The rest is what the local instances lack: a network namespace with
loopback only (nothing for cloud-init to configure), no DNS for the EC2 host
name (``manage_etc_hosts``), only the C.UTF-8 locale. Host keys: ed25519 and
ECDSA, not RSA and DSA (a 3072-bit RSA key costs about a second of CPU per
boot here; no step of Rodeo needs it).
"""

from __future__ import annotations

from pathlib import Path

CONFIG_FILE = "etc/cloud/cloud.cfg.d/99-rodeo-local.cfg"
CONFIG = """\
# Rodeo's local stack: instances boot under systemd-nspawn, where cloud-init cannot identify EC2.
datasource_list: [ Ec2 ]
datasource:
  Ec2:
    strict_id: false
    metadata_urls: [ 'http://169.254.169.254' ]
    max_wait: 4
    timeout: 2
network: {config: disabled}
manage_etc_hosts: true
locale: C.UTF-8
ssh_genkeytypes: [ed25519, ecdsa]
system_info:
  default_user:
    name: admin
"""


def prepare(root: Path) -> None:
    """Make ``root`` (a fresh Debian root file system with cloud-init) boot like a Debian cloud image.

    No SSH host keys, machine id or host name of the build: each instance
    makes its own at first boot; cloud-init makes the ``admin`` user.
    """
    (root / CONFIG_FILE).write_text(CONFIG)
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (root / "etc/machine-id").write_text("")
    (root / "etc/hostname").write_text("localhost\n")
    (root / "etc/hosts").write_text("127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n")
