"""AWS faults: throttling, 5xx answers and dropped connections, through a proxy in front of moto.

Rodeo's clients point at ``tests.support.faultproxy`` (``LocalEnvironment(region,
endpoint=proxy.url)``); the test's observer reads the world
straight from moto. The invariant (no weight on a slot with fewer healthy
targets than capacity.min) is checked after every mutating call, as in
``release/test_crash.py``.
"""

from __future__ import annotations

import json
import time
import types
from pathlib import Path

import botocore.endpoint
import pytest

from tests.integration.bakes import Project
from tests.integration.release.conftest import REGION, World, make_config
from tests.support.faultproxy import FaultProxy
from tests.support.hooks import MUTATING, HookedAws
from tests.support.stacks import moto_stack
from toolkit import table
from toolkit.aws import RETRIES
from toolkit.errors import ReleaseError
from toolkit.local.environment import LocalEnvironment
from toolkit.release import ledger, rollout
from toolkit.ui import Silent

pytestmark = pytest.mark.integration

ATTEMPTS = RETRIES["max_attempts"] + 1  # botocore's max_attempts counts retries, after the first attempt
LINEAGE = {
    "rodeo:app",
    "rodeo:image",
    "rodeo:git-sha",
    "rodeo:source-ami",
    "rodeo:inputs-hash",
    "rodeo:verified",
    "rodeo:toolkit-version",
    "rodeo:built-at",
}


class Faulty(HookedAws):
    """Rodeo's clients through the proxy; the invariant is checked after each mutating call (done or failed)."""

    HOOKS = (("after-call", "_after"), ("after-call-error", "_after"))

    def __init__(self, world: World, proxy: FaultProxy, on_call=None):
        super().__init__(region=world.aws.region, endpoint=proxy.url)
        self.world, self.on_call = world, on_call
        self.calls: list[tuple[str, str]] = []
        self.broken: list[str] = []

    def _after(self, event_name, **kwargs):
        name = event_name.rsplit(".", 1)[-1]
        if not name.startswith(MUTATING):
            return
        outcome = "error" if "exception" in kwargs or kwargs["http_response"].status_code >= 300 else "ok"
        self.calls.append((name, outcome))
        self.broken += [f"after {name} #{len(self.calls)} ({outcome}): {v}" for v in self.world.invariant()]
        if self.on_call:
            self.on_call(name, outcome)


class Recorder(Silent):
    def __init__(self):
        super().__init__()
        self.warnings: list[str] = []

    def warn(self, message):
        self.warnings.append(message)


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    """A moto server for this module's releases (not the bake stack: no build instance needed)."""
    with moto_stack(tmp_path_factory.mktemp("faults-stack"), REGION) as started:
        yield started


@pytest.fixture
def world(moto, tmp_path):
    """A seeded environment (blue live at weight 100, green empty), with a roomier health timeout.

    No test here measures the health gate's timeout (its targets are healthy half a second after they register,
    ``awsrules.targets_checked_before_healthy``): a release retrying through faults on a loaded machine (one ran out
    of 20 s with both targets healthy at its next read) must not stop for a reason no test asserts.
    """
    for rel in ("playbooks/base.yml", "playbooks/app.yml", "tests/image/test_base.py", "tests/image/test_app.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    st, url = moto
    return World(make_config(tmp_path, health_timeout_seconds=60), url, st).seed()


@pytest.fixture
def quick_backoff(monkeypatch):
    """botocore's retry sleeps, a tenth as long: the same attempts, in less time."""
    fast = types.SimpleNamespace(sleep=lambda seconds: time.sleep(seconds / 10))
    monkeypatch.setattr(botocore.endpoint, "time", fast)


def versions(world) -> list[dict]:
    name = f"rodeo-{world.cfg.app}"
    return world.observer.client("ec2").describe_launch_template_versions(LaunchTemplateName=name)[
        "LaunchTemplateVersions"
    ]


def lock_items(world) -> list[dict]:
    ddb = world.observer.client("dynamodb")
    return ddb.query(
        TableName=table.table_name(world.cfg),
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"{world.cfg.env}#lock"}},
    )["Items"]


