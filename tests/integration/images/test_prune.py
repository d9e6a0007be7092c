"""``invoke prune`` against a moto server: what goes, what stays and why, in two regions.

Each test gets its own app name, so its AMIs, launch template, slot groups and
ledger table are its own on the shared server. AMIs are registered directly
(moto gives each a snapshot) with the lineage tags a bake would put on them.
"""

from __future__ import annotations

import itertools
import json
import types
from pathlib import Path

import botocore.exceptions
import pytest

from tests.integration.bakes import Project
from tests.support.stacks import moto_stack
from toolkit import config as config_mod
from toolkit.errors import AwsError, ConfigError
from toolkit.images.prune import prune
from toolkit.local import seed, stack
from toolkit.local.environment import LocalEnvironment
from toolkit.release import ledger, slots
from toolkit.ui import Silent

E, W = "us-east-1", "us-west-2"
_ids = itertools.count(1)

RODEO_YML = """\
app: {app}
stack: local
region: us-east-1
copy_to_regions: [us-west-2]
images:
  base:
    source_ami: {{name: "debian-12-*", owners: ["self"]}}
    playbook: playbooks/base.yml
    tests: tests/image/test_base.py
  app:
    parent: base
    playbook: playbooks/app.yml
    tests: tests/image/test_app.py
"""
RELEASE_YML = """\
release:
  load_balancer: {app}
  slots: {{blue: {app}-blue, green: {app}-green}}
  capacity: {{min: 1, max: 2, desired: 1}}
  pause_seconds: 0
  health_timeout_seconds: 3
"""


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    """One moto server for this module, stopped at the end."""
    with moto_stack(tmp_path_factory.mktemp("prune-stack"), E) as started:
        yield started


class Env:
    """A fresh app on the shared server: its config, clients and AMI helpers."""

    def __init__(self, root: Path, st: stack.Stack, url: str, release: bool = False) -> None:
        for rel in ("playbooks/base.yml", "playbooks/app.yml", "tests/image/test_base.py", "tests/image/test_app.py"):
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text("")
        self.app = f"pr{next(_ids)}"
        path = root / "inventories" / "test" / "rodeo.yml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(RODEO_YML.format(app=self.app) + (RELEASE_YML.format(app=self.app) if release else ""))
        self.root, self.stack, self.url = root, st, url
        self.cfg = config_mod.load("test", root)
        self.aws = LocalEnvironment(region=self.cfg.region, endpoint=url)

    def ec2(self, region: str = E):
        return self.aws.client("ec2", region)

    def bake(self, n: int, image: str = "app", regions: tuple = (E,), source: str | None = None) -> dict[str, str]:
        """Register build ``n`` of ``image`` in each region (copies share hash and built-at); region -> AMI."""
        tags = {
            "rodeo:app": self.app,
            "rodeo:image": image,
            "rodeo:verified": "true",
            "rodeo:built-at": f"2026-11-01T00:{n:02d}:00Z",
            "rodeo:inputs-hash": f"{image}{n:04d}",
        }
        if source:
            tags["rodeo:source-ami"] = source
        out = {}
        for region in regions:
            ec2 = self.ec2(region)
            ami = ec2.register_image(
                Name=f"{self.app}-{image}-{n}",
                Architecture="x86_64",
                RootDeviceName="/dev/xvda",
                VirtualizationType="hvm",
            )["ImageId"]
            ec2.create_tags(Resources=[ami], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
            out[region] = ami
        return out

    def amis(self, region: str = E) -> set[str]:
        found = self.ec2(region).describe_images(
            Owners=["self"], Filters=[{"Name": "tag:rodeo:app", "Values": [self.app]}]
        )["Images"]
        return {i["ImageId"] for i in found}

    def snapshot_of(self, ami: str, region: str = E) -> str:
        (image,) = self.ec2(region).describe_images(ImageIds=[ami])["Images"]
        return image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]

    def snapshot_exists(self, snap: str, region: str = E) -> bool:
        try:
            return bool(self.ec2(region).describe_snapshots(SnapshotIds=[snap])["Snapshots"])
        except botocore.exceptions.ClientError:
            return False

    def world(self) -> dict:
        """Every image and snapshot of the app in both regions, as AWS describes them."""
        out = {}
        for region in (E, W):
            images = self.ec2(region).describe_images(
                Owners=["self"], Filters=[{"Name": "tag:rodeo:app", "Values": [self.app]}]
            )["Images"]
            snaps = sorted(m["Ebs"]["SnapshotId"] for i in images for m in i["BlockDeviceMappings"])
            out[region] = (
                sorted(images, key=lambda i: i["ImageId"]),
                self.ec2(region).describe_snapshots(SnapshotIds=snaps)["Snapshots"] if snaps else [],
            )
        return out

    def prune(self, image: str = "app", keep: int = 2, plan: bool = False) -> dict:
        return prune(self.cfg, self.aws, image, keep, plan_only=plan, reporter=Silent()).to_dict()


