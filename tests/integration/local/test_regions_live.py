"""A release in waves on the live stack: two regions served side by side, config vars read across them.

One stack for the module, seeded from a config with ``release.regions:
[us-east-1, {region: us-west-2, subnets, security_groups}]`` (each region's
seeded ids, ``toolkit.local.seed``), one instance per slot: seeding boots
the placeholder app in each region's blue slot. Each region's ALB is named
``web``; each is served by HAProxy on a loopback port of its own, answers
from its own region's instance (the access logs of its region's bucket name
the target, whose address is in its region's range), and a build copied
into us-west-2 by CopyImage boots there from the same layers. A release in
waves of that build goes region by region under load on both listeners,
without a failed request, and every instance reads the config var set in
us-east-1 (``config_region`` in us-west-2's user data, through its subnet's
NAT gateway). Four instances boot in all.
"""

from __future__ import annotations

import gzip
import html
import ipaddress
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.integration.local.conftest import CACHE, leftovers
from tests.support import livebuilds
from tests.support.load import Load
from toolkit import config, regions
from toolkit import configchange as change
from toolkit.local import seed, stack
from toolkit.local.environment import LocalEnvironment
from toolkit.release import slots
from toolkit.release import waves as in_waves
from toolkit.ui import Silent

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[3]
EAST, WEST = "us-east-1", "us-west-2"
REQUESTS = 5  # to each region's listener
RATE = 20  # requests per second to each region's listener during the release in waves
GREETING = "Howdy from us-east-1's SSM"


class Waves:
    """The module's stack: each region's config (as ``regions.in_region`` sees it), environment and slots."""

    def __init__(self, cfg, st: stack.Stack, url: str, layers: dict, folder: Path) -> None:
        self.cfg, self.st, self.layers, self.folder = cfg, st, layers, folder
        waves = regions.waves(cfg)
        self.cfgs = {w.region: regions.in_region(cfg, w, first=i == 0) for i, w in enumerate(waves)}
        self.aws = {r: LocalEnvironment(region=r, endpoint=url, stack=st) for r in self.cfgs}
        self.envs = {r: slots.resolve(self.cfgs[r], self.aws[r]) for r in self.cfgs}

    def url(self, region: str) -> str:
        found = self.aws[region].listener_url("web", 80)
        assert found, (region, stack.status(self.st)["load_balancers_by_region"])
        return found

    def serving(self, region: str) -> list[dict]:
        """The instances of the slot holding the traffic in ``region`` (DescribeInstances there)."""
        state = slots.read(self.envs[region], self.aws[region])
        ids = slots.instance_ids(self.envs[region], self.aws[region], state.active.name)
        found = self.aws[region].client("ec2").describe_instances(InstanceIds=ids)["Reservations"] if ids else []
        return [i for r in found for i in r["Instances"]]


@pytest.fixture(scope="module")
def waves(layers, tmp_path_factory):
    folder = tmp_path_factory.mktemp("regions-live")
    root = livebuilds.project(folder / "project", ROOT)
    yml = root / "inventories/local/rodeo.yml"
    data = yaml.safe_load(yml.read_text())
    data["copy_to_regions"] = [WEST]
    data["release"].update(
        capacity={"min": 1, "max": 1, "desired": 1},
        steps=[100],
        analysis={"enabled": False},
        regions=[
            EAST,
            {"region": WEST, "subnets": list(seed.private_subnets(WEST)), "security_groups": [seed.instance_sg(WEST)]},
        ],
    )
    yml.write_text(yaml.safe_dump(data, sort_keys=False))
    cfg = config.load("local", root)
    st = stack.Stack(state_dir=folder / "state", cache_dir=CACHE, live=True)
    url = stack.up(st, EAST, seeders=(seed.seed_release(cfg),))  # each region's blue serves before it returns
    try:
        yield Waves(cfg, st, url, layers, folder)
    finally:
        stack.down(st)
    assert leftovers(st) == {"processes": [], "mounts": [], "netns": [], "cgroups": []}


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as answer:
        assert answer.status == 200
        return answer.read().decode()


def logged_targets(w: Waves, region: str, want: int, timeout: float = 20.0) -> list[str]:
    """The target (``ip:port``) of each request in the access logs of ``region``'s ALB, once ``want`` are there."""
    s3 = w.aws[region].client("s3")
    bucket, deadline, targets = seed.ACCESS_LOG_BUCKET.format(region=region), time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="web/").get("Contents", [])]
        lines = [
            line
            for key in keys
            for line in gzip.decompress(s3.get_object(Bucket=bucket, Key=key)["Body"].read()).decode().splitlines()
        ]
        targets = [line.split(" ")[4] for line in lines]
        if len(targets) >= want:
            return targets
        time.sleep(0.5)
    raise AssertionError(f"{region}: {len(targets)} of {want} requests in the access logs after {timeout:.0f}s")


