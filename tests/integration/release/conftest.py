"""A moto server for the release tests, and one fresh environment per test.

Each test gets its own app name, so its load balancer, target groups, slot
groups, launch template and DynamoDB table are its own on the shared server.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from pathlib import Path

import pytest

from tests.support.stacks import moto_stack as own_moto
from toolkit import config as config_mod
from toolkit.local import seed, stack
from toolkit.local.environment import LocalEnvironment
from toolkit.release import slots
from toolkit.release.planner import SLOTS, violations_of
from toolkit.release.watch import AlarmTiming
from toolkit.ui import Silent

REGION = "us-east-1"
ALARMED_PAUSE = AlarmTiming("seeded", seed.ALARM_PERIOD, 1).seconds_to_fire()  # seed._alarms: one period
_names = itertools.count(1)

RODEO_YML = """\
app: {app}
stack: local
region: us-east-1
images:
  base:
    source_ami: {{name: "debian-12-*", owners: ["self"]}}
    playbook: playbooks/base.yml
    tests: tests/image/test_base.py
  app:
    parent: base
    playbook: playbooks/app.yml
    tests: tests/image/test_app.py
release:
  load_balancer: {app}
  slots: {{blue: {app}-blue, green: {app}-green}}
  capacity: {{min: 2, max: 4, desired: 2}}
  steps: [10, 50, 100]
  pause_seconds: {pause}
  alarms: {alarms}
  health_timeout_seconds: 3
"""


@pytest.fixture(scope="session")
def moto_stack(tmp_path_factory):
    """One moto server for the whole session (stopped at the end)."""
    with own_moto(tmp_path_factory.mktemp("stack"), REGION) as started:
        yield started


@pytest.fixture
def project(tmp_path) -> Path:
    """A project root with the files an environment's images point at."""
    for rel in ("playbooks/base.yml", "playbooks/app.yml", "tests/image/test_base.py", "tests/image/test_app.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    return tmp_path


def make_config(project: Path, alarmed: bool = False, **release_changes):
    """A fresh environment (unique app name) loaded from a rodeo.yml under ``project``.

    No pause and no alarm, unless ``alarmed``: then the gate alarm ``<app>-5xx``
    (seeded with the local stack's period) and the pause it needs to fire
    (``toolkit.release.watch``: a shorter one is refused). A test that sets the
    alarm to ALARM ends the watch at its first check.
    """
    app = f"rt{next(_names)}"
    env_dir = project / "inventories" / "test"
    env_dir.mkdir(parents=True, exist_ok=True)
    pause, alarms = (ALARMED_PAUSE, f"[{app}-5xx]") if alarmed else (0, "[]")
    (env_dir / "rodeo.yml").write_text(RODEO_YML.format(app=app, pause=pause, alarms=alarms))
    cfg = config_mod.load("test", project)
    if release_changes:
        cfg = dataclasses.replace(cfg, release=dataclasses.replace(cfg.release, **release_changes))
    return cfg


class World:
    """One seeded environment: its config, clients and helpers to look at it."""

    def __init__(self, cfg, url, st):
        self.cfg, self.url, self.stack = cfg, url, st
        self.aws = LocalEnvironment(region=cfg.region, endpoint=url)
        self.observer = LocalEnvironment(region=cfg.region, endpoint=url)  # reads state without the test's hooks
        self.reporter = Silent()

    def seed(self):
        stack.up(self.stack, REGION, seeders=(seed.seed_release(self.cfg),))
        self.env = slots.resolve(self.cfg, self.aws)
        # Its targets are "initial" for a moment (toolkit.local.awsrules): a test starts from a serving environment.
        # Polled on blue's health alone (two calls), not the whole state (eight), as often as a release polls.
        deadline, pauses = time.monotonic() + 30, slots.poll_pauses()
        while self.healthy("blue") < self.cfg.release.capacity.min and time.monotonic() < deadline:
            time.sleep(next(pauses))
        assert self.healthy("blue") >= self.cfg.release.capacity.min, self.state()
        return self

    def healthy(self, slot):
        """How many of ``slot``'s instances are healthy (behind a Classic ELB: InService once attached)."""
        return slots.health(self.env, self.observer, of=(slot,))[slot][0]

    def state(self):
        return slots.read(self.env, self.observer)

    def ami(self, verified=True, sha="abc1234", image="app"):
        """Register an AMI in moto tagged as Rodeo's (verified unless told)."""
        ec2 = self.aws.client("ec2")
        ami = ec2.register_image(
            Name=f"{self.cfg.app}-{image}-{next(_names)}",
            Architecture="x86_64",
            RootDeviceName="/dev/xvda",
            VirtualizationType="hvm",
        )["ImageId"]
        tags = {
            "rodeo:app": self.cfg.app,
            "rodeo:image": image,
            "rodeo:git-sha": sha,
            "rodeo:built-at": f"2026-11-01T00:00:{next(_names) % 60:02d}Z",
        }
        if verified:
            tags["rodeo:verified"] = "true"
        ec2.create_tags(Resources=[ami], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
        return ami

    def invariant(self):
        """Messages for every weighted slot below the healthy minimum (empty when fine).

        Read after every mutating call of a crash or fault test: only what the
        invariant needs (the listener's weights, then the groups and the
        target health of the slots with weight: three calls while one slot
        serves), not ``state`` (the launch template and the target groups'
        attributes too). A slot without weight breaks nothing, whatever its health.
        """
        if self.env.classic:
            return self._classic_shortfall()
        weights = slots.slot_weights(self.env, self.observer)
        weighted = tuple(slot for slot in SLOTS if weights[slot] > 0)
        health = slots.health(self.env, self.observer, of=weighted) if weighted else {}
        return violations_of(weights, {slot: health.get(slot, (0, 0))[0] for slot in SLOTS}, self.cfg.release)

    def _classic_shortfall(self):
        """Behind a Classic ELB, which sends only to InService instances: a message when the attached slots together
        have fewer InService instances than capacity.min (a slot joining has none for a moment, as it should)."""
        weights = slots.slot_weights(self.env, self.observer)
        serving = sum(healthy for slot, (healthy, _) in slots.health(self.env, self.observer).items() if weights[slot])
        need = max(self.cfg.release.capacity.min, 1)
        return [] if serving >= need else [f"the ELB has {serving} InService instance(s), fewer than {need}"]


@pytest.fixture
def world(moto_stack, project):
    """A seeded environment: blue live with the base AMI at weight 100, green empty."""
    st, url = moto_stack
    return World(make_config(project), url, st).seed()


@pytest.fixture
def alarmed_world(moto_stack, project):
    """``world`` with the gate alarm ``<app>-5xx`` and the pause it needs."""
    st, url = moto_stack
    return World(make_config(project, alarmed=True), url, st).seed()


@pytest.fixture
def make_world(moto_stack, project):
    """A factory of seeded environments with release settings changed."""
    st, url = moto_stack

    def make(**changes):
        return World(make_config(project, **changes), url, st).seed()

    return make
