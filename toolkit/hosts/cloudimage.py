"""What makes the local root file system a cloud image: cloud-init, set up for the local stack.

Debian's cloud images run cloud-init, which at an instance's first boot reads
EC2's metadata service, makes the default user (``admin``), writes the key
pair's key into its ``authorized_keys`` (and root's, behind ``disable_root``)
and makes the SSH host keys. The local stack's instances boot under
systemd-nspawn, where cloud-init cannot tell it runs on EC2: it reads no DMI
data inside a container (``cloudinit.dmi.read_dmi_data``) and
``/sys/hypervisor/uuid`` cannot be bind-mounted over sysfs. Unidentified, the
Ec2 data source would read the metadata service with IMDSv1 only (cloud-init
22.4.2 asks for a token only on an identified AWS): an instance whose
metadata options require tokens (every instance Rodeo launches) would wait
out ``max_wait`` at every boot (cloud-init's network stage holds
``network-online.target``, so the app with it) and get no metadata, where on
EC2 it gets it at once. So the image adds a data source, ``Ec2Container``:
cloud-init's own Ec2 source, told the platform is AWS (what DMI says on EC2),
so it asks for a token and reads the service as on EC2. The image names it
as cloud-init's documentation says for a platform it cannot identify:
``datasource_list`` with one entry, on one line (ds-identify, the systemd
generator that enables cloud-init, then uses it as found); its settings are
the Ec2 source's (``datasource: Ec2:``). ``max_wait`` and ``timeout`` are
EC2's own order of magnitude: the service answers at once when it can, and a
loaded machine's slow answer is waited for, not taken as no data source (no
user, no key: a build instance Packer never reaches).

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
datasource_list: [ Ec2Container ]
datasource:
  Ec2:
    metadata_urls: [ 'http://169.254.169.254' ]
    max_wait: 60
    timeout: 10
network: {config: disabled}
manage_etc_hosts: true
locale: C.UTF-8
ssh_genkeytypes: [ed25519, ecdsa]
system_info:
  default_user:
    name: admin
"""

DATASOURCE_FILE = "usr/lib/python3/dist-packages/cloudinit/sources/DataSourceEc2Container.py"
DATASOURCE = '''"""cloud-init's Ec2 data source on the local stack's instances, which cannot read EC2's DMI data (Rodeo)."""

from cloudinit import sources
from cloudinit.sources import DataSourceEc2 as ec2


class DataSourceEc2Container(ec2.DataSourceEc2):
    """The platform is AWS: on EC2 the DMI data says so; under systemd-nspawn there is none to read."""

    dsname = "Ec2"

    def _get_cloud_name(self):
        return ec2.CloudNames.AWS


datasources = [(DataSourceEc2Container, (sources.DEP_FILESYSTEM, sources.DEP_NETWORK))]


def get_datasource_list(depends):
    return sources.list_from_depends(depends, datasources)
'''


def prepare(root: Path) -> None:
    """Make ``root`` (a fresh Debian root file system with cloud-init) boot like a Debian cloud image.

    No SSH host keys, machine id or host name of the build: each instance
    makes its own at first boot; cloud-init makes the ``admin`` user.
    """
    (root / CONFIG_FILE).write_text(CONFIG)
    (root / DATASOURCE_FILE).write_text(DATASOURCE)
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (root / "etc/machine-id").write_text("")
    (root / "etc/hostname").write_text("localhost\n")
    (root / "etc/hosts").write_text("127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n")