def test_each_regions_load_balancer_answers_from_an_instance_of_its_own_region(waves):
    urls = {region: waves.url(region) for region in (EAST, WEST)}
    assert urls[EAST] != urls[WEST]  # two ALBs named web: each region's listener is its own
    assert stack.status(waves.st)["load_balancers"] == {
        f"web ({region})": {"80": urls[region]} for region in (EAST, WEST)
    }
    for region in (EAST, WEST):
        pages = [get(urls[region]) for _ in range(REQUESTS)]
        assert all("nothing released yet" in page for page in pages)  # the placeholder app of the region's blue
    for region in (EAST, WEST):
        (instance,) = waves.serving(region)
        assert instance["Placement"]["AvailabilityZone"].startswith(region)
        assert instance["SubnetId"] in seed.private_subnets(region)
        assert ipaddress.ip_address(instance["PrivateIpAddress"]) in ipaddress.ip_network(seed.vpc_cidr(region))
        # Every request to the region's listener was answered by that instance, and logged in the region's bucket.
        assert logged_targets(waves, region, REQUESTS) == [f"{instance['PrivateIpAddress']}:8080"] * REQUESTS


def test_a_release_in_waves_goes_region_by_region_under_load_and_reads_the_config_of_region(waves):
    east, west = waves.aws[EAST], waves.aws[WEST]
    # Config vars live in region: (us-east-1) only; every region's release takes their newest version.
    made = change.set_vars(waves.cfg, east, {"GREETING": GREETING}, release=False, reporter=Silent())
    assert made.version == 1
    params = {
        r: [p["Name"] for p in waves.aws[r].client("ssm").describe_parameters()["Parameters"]] for r in (EAST, WEST)
    }
    assert (len(params[EAST]), params[WEST]) == (1, []) and params[EAST][0].endswith("/GREETING"), params
    # A bake copies its AMI to copy_to_regions with its tags (its inputs hash and time too); the copy boots from the
    # source's layers.
    ami = livebuilds.build(waves.st, east.client("ec2"), waves.layers, waves.folder, "3.0.0")
    east.client("ec2").create_tags(Resources=[ami], Tags=[{"Key": "rodeo:inputs-hash", "Value": "sha256:3.0.0"}])
    tags = east.client("ec2").describe_images(ImageIds=[ami])["Images"][0]["Tags"]
    copy = west.client("ec2").copy_image(
        SourceImageId=ami,
        SourceRegion=EAST,
        Name="web-app-3.0.0",
        TagSpecifications=[{"ResourceType": "image", "Tags": tags}],
    )["ImageId"]
    deadline = time.monotonic() + 30
    while west.client("ec2").describe_images(ImageIds=[copy])["Images"][0]["State"] != "available":
        assert time.monotonic() < deadline, "the copy is not available in 30 s"
        time.sleep(0.5)
    order = []

    def weight_moved_in(region):
        return lambda model, **_: order.append(region) if model.name == "ModifyListener" else None

    for region in (EAST, WEST):  # the clients the release makes: the environment's, one per region (toolkit.aws)
        east.client("elbv2", region).meta.events.register("after-call", weight_moved_in(region))

    with (
        Load(waves.url(EAST), rate=RATE, workers=4) as east_load,
        Load(waves.url(WEST), rate=RATE, workers=4) as west_load,
    ):
        time.sleep(1.0)
        result = in_waves.release(waves.cfg, east, ami=ami, reporter=Silent())
        time.sleep(1.0)

    assert [(w.region, w.outcome, w.serving, w.serving_config) for w in result.waves] == [
        (EAST, "released", ami, 1),
        (WEST, "released", copy, 1),
    ]
    assert order == [EAST, WEST]  # us-west-2's weight moved only after us-east-1's release had ended
    for load in (east_load, west_load):
        summary = load.summary()
        assert summary["requests"] >= RATE * 5 and summary["failed"] == 0, (summary, load.failed()[:5])
    (instance,) = waves.serving(WEST)
    assert (instance["ImageId"], instance["SubnetId"] in seed.private_subnets(WEST)) == (copy, True)
    for region in (EAST, WEST):
        page = get(waves.url(region))
        assert f"<h1>{html.escape(GREETING)}</h1>" in page and "Version 3.0.0" in page