def assert_released(world, ami, base):
    after = world.state()
    assert after.weights == {"blue": 0, "green": 100}
    assert (after.green.ami, after.green.healthy, after.blue.desired, after.blue.instances, after.blue.ami) == (
        ami,
        2,
        0,
        0,
        base,
    )
    assert len(versions(world)) == 2  # the seed's and exactly one for this release
    entries = ledger.recent(world.cfg, world.observer)
    assert [(e["to_ami"], e["outcome"], e["steps"]) for e in entries] == [(ami, "released", [10, 50, 100])]
    assert lock_items(world) == []


@pytest.mark.parametrize("seed", [3])
def test_a_release_survives_throttling_5xx_and_dropped_connections(world, seed):
    ami, base = world.ami(), world.state().blue.ami
    with FaultProxy(world.url, rate=0.25, seed=seed) as proxy:
        aws = Faulty(world, proxy)
        result = rollout.release(world.cfg, aws, ami=ami, reporter=world.reporter)
    assert result.outcome == "released"
    assert aws.broken == []
    assert proxy.stats.faulted >= 10 and set(proxy.stats.kinds) == {"throttle", "5xx", "drop"}
    assert_released(world, ami, base)


@pytest.mark.parametrize(
    "action", ["PutItem", "CreateLaunchTemplateVersion", "UpdateAutoScalingGroup", "ModifyListener", "DeleteItem"]
)
def test_a_call_that_took_effect_but_failed_is_not_repeated_into_a_duplicate(world, action):
    """The first ``action`` reaches moto, then the client sees a 5xx or a dropped connection and retries."""
    ami, base = world.ami(), world.state().blue.ami
    reporter = Recorder()
    with FaultProxy(world.url, rate=1.0, kinds=("5xx", "drop"), after=1.0, actions={action}, limit=1) as proxy:
        aws = Faulty(world, proxy)
        result = rollout.release(world.cfg, aws, ami=ami, reporter=reporter)
    assert proxy.stats.faults == {action: 1}
    assert result.outcome == "released" and aws.broken == [] and reporter.warnings == []
    assert_released(world, ami, base)


def test_many_calls_that_took_effect_but_failed_leave_no_duplicates(world):
    ami, base = world.ami(), world.state().blue.ami
    reporter = Recorder()
    with FaultProxy(world.url, rate=0.4, seed=5, after=1.0, mutating_only=True) as proxy:
        aws = Faulty(world, proxy)
        result = rollout.release(world.cfg, aws, ami=ami, reporter=reporter)
    assert proxy.stats.faulted >= 3
    assert result.outcome == "released" and aws.broken == [] and reporter.warnings == []
    assert_released(world, ami, base)


def _outage_after_first_weight_change(proxy, **fault):
    def on_call(name, outcome):
        if name == "ModifyListener" and outcome == "ok" and proxy.rate == 0:
            proxy.configure(rate=1.0, **fault)

    return on_call


def test_a_fault_that_outlasts_the_retries_after_traffic_moved_rolls_back(world, quick_backoff):
    """Every attempt of the second weight change fails; AWS answers again for the rollback."""
    ami, base = world.ami(), world.state().blue.ami
    with FaultProxy(world.url, seed=1) as proxy:
        aws = Faulty(
            world,
            proxy,
            _outage_after_first_weight_change(proxy, kinds=("5xx", "drop"), actions={"ModifyListener"}, limit=ATTEMPTS),
        )
        with pytest.raises(ReleaseError) as caught:
            rollout.release(world.cfg, aws, ami=ami, reporter=world.reporter)
    assert (
        "rolled back" in caught.value.message
        and f"blue serves {base}" in caught.value.message
        and "invoke logs --slot green" in caught.value.hint
    )
    assert caught.value.result.outcome == "rolled_back"
    assert proxy.stats.faults == {"ModifyListener": ATTEMPTS}
    assert aws.broken == []
    after = world.state()
    assert after.weights == {"blue": 100, "green": 0}
    assert (after.blue.ami, after.blue.healthy, after.green.desired) == (base, 2, 0)
    assert ledger.recent(world.cfg, world.observer)[0]["outcome"] == "rolled_back"
    assert lock_items(world) == []
    assert len(versions(world)) == 2


