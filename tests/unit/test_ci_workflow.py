"""The CI workflow cannot run here: check its shape, its AWS login and that every task it calls exists."""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

import pytest
import yaml

from toolkit import config

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "bake-and-release.yml"
AWS_JOBS = ("bake", "verify", "release", "review-up", "review-down", "review-prune")
REVIEW_JOBS = ("review-up", "review-down", "review-prune")


@pytest.fixture(scope="module")
def flow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


@pytest.fixture(scope="module")
def ns():
    """tasks.py's collection, loaded from the project root as invoke would."""
    spec = importlib.util.spec_from_file_location("rodeo_tasks_under_test", ROOT / "tasks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ns


def runs(job: dict) -> list[str]:
    return [step["run"] for step in job.get("steps", []) if "run" in step]


def invocations(flow: dict) -> list[list[str]]:
    """Every ``invoke TASK --flags...`` command line in the workflow's run steps."""
    found = []
    for job in flow["jobs"].values():
        for script in runs(job):
            for line in script.splitlines():
                match = re.search(r"(?:^|[\s/])invoke\s+(.*?)(?:\s*\||$)", line)
                if match:
                    found.append(shlex.split(match.group(1)))
    return found


def test_triggers_push_to_main_and_pull_requests(flow):
    triggers = flow.get("on", flow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert triggers["push"]["branches"] == ["main"] and "pull_request" in triggers
    # A closed pull request is an event too (its review app goes); the nightly run prunes.
    assert set(triggers["pull_request"]["types"]) == {"opened", "synchronize", "reopened", "closed"}
    assert triggers["schedule"][0]["cron"]


def test_jobs_chain_test_bake_verify_release(flow):
    jobs = flow["jobs"]
    assert set(jobs) == {"test", "bake", "verify", "release", *REVIEW_JOBS}
    assert "needs" not in jobs["test"] and any("make test" in r for r in runs(jobs["test"]))
    assert "github.event.action != 'closed'" in jobs["test"]["if"]  # nothing to test in a closed pull request
    assert jobs["bake"]["needs"] == "test"
    assert jobs["verify"]["needs"] == "bake"
    assert set(jobs["release"]["needs"]) == {"bake", "verify"}
    # Pull requests run only the tests: bake (and so everything after it) only on a push to main.
    assert "github.event_name == 'push'" in jobs["bake"]["if"] and "refs/heads/main" in jobs["bake"]["if"]


def test_aws_jobs_log_in_through_oidc(flow):
    for name in AWS_JOBS:
        job = flow["jobs"][name]
        assert job["permissions"] == {"id-token": "write", "contents": "read"}, name
        (login,) = [s for s in job["steps"] if s.get("uses", "").startswith("aws-actions/configure-aws-credentials@")]
        assert login["with"]["role-to-assume"] == "${{ secrets.AWS_ROLE_ARN }}"
        assert "aws-access-key-id" not in login["with"]
    assert flow["permissions"] == {"contents": "read"}
    assert "permissions" not in flow["jobs"]["test"]


def test_region_matches_the_staging_environment(flow):
    assert flow["env"]["AWS_REGION"] == config.load("staging", ROOT).region
    assert flow["env"]["RODEO_ENV"] == "staging"


def test_bake_output_feeds_verify_and_release(flow):
    jobs = flow["jobs"]
    assert jobs["bake"]["outputs"]["ami"] == "${{ steps.bake.outputs.ami }}"
    (bake,) = [s for s in jobs["bake"]["steps"] if s.get("id") == "bake"]
    assert "--json" in bake["run"] and 'ami=$ami" >> "$GITHUB_OUTPUT"' in bake["run"]
    for name in ("verify", "release"):
        (step,) = [s for s in jobs[name]["steps"] if f"invoke {name}" in s.get("run", "")]
        assert step["env"]["AMI"] == "${{ needs.bake.outputs.ami }}" and '--ami "$AMI"' in step["run"]
    (upload,) = [s for s in jobs["verify"]["steps"] if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert upload["with"]["path"] == "report.xml" and upload["if"] == "always()"


def test_release_waits_for_approval_and_never_races(flow):
    job = flow["jobs"]["release"]
    assert job["environment"] == "staging"
    assert job["concurrency"]["group"] and job["concurrency"]["cancel-in-progress"] is False


def test_pull_requests_of_this_repository_get_a_review_app_until_they_close(flow):
    jobs = flow["jobs"]
    up, down, prune = (jobs[name] for name in REVIEW_JOBS)
    assert up["needs"] == "test"  # tests first, as the release
    for job, action in ((up, "!= 'closed'"), (down, "== 'closed'")):
        assert f"github.event.action {action}" in job["if"] and "github.event_name == 'pull_request'" in job["if"]
        assert "github.event.pull_request.head.repo.full_name == github.repository" in job["if"]  # no fork's
        assert job["concurrency"] == {
            "group": "rodeo-review-pr-${{ github.event.number }}",
            "cancel-in-progress": False,
        }
    (made,) = [s for s in up["steps"] if s.get("id") == "up"]
    assert (
        '--name "pr-$PR" --ref "$SHA"' in made["run"]
        and made["env"]["SHA"] == "${{ github.event.pull_request.head.sha }}"
    )
    assert up["outputs"]["url"] == "${{ steps.up.outputs.url }}" and "GITHUB_STEP_SUMMARY" in made["run"]
    assert any('review.down --env "$RODEO_ENV" "pr-$PR"' in r for r in runs(down))
    assert prune["if"] == "github.event_name == 'schedule'" and any("--idle-days 7" in r for r in runs(prune))


def test_every_invoked_task_and_flag_exists(flow, ns):
    calls = invocations(flow)
    assert [c[0] for c in calls] == ["bake", "verify", "release", "review.up", "review.down", "review.prune"]
    for name, *args in calls:
        assert name in ns.task_names, f"invoke {name}: no such task (have {sorted(ns.task_names)})"
        flags = {n for arg in ns[name].get_arguments() for n in arg.names}
        for arg in args:
            if arg.startswith("--"):
                assert arg[2:].replace("-", "_") in flags or arg[2:] in flags, f"invoke {name} has no flag {arg}"