@pytest.fixture
def env(moto, tmp_path) -> Env:
    st, url = moto
    return Env(tmp_path, st, url)


def reasons(result: dict) -> dict[str, list[str]]:
    return {e["ami"]: e["reasons"] for e in result["keep"]}


def test_keeps_the_newest_and_deletes_the_rest_with_their_snapshots(env):
    amis = [env.bake(n)[E] for n in range(1, 6)]
    snaps = {a: env.snapshot_of(a) for a in amis}
    other = env.bake(1, image="base")[E]  # another image of the app is never touched
    result = env.prune(keep=2)
    assert [e["ami"] for e in result["delete"]] == amis[2::-1]
    assert reasons(result) == {amis[4]: ["newest 2"], amis[3]: ["newest 2"]}
    assert {d["ami"] for d in result["deleted"]} == set(amis[:3])
    assert env.amis() == {amis[3], amis[4], other}
    assert [env.snapshot_exists(snaps[a]) for a in amis] == [False, False, False, True, True]
    again = env.prune(keep=2)  # idempotent: nothing left to delete
    assert again["delete"] == [] and again["deleted"] == []


def test_in_use_amis_survive_with_their_reasons(moto, tmp_path):
    st, url = moto
    env = Env(tmp_path, st, url, release=True)
    stack.up(st, E, seeders=(seed.seed_release(env.cfg),))
    pinned, templated, released, previous, unused, new1, new2 = (env.bake(n)[E] for n in range(1, 8))
    resolved = slots.resolve(env.cfg, env.aws)
    version = slots.ensure_version(resolved, env.aws, pinned, None)
    slots.set_capacity(resolved, env.aws, "green", 0, version=version)
    slots.ensure_version(resolved, env.aws, templated, None)
    ledger.start(env.cfg, env.aws, {"kind": "release", "ami": released, "to_ami": released, "from_ami": previous})
    result = env.prune(keep=2)
    assert [e["ami"] for e in result["delete"]] == [unused]
    got = reasons(result)
    assert got[new2] == got[new1] == ["newest 2"]
    assert got[pinned] == [f"in launch template v{version}; pinned by slot group {env.app}-green"]
    assert got[templated] == [f"in launch template v{version + 1}"]
    assert got[released][0].startswith("in release ledger (release 20") and got[previous][0].startswith(
        "in release ledger"
    )
    assert env.amis() == {pinned, templated, released, previous, new1, new2}


def test_parent_of_a_kept_image_survives(env):
    old_base, mid_base, new_base = (env.bake(n, image="base")[E] for n in (1, 2, 3))
    app = env.bake(4, source=old_base)[E]
    result = env.prune(image="base", keep=1)
    assert [e["ami"] for e in result["delete"]] == [mid_base]
    assert reasons(result) == {new_base: ["newest 1"], old_base: [f"parent of {app} (app)"]}
    assert env.amis() == {old_base, new_base, app}


def test_plan_changes_nothing(env):
    for n in range(1, 5):
        env.bake(n, regions=(E, W))
    before = env.world()
    result = env.prune(keep=1, plan=True)
    assert result["plan"] is True and result["deleted"] == []
    assert len(result["delete"]) == 6 and len(result["keep"]) == 2
    assert env.world() == before


