"""Run moto's server with the fidelity fixes Rodeo's local stack relies on.

``python -m toolkit.local.motoserver -H 127.0.0.1 -p PORT`` is moto's own
server, except that AMIs made by RegisterImage and CreateImage are EBS-backed
(``RootDeviceType: ebs``), as they are on AWS for the images Packer's
amazon-ebs builder makes. moto 5.2 calls them ``standard``, which Packer then
refuses as the source of a layered bake ("invalid root device type"), and
CreateLaunchTemplateVersion honours ``ClientToken`` as AWS does (botocore sends
one per call and repeats it on retries): a retry of a create that took effect
returns that version instead of making a duplicate.
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


def _idempotent_launch_template_versions() -> None:
    from moto.ec2.responses.launch_templates import LaunchTemplates

    original = LaunchTemplates.create_launch_template_version
    made: dict = {}

    def create(self):
        token = self._get_param("ClientToken")
        key = (self.current_account, self.region, token)
        if token and key in made:
            return made[key]
        result = original(self)
        if token:
            made[key] = result
        return result

    LaunchTemplates.create_launch_template_version = create


def main(argv: list[str] | None = None) -> None:
    """Start moto's server (same flags as ``moto_server``)."""
    _ebs_backed_amis()
    _idempotent_launch_template_versions()
    from moto.server import main as moto_main

    moto_main(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
