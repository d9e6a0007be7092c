"""`invoke release --plan` changes nothing anywhere: it never starts or seeds the local stack."""

from __future__ import annotations

import pytest

from tests.integration.bakes import Project
from toolkit.local import seed, stack
from toolkit.local.environment import LocalEnvironment

pytestmark = pytest.mark.integration


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def test_plan_does_not_start_a_stopped_stack(tmp_path):
    project = Project(tmp_path / "project", tmp_path / "state")
    result = project.invoke("release", "--plan")
    assert result.returncode == 1
    assert error_lines(result) == [
        "error: the local stack is not running, and this command changes nothing, so it does not start it"
    ]
    assert "invoke local.up" in result.stderr
    assert stack.status(stack.Stack(tmp_path / "state", tmp_path / "cache"))["running"] is False
    assert not (tmp_path / "state" / "local" / "stack.json").exists()


def test_plan_does_not_seed_the_release_side(tmp_path):
    st = stack.Stack(tmp_path / "state", tmp_path / "state")
    url = stack.up(st, "us-east-1")  # the base seed only: no load balancer yet
    try:
        project = Project(tmp_path / "project", st.state_dir)
        aws = LocalEnvironment(region="us-east-1", endpoint=url)
        result = project.invoke("release", "--plan", "--ami", seed.base_ami(aws), "--allow-unverified")
        assert result.returncode == 1
        assert error_lines(result) == ["error: load balancer 'web' does not exist in us-east-1"]
        elbv2 = aws.client("elbv2")
        assert elbv2.describe_load_balancers()["LoadBalancers"] == []
        assert elbv2.describe_target_groups()["TargetGroups"] == []
    finally:
        stack.down(st)
