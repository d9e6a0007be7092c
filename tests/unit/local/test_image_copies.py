"""A copy of an AMI boots on the live stack: it has its source's layers (``motoserver._copies_boot_as_their_source``).

Run in a child process (moto in-process, the patch installed there only), so
this worker's moto stays as moto ships it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

COPY = """
import json, sys
from pathlib import Path
import boto3
from moto import mock_aws
from toolkit.local import motoserver
from toolkit.local.store import ImageStore

store = ImageStore(Path(sys.argv[1]))
motoserver._copies_boot_as_their_source(store)
with mock_aws():
    east, west = boto3.client("ec2", "us-east-1"), boto3.client("ec2", "us-west-2")
    local = east.register_image(Name="local-1", RootDeviceName="/dev/xvda")["ImageId"]
    other = east.register_image(Name="other-1", RootDeviceName="/dev/xvda")["ImageId"]
    store.add(local, [Path("/layers/rootfs"), Path("/layers/bake-1")])
    copies = [west.copy_image(SourceImageId=a, SourceRegion="us-east-1", Name=f"c-{a}")["ImageId"] for a in (local, other)]
    print(json.dumps({"copy": copies[0], "layers": [str(p) for p in store.layers(copies[0])], "other": store.has(copies[1])}))
"""


def test_a_copy_boots_from_its_sources_layers(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", COPY, str(tmp_path)], capture_output=True, text=True, timeout=120, cwd=ROOT, check=True
    )
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["layers"] == ["/layers/rootfs", "/layers/bake-1"]
    assert found["other"] is False  # an AMI with no local image gives its copy none
