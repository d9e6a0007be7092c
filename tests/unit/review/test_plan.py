"""What review.up and review.down do, given the facts: tables, no AWS."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from toolkit.review.facts import Facts, Found, GroupFact, InstanceFact, RuleFact, TemplateFact
from toolkit.review.names import Names, priority_for
from toolkit.review.plan import Want, idle, merged_refs, plan_down, plan_up, user_data
from toolkit.review.record import Record

NAMES = Names("web", "prod", "pr-7", "review.example.com")
TG = "arn:tg/rv-pr-7"
WANT = Want(ami="ami-new", instance_type="t3.micro", parent_config=3, parent_refs=("/rodeo/web/prod/GREETING:2",))
DATA = user_data(NAMES, 3, WANT.parent_refs)
RULE = RuleFact("arn:rule/1", 41234, (NAMES.host,), (TG,))
TEMPLATE = TemplateFact(2, "ami-new", DATA, "t3.micro")
CURRENT = InstanceFact("i-cur", "2", in_service=True, healthy=True)


def facts(**parts) -> Facts:
    return Facts(names=NAMES, listener="arn:listener/1", **parts)


UP = facts(
    target_group=TG, rule=RULE, template=TEMPLATE, group=GroupFact("2", 1, "2", (CURRENT,)), record=Record("pr-7")
)


def actions(plan) -> list[str]:
    return [s.action for s in plan.steps]


@pytest.mark.parametrize(
    "found,want,expected,outcome",
    [
        (
            facts(),
            WANT,
            ["create_target_group", "create_rule", "create_template", "create_group", "wait_healthy", "record"],
            "created",
        ),
        (UP, WANT, ["record"], "unchanged"),
        # A new AMI: a new template version; the group gets an instance of it beside the old one, then the old goes.
        (
            UP,
            replace(WANT, ami="ami-newer"),
            ["new_template_version", "pin_group", "wait_healthy", "terminate", "record"],
            "updated",
        ),
        # A killed run left the group pinned, the new instance up and healthy: only the old one is left to go.
        (
            replace(
                UP,
                template=replace(TEMPLATE, version=3),
                group=GroupFact("3", 2, "3", (InstanceFact("i-old", "2", True, True), replace(CURRENT, version="3"))),
            ),
            WANT,
            ["terminate", "record"],
            "updated",
        ),
        # Its instance is up but not healthy yet (a run killed in its wait): wait again, change nothing.
        (
            replace(UP, group=GroupFact("2", 1, "2", (replace(CURRENT, healthy=False),))),
            WANT,
            ["wait_healthy", "record"],
            "updated",
        ),
        # Someone scaled it to nothing: one instance again.
        (replace(UP, group=GroupFact("2", 0, "2", ())), WANT, ["pin_group", "wait_healthy", "record"], "updated"),
        # A killed run made the target group only.
        (
            facts(target_group=TG),
            WANT,
            ["create_rule", "create_template", "create_group", "wait_healthy", "record"],
            "created",
        ),
        # The rule of an old domain (rodeo.yml's review.domain changed) is pointed at the new host.
        (replace(UP, rule=replace(RULE, hosts=("pr-7.old.example.com",))), WANT, ["modify_rule", "record"], "updated"),
        (
            replace(UP, template=replace(TEMPLATE, instance_type="t3.small")),
            WANT,
            ["new_template_version", "pin_group", "wait_healthy", "terminate", "record"],
            "updated",
        ),
    ],
)
def test_up(found, want, expected, outcome):
    plan = plan_up(found, want)
    assert actions(plan) == expected
    assert plan.outcome == outcome


def test_an_unchanged_up_of_the_third_version_checks_the_group_was_pinned_to_it():
    # The template already holds what is wanted (v3), a killed run never pinned the group: pin it and replace.
    found = replace(UP, template=replace(TEMPLATE, version=3))
    plan = plan_up(found, WANT)
    assert actions(plan) == ["pin_group", "wait_healthy", "terminate", "record"]
    pin = plan.steps[0]
    assert pin.args == {"version": "3", "desired": 2} and plan.steps[2].args == {"instances": ["i-cur"]}


def test_a_new_rule_takes_a_free_priority():
    taken = frozenset({priority_for(NAMES.name, frozenset())})
    plan = plan_up(facts(taken=taken), WANT)
    rule = next(s for s in plan.steps if s.action == "create_rule")
    assert rule.args["priority"] not in taken
    assert (
        rule.line
        == f"listener rule {rule.args['priority']}: host pr-7.review.example.com -> target group {NAMES.target_group}"
    )


@pytest.mark.parametrize(
    "held,given,puts,versions",
    [
        ({}, {"GREETING": "Hi"}, ["GREETING"], {"GREETING": 1}),
        ({"GREETING": ("Hi", 4)}, {"GREETING": "Hi"}, [], {"GREETING": 4}),  # the same value: not written again
        ({"GREETING": ("Hi", 4)}, {"GREETING": "Yo"}, ["GREETING"], {"GREETING": 5}),
        ({"GREETING": ("Hi", 4)}, {}, [], {"GREETING": 4}),  # an earlier up's override stays
    ],
)
def test_overrides_are_written_once_and_take_the_parents_place(held, given, puts, versions):
    before = merged_refs(WANT.parent_refs, NAMES, {key: version for key, (_, version) in held.items()})
    found = replace(UP, overrides=held, template=replace(TEMPLATE, user_data=user_data(NAMES, 3, before)))
    plan = plan_up(found, replace(WANT, overrides=given))
    assert [s.args["key"] for s in plan.steps if s.action == "put_parameter"] == puts
    assert plan.refs == merged_refs(WANT.parent_refs, NAMES, versions)
    assert plan.refs == tuple(f"/rodeo/web/prod/review/pr-7/GREETING:{v}" for v in versions.values())
    assert ("new_template_version" in actions(plan)) == bool(puts)  # a new value is a new launch


def test_the_user_data_names_the_review_app_and_every_parameter_never_a_value():
    refs = merged_refs(("/rodeo/web/prod/A:1", "/rodeo/web/prod/B:9"), NAMES, {"B": 2})
    doc = json.loads(base64.b64decode(user_data(NAMES, 3, refs)))
    assert doc == {
        "rodeo": {
            "app": "web",
            "env": "prod",
            "review": "pr-7",
            "config_version": 3,
            "config_parameters": ["/rodeo/web/prod/A:1", "/rodeo/web/prod/review/pr-7/B:2"],
        }
    }


def test_a_plan_before_the_bake_says_the_template_takes_the_baked_ami():
    plan = plan_up(UP, replace(WANT, ami=None))
    assert plan.steps[0].line.startswith("launch template rodeo-web-prod-review-pr-7 v3: the AMI the bake makes")


@pytest.mark.parametrize(
    "found,expected",
    [
        (
            UP,
            [
                "delete_rule",
                "delete_group",
                "wait_group_gone",
                "delete_target_group",
                "delete_template",
                "delete_record",
            ],
        ),
        (facts(), []),
        # A killed down: the rule and group went already.
        (facts(target_group=TG, template=TEMPLATE), ["delete_target_group", "delete_template"]),
        (facts(overrides={"A": ("1", 1)}), ["delete_parameters"]),
    ],
)
def test_down(found, expected):
    plan = plan_down(found)
    assert actions(plan) == expected
    assert plan.outcome == ("removed" if expected else "absent")


NOW = datetime(2026, 12, 10, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "found,going",
    [
        (Found("a", Record("a", deployed_at="2026-12-09T10:00:00.000+00:00")), False),
        (Found("a", Record("a", deployed_at="2026-12-02T10:00:00.000+00:00")), True),
        (Found("a", Record("a", created_at="2026-12-01T00:00:00+00:00")), True),  # made, never finished deploying
        (Found("a", None, "2026-12-09T10:00:00Z", has_group=True), False),  # no record: its group's age
        (Found("a", None, has_rule=True), True),  # a rule left with nothing to date it
    ],
)
def test_idle(found, going):
    assert (idle([found], NOW, 7) == [found]) is going