def test_copies_in_a_second_region_go_and_stay_with_their_twin(env):
    builds = [env.bake(n, regions=(E, W)) for n in range(1, 5)]
    env.ec2().create_launch_template(
        LaunchTemplateName=f"rodeo-{env.app}", LaunchTemplateData={"ImageId": builds[0][E]}
    )
    west_snap = env.snapshot_of(builds[1][W], W)
    result = env.prune(keep=1)
    assert sorted((e["ami"], e["region"]) for e in result["delete"]) == sorted(
        [(builds[1][E], E), (builds[1][W], W), (builds[2][E], E), (builds[2][W], W)]
    )
    assert reasons(result)[builds[0][W]] == [f"in launch template v1 (as its twin {builds[0][E]} in {E})"]
    assert reasons(result)[builds[3][W]] == ["newest 1"]
    assert env.amis(E) == {builds[0][E], builds[3][E]} and env.amis(W) == {builds[0][W], builds[3][W]}
    assert not env.snapshot_exists(west_snap, W)


def test_keep_zero_is_refused_and_nothing_deleted(env):
    env.bake(1)
    before = env.world()
    for keep in (0, -3):
        with pytest.raises(ConfigError, match="--keep"):
            env.prune(keep=keep)
    with pytest.raises(ConfigError, match="no image named 'nope'"):
        env.prune(image="nope")
    assert env.world() == before


def test_a_region_not_enabled_stops_before_any_delete(env):
    for n in range(1, 4):
        env.bake(n)
    before = env.world()

    def refuse(**kwargs):
        err = {"Error": {"Code": "OptInRequired", "Message": "You are not subscribed to this service."}}
        return types.SimpleNamespace(status_code=401, headers={}), err

    env.ec2(W).meta.events.register("before-call.ec2.*", refuse)
    with pytest.raises(AwsError) as caught:
        env.prune(keep=1)
    assert "region us-west-2" in caught.value.message and "OptInRequired" in caught.value.message
    assert "copy_to_regions" in caught.value.hint
    env.ec2(W).meta.events.unregister("before-call.ec2.*", refuse)
    assert env.world() == before


def test_cli_plan_prints_json_and_changes_nothing(moto, tmp_path):
    st, _ = moto
    project = Project(tmp_path / "project", st.state_dir)
    env = Env(project.root, st, moto[1])
    for n in range(1, 4):
        env.bake(n, regions=(E, W))
    before = env.world()
    run = project.invoke("prune", "--env", "test", "--image", "app", "--keep", "1", "--plan", "--json", timeout=120)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert (result["image"], result["keep_newest"], result["plan"], result["deleted"]) == ("app", 1, True, [])
    assert len(result["delete"]) == 4 and {tuple(e["reasons"]) for e in result["keep"]} == {("newest 1",)}
    table = project.invoke("prune", "--env", "test", "--image", "app", "--keep", "1", "--plan", timeout=120)
    assert table.returncode == 0 and "would delete" in table.stdout and "nothing changed" in table.stdout
    refused = project.invoke("prune", "--env", "test", "--image", "app", "--keep", "0", timeout=120)
    assert refused.returncode == 1 and refused.stderr.startswith("error: --keep 0")
    assert env.world() == before


def test_a_snapshot_still_in_use_after_the_retries_is_left_behind_with_a_hint(env, monkeypatch, capsys):
    """The local stack answers InvalidSnapshot.InUse right after DeregisterImage, as AWS may: with no time to retry, it is left behind."""
    from toolkit.images import prune as prune_mod
    from toolkit.local.awsrules import settle_seconds
    from toolkit.ui import Reporter

    if settle_seconds() == 0:
        pytest.skip("RODEO_LOCAL_SETTLE_SECONDS=0: the stack frees snapshots at once")
    monkeypatch.setattr(prune_mod, "SNAPSHOT_SETTLE_SECONDS", 0)
    old, new = env.bake(1)[E], env.bake(2)[E]
    snap = env.snapshot_of(old)
    result = prune(env.cfg, env.aws, "app", 1, reporter=Reporter(live=False)).to_dict()
    assert result["deleted"] == [{"ami": old, "region": E, "snapshots": [], "left_behind": [snap]}]
    assert env.amis() == {new} and env.snapshot_exists(snap)
    out = capsys.readouterr().out
    assert (
        f"left snapshot {snap} behind in {E}: AWS still says it is in use 0s after {old} was deregistered; "
        f"delete it later: aws ec2 delete-snapshot --region {E} --snapshot-id {snap}" in out
    )
    assert f"deregistered {old} in {E}, deleted 0 snapshot(s), left 1 behind" in out
