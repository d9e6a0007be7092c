"""``invoke promote`` between two environments of one app on one moto server: staging (us-east-1) to production (us-west-2).

Moto only (the release tests' server): the copy, its tags and its wait, the
release through the normal path, the ledger's ``promoted_from``, ``invoke
releases``, a rerun that copies nothing, and the refusals as the command
prints them. The tests share the two environments and run in file order: the
first needs production before anything was released there.
"""

from __future__ import annotations

import dataclasses
import itertools
import json

import pytest
from invoke import Context
from invoke.exceptions import Exit

import tasks
from tests.integration.release.conftest import RODEO_YML
from toolkit import config as config_mod
from toolkit.local import seed, stack
from toolkit.local.environment import LocalEnvironment
from toolkit.promote import transfer
from toolkit.promote.execute import promote
from toolkit.promote.plan import COPIED_FROM
from toolkit.release import history, ledger, rollout, slots
from toolkit.ui import Reporter, Silent

_names = itertools.count(1)
REGIONS = {"staging": "us-east-1", "production": "us-west-2"}


class Env:
    """One seeded environment of the shared app."""

    def __init__(self, project, name, app, url, st):
        folder = project / "inventories" / name
        folder.mkdir(parents=True, exist_ok=True)
        text = RODEO_YML.format(app=app, pause=0, alarms="[]").replace("region: us-east-1", f"region: {REGIONS[name]}")
        (folder / "rodeo.yml").write_text(text.replace(f"load_balancer: {app}", f"load_balancer: {app}-{name[:4]}"))
        self.cfg = config_mod.load(name, project)
        self.aws = LocalEnvironment(region=self.cfg.region, endpoint=url)
        stack.up(st, self.cfg.region, seeders=(seed.seed_release(self.cfg),))

    def live(self):
        return slots.read(slots.resolve(self.cfg, self.aws), self.aws).active

    def ami(self, verified=True):
        ec2 = self.aws.client("ec2")
        ami = ec2.register_image(Name=f"{self.cfg.app}-app-{next(_names)}", RootDeviceName="/dev/xvda")["ImageId"]
        tags = {"rodeo:app": self.cfg.app, "rodeo:image": "app", "rodeo:git-sha": "feed123"}
        tags |= {
            "rodeo:inputs-hash": f"h-{ami}",
            "rodeo:built-at": "2026-12-01T10:00:00Z",
            "rodeo:app-version": "1.4.0",
            "rodeo:app-commit": "c0ffee1",
        }
        if verified:
            tags["rodeo:verified"] = "true"
        ec2.create_tags(Resources=[ami], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
        return ami


@pytest.fixture(scope="module")
def envs(moto_stack, tmp_path_factory):
    project = tmp_path_factory.mktemp("promote")
    for rel in ("playbooks/base.yml", "playbooks/app.yml", "tests/image/test_base.py", "tests/image/test_app.py"):
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        (project / rel).write_text("")
    st, url = moto_stack
    app = f"pr{next(_names)}"
    return {name: Env(project, name, app, url, st) for name in REGIONS}


@pytest.fixture
def cli(envs, monkeypatch, capsys):
    """``invoke promote ...`` through tasks.py against the two environments: (exit code, stdout, stderr)."""
    monkeypatch.setattr(tasks, "_config", lambda env: envs[env].cfg)
    monkeypatch.setattr(tasks, "_aws", lambda cfg, plan=False: envs[cfg.env].aws)
    monkeypatch.setattr(tasks, "_connect", lambda cfg, **kwargs: envs[cfg.env].aws)

    def run(task, **flags):
        try:
            task.body(Context(), **flags)
            code = 0
        except Exit as exc:
            code = exc.code
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def test_nothing_released_and_the_same_environment_are_refused_in_one_line(cli):
    code, _, err = cli(tasks.promote, from_="production", to="staging")
    assert code == 1 and err.splitlines()[0].startswith("error: ami-") and "no release recorded it" in err
    assert err.splitlines()[1] == "  hint: release there first: invoke deploy --env production"
    code, _, err = cli(tasks.promote, from_="staging", to="staging")
    assert code == 1 and "error: --from and --to are both 'staging'" in err


def test_promote_copies_the_ami_to_the_other_region_and_releases_it_with_the_ledger_saying_whence(envs, cli):
    staging, production = envs["staging"], envs["production"]
    ami = staging.ami()
    rollout.release(staging.cfg, staging.aws, ami=ami, reporter=Silent())
    number = ledger.recent(staging.cfg, staging.aws, 1)[0]["number"]
    west = production.aws.client("ec2")
    before = {i["ImageId"] for i in west.describe_images(Owners=["self"])["Images"]}

    code, out, _ = cli(tasks.promote, from_="staging", to="production", plan=True)
    assert code == 0 and f"promote {ami} from staging v{number} ({ami} in us-east-1) to production:" in out
    assert "  copy it to us-west-2 (CopyImage), tagged with its 8 lineage tags" in out
    assert {i["ImageId"] for i in west.describe_images(Owners=["self"])["Images"]} == before  # --plan copied nothing

    code, out, _ = cli(tasks.promote, from_="staging", to="production", json=True)
    shown = json.loads(out.strip().splitlines()[-1])
    copy = shown["copied"]
    assert code == 0 and shown["outcome"] == "released" and shown["promotion"]["action"] == "copy"
    assert copy not in before and production.live().ami == copy and shown["release"]["ami"] == copy
    tags = {t["Key"]: t["Value"] for t in west.describe_images(ImageIds=[copy])["Images"][0]["Tags"]}
    assert tags[COPIED_FROM] == f"123456789012/us-east-1/{ami}"
    assert {k: tags[k] for k in ("rodeo:verified", "rodeo:app-version", "rodeo:inputs-hash")} == {
        "rodeo:verified": "true",
        "rodeo:app-version": "1.4.0",
        "rodeo:inputs-hash": f"h-{ami}",
    }
    origin = {
        "env": "staging",
        "region": "us-east-1",
        "account": "123456789012",
        "ami": ami,
        "number": number,
        "config_version": 0,
    }
    entry = ledger.recent(production.cfg, production.aws, 1)[0]
    assert entry["promoted_from"] == origin and entry["to_ami"] == copy and entry["outcome"] == "released"
    assert shown["release"]["promoted_from"] == origin

    code, out, _ = cli(tasks.releases, env="production")
    assert f"released         {copy} (app 1.4.0, config v0) promoted from staging v{number} ({ami} in us-east-1)" in out
    assert history.read(production.cfg, production.aws).runs[0].promoted_from == origin

    again = promote(staging.cfg, staging.aws, production.cfg, production.aws, reporter=Silent(), wait_delay=0.1)
    assert (again.outcome, again.promotion.action, again.promotion.target_ami, again.copied) == (
        "unchanged",
        "reuse",
        copy,
        None,
    )
    copies = west.describe_images(Owners=["self"], Filters=[{"Name": f"tag:{COPIED_FROM}", "Values": ["*"]}])
    assert [i["ImageId"] for i in copies["Images"]] == [copy]  # the rerun made no second copy


def test_an_unverified_or_rolled_back_ami_is_refused_before_anything_changes(envs, cli):
    staging, production = envs["staging"], envs["production"]
    serving = production.live().ami
    ami = staging.ami(verified=False)
    rollout.release(staging.cfg, staging.aws, ami=ami, allow_unverified=True, reporter=Silent())
    code, _, err = cli(tasks.promote, from_="staging", to="production")
    assert code == 1 and f"error: {ami}, live in staging, is not verified (rodeo:verified=absent)" in err

    staging.aws.client("ec2").create_tags(Resources=[ami], Tags=[{"Key": "rodeo:verified", "Value": "true"}])
    failed = ledger.start(staging.cfg, staging.aws, {"kind": "release", "ami": ami, "to_ami": ami, "config_version": 0})
    ledger.update(staging.cfg, staging.aws, failed, outcome="rolled_back", reason="alarm(s) in ALARM: 5xx")
    code, _, err = cli(tasks.promote, from_="staging", to="production")
    assert (
        code == 1 and f"error: {ami} was rolled back in staging: its release v{failed['number']} failed a gate" in err
    )
    assert production.live().ami == serving  # nothing moved in production


def test_the_procfiles_release_line_travels_with_the_image_and_the_targets_own_command_wins(envs, capsys):
    """A Procfile image's release: line (its AMI's rodeo:release-command) is copied with it, and the target's release
    plan runs it (the plan says so; moto boots no one-off instance), unless the target's rodeo.yml sets its own."""
    staging, production = envs["staging"], envs["production"]
    ami, line = staging.ami(), "python manage.py migrate"
    rollout.release(staging.cfg, staging.aws, ami=ami, reporter=Silent())
    # Tagged once live: a release of it here would run the phase, whose one-off instance moto never boots.
    staging.aws.client("ec2").create_tags(Resources=[ami], Tags=[{"Key": "rodeo:release-command", "Value": line}])
    planned = promote(staging.cfg, staging.aws, production.cfg, production.aws, plan_only=True, reporter=Silent())
    assert planned.promotion.action == "copy" and planned.promotion.tags["rodeo:release-command"] == line
    copy = transfer.copy(production.aws, planned.promotion)  # what the promotion does first
    transfer.wait(production.aws, copy, delay=0.1)

    def release_plan(target):
        promote(staging.cfg, staging.aws, target, production.aws, plan_only=True, reporter=Reporter(stderr=True))
        return capsys.readouterr().err

    assert f"release phase: {line!r} (from the image's Procfile) on a one-off instance of {copy}" in release_plan(
        production.cfg
    )
    own = dataclasses.replace(
        production.cfg, release=dataclasses.replace(production.cfg.release, release_command="bin/migrate")
    )
    assert f"release phase: 'bin/migrate' on a one-off instance of {copy}" in release_plan(own)


def test_a_user_holding_iam_policy_for_promote_in_each_environment_can_promote(envs, monkeypatch):
    """Each side as a user holding only ``invoke iam-policy --for promote`` of its environment (moto refuses an action
    the policy leaves out), and every call recorded, tags at creation included, is in that policy."""
    import fnmatch

    from tests.integration.aws_calls import Recorder
    from tests.support.principals import acting_as
    from toolkit import iam

    staging, production = envs["staging"], envs["production"]
    ami = staging.ami()
    rollout.release(staging.cfg, staging.aws, ami=ami, reporter=Silent())
    url = staging.aws.endpoint
    source, target = (
        acting_as(e.cfg, url, "promote", iam.policy(e.cfg, iam.purposes_for("promote"))) for e in (staging, production)
    )
    rec = Recorder()
    rec.patch(monkeypatch)
    with rec.phase("promote"):
        done = promote(staging.cfg, source, production.cfg, target, reporter=Silent(), wait_delay=0.1)
    assert done.outcome == "released" and done.promotion.action == "copy" and production.live().ami == done.copied
    granted = {a for s in iam.policy(production.cfg, iam.purposes_for("promote"))["Statement"] for a in s["Action"]}
    called = rec.actions("promote")
    assert {"ec2:CopyImage", "ec2:CreateTags", "ec2:DescribeSnapshots"} <= called
    assert [a for a in called if not any(fnmatch.fnmatch(a, g) for g in granted)] == []