@pytest.mark.parametrize("when", ["before traffic moved", "after traffic moved"])
def test_a_lasting_outage_stops_cleanly_and_a_rerun_converges(world, quick_backoff, when):
    """From some call on, every call fails: nothing can be undone, but nothing is half done either."""
    ami = world.ami()
    with FaultProxy(world.url, seed=2) as proxy:
        if when == "after traffic moved":
            on_call = _outage_after_first_weight_change(proxy, kinds=("5xx", "drop"))
        else:

            def on_call(name, outcome):
                if name == "CreateLaunchTemplateVersion" and proxy.rate == 0:
                    proxy.configure(rate=1.0, kinds=("5xx", "drop"))

        aws = Faulty(world, proxy, on_call)
        with pytest.raises(ReleaseError) as caught:
            rollout.release(world.cfg, aws, ami=ami, reporter=world.reporter)
    assert aws.broken == []
    assert "invoke rollback" in caught.value.hint
    after = world.state()
    if when == "before traffic moved":
        assert after.weights == {"blue": 100, "green": 0}
    else:
        assert after.weights in ({"blue": 100, "green": 0}, {"blue": 90, "green": 10})
    assert len(lock_items(world)) <= 1  # held by the run AWS stopped answering: --break-lock takes it
    rerun = Faulty(world, types.SimpleNamespace(url=world.url))
    result = rollout.release(world.cfg, rerun, ami=ami, break_lock=True, reporter=world.reporter)
    assert result.outcome == "released" and rerun.broken == []
    assert_after = world.state()
    assert assert_after.weights == {"blue": 0, "green": 100} and assert_after.green.ami == ami
    assert len(versions(world)) == 2
    assert lock_items(world) == []
    assert all(e["outcome"] != "in_progress" for e in ledger.recent(world.cfg, world.observer))


def test_a_bake_and_its_tag_read_back_survive_faults(tmp_path, local_stack):
    """Packer (custom_endpoint_ec2) and Rodeo's own calls both go through the proxy; no AMI is made twice.

    DescribeImages is spared: Packer 1.6.6 does not retry its source-AMI look-up
    ("Error querying AMI"), so one throttle or 5xx there fails the bake.
    Faults land before the request reaches moto (none after the effect).
    """
    from toolkit import config as config_mod
    from toolkit.bake.pipeline import bake
    from toolkit.local.hosts import LocalHosts

    st, url = local_stack
    project = Project(tmp_path / "project", st.state_dir)
    cfg = config_mod.load("local", project.root)
    observer = LocalEnvironment(region=cfg.region, endpoint=url).client("ec2")
    before = set(Project.amis(observer))
    with FaultProxy(url, rate=0.15, seed=4, exclude={"DescribeImages"}) as proxy:
        aws = LocalEnvironment(region=cfg.region, endpoint=proxy.url)
        record = bake(cfg, aws, LocalHosts(st, aws), "base", st.state_dir, reporter=Silent(), force=True).to_dict()
    new = set(Project.amis(observer)) - before
    ami = record["ami"][cfg.region]
    assert new == {ami}
    tags = {t["Key"]: t["Value"] for t in observer.describe_images(ImageIds=[ami])["Images"][0]["Tags"]}
    assert LINEAGE <= set(tags) and json.loads((Path(record["artifacts"]) / "verify.json").read_text())["failures"] == 0
    assert record["tags"] == {k: v for k, v in tags.items() if k.startswith("rodeo:")}
    assert proxy.stats.faulted >= 3, proxy.stats
    assert observer.describe_key_pairs(Filters=[{"Name": "key-name", "Values": ["rodeo-*"]}])["KeyPairs"] == []
