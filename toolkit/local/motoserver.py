"""Run moto's server with the fidelity fixes Rodeo's local stack relies on.

``python -m toolkit.local.motoserver -H 127.0.0.1 -p PORT`` is moto's own
server, except that AMIs made by RegisterImage and CreateImage are EBS-backed
(``RootDeviceType: ebs``), as they are on AWS for the images Packer's
amazon-ebs builder makes. moto 5.2 calls them ``standard``, which Packer then
refuses as the source of a layered bake ("invalid root device type").
"""

from __future__ import annotations

import sys


def _ebs_backed_amis() -> None:
    from moto.ec2.models import amis

    original = amis.Ami.__init__

    def init(self, *args, **kwargs):
        kwargs.setdefault("root_device_type", "ebs")
        original(self, *args, **kwargs)

    amis.Ami.__init__ = init


def main(argv: list[str] | None = None) -> None:
    """Start moto's server (same flags as ``moto_server``)."""
    _ebs_backed_amis()
    from moto.server import main as moto_main

    moto_main(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
