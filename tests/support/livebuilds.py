"""Sample app builds for releases on the live local stack (tests and benchmarks).

A build is the sample base and app layers (``tests/integration/local/conftest.py``
bakes them once, cached by the playbooks' content) plus a thin layer of its
own: its version in ``/opt/web/config.json`` and, for a deliberately broken
build, the ``webapp_fault`` drop-in the app role writes (``health``: /health
answers 500; ``start``: the service fails at start; ``root``: / answers 500).
It is registered as a verified AMI of app ``web``, image ``app``, as a bake
would tag it: these builds exercise releases, not bakes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

FAULTS = {
    "": None,
    "health": "[Service]\nEnvironment=WEBAPP_FAULT=health\n",
    "root": "[Service]\nEnvironment=WEBAPP_FAULT=root\n",
    "start": "[Service]\nExecStartPre=/bin/false\n",
}


def build(st: Any, ec2: Any, layers: dict[str, Path], folder: Path, version: str, fault: str = "", app: str = "web") -> str:
    """Register a build of the sample app with ``version`` (and ``fault``); return its AMI id."""
    top = folder / f"build-{version}"
    shutil.rmtree(top, ignore_errors=True)
    (top / "opt/web").mkdir(parents=True)
    (top / "opt/web/config.json").write_text(json.dumps({"version": version, "port": 8080}))
    if FAULTS[fault]:
        (top / "etc/systemd/system/web.service.d").mkdir(parents=True)
        (top / "etc/systemd/system/web.service.d/fault.conf").write_text(FAULTS[fault])
    ami = ec2.register_image(Name=f"{app}-app-{version}", Architecture="x86_64", RootDeviceName="/dev/xvda", VirtualizationType="hvm")["ImageId"]
    tags = {"rodeo:app": app, "rodeo:image": "app", "rodeo:verified": "true", "rodeo:git-sha": version, "rodeo:built-at": f"2026-11-27T00:00:{len(version):02d}Z"}
    ec2.create_tags(Resources=[ami], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    st.store.add(ami, [layers["rootfs"], layers["base"], layers["app"], top])
    return ami


RELEASE_YML = """\
app: web
stack: local
region: us-east-1
images:
  base: {{source_ami: {{name: "debian-12-*", owners: [self]}}, playbook: playbooks/base.yml, tests: tests/image/test_base.py}}
  app: {{parent: base, playbook: playbooks/app.yml, tests: tests/image/test_app.py}}
release:
  load_balancer: web
  listener_port: 80
  slots: {{blue: web-blue, green: web-green}}
  image: app
  capacity: {{min: 2, max: 4, desired: 2}}
  steps: [10, 50, 100]
  pause_seconds: {pause}
  alarms: [web-5xx]
  health_timeout_seconds: {health_timeout}
  smoke_check: {{path: {smoke_path}, port: 8081, timeout_seconds: 3, requests: 3}}
"""


def project(root: Path, repo: Path, pause: int = 2, health_timeout: int = 40, smoke_path: str = "/health") -> Path:
    """A project folder with the sample playbooks and tests and a release tuned for the live stack."""
    for rel in ("playbooks", "tests/image", "inventories/local/group_vars"):
        shutil.copytree(repo / rel, root / rel, dirs_exist_ok=True)
    (root / "inventories/local/rodeo.yml").write_text(RELEASE_YML.format(pause=pause, health_timeout=health_timeout, smoke_path=smoke_path))
    return root
