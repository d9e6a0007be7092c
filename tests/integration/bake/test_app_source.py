"""An app's own repository as a bake input: a new commit rebakes the app (only), the same commit reuses it."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.integration.bakes import Project

pytestmark = pytest.mark.integration

APP_PLAYBOOK = """\
- name: app image
  hosts: all
  gather_facts: false
  become: true
  tasks:
    - name: The app's code is installed from the source Rodeo exported
      ansible.builtin.copy:
        src: "{{ rodeo_app_dir }}/hello.txt"
        dest: /opt/hello.txt
        mode: "0644"
    - name: The version is written down
      ansible.builtin.copy:
        content: "{{ rodeo_app_version }} {{ rodeo_app_commit }}\\n"
        dest: /opt/hello.version
        mode: "0644"
"""
APP_TEST = """\
def test_the_app_is_installed(host):
    assert host.file('/opt/hello.txt').exists
"""


def git(repo: Path, *args: str) -> str:
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
        "PATH": "/usr/bin:/bin",
        "HOME": str(repo),
    }
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout.strip()


def commit(repo: Path, text: str) -> str:
    (repo / "hello.txt").write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", text)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture()
def app_repo(tmp_path) -> Path:
    repo = tmp_path / "hello-app"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    return repo


def with_git_source(project: Project, repo: Path, ref: str = "main") -> None:
    project.minimal_images()
    project.write("playbooks/app.yml", APP_PLAYBOOK)
    project.write("tests/image/test_app.py", APP_TEST)
    yml = re.sub(
        r"app_source: \{.*\}",
        f"app_source: {{git: {repo}, ref: {ref}, version_file: VERSION}}",
        project.read("inventories/local/rodeo.yml"),
    )
    assert f"git: {repo}," in yml
    project.write("inventories/local/rodeo.yml", yml)


def bake(project: Project, *args: str) -> dict:
    result = project.invoke("bake", "--json", "--image", "app", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_new_commit_rebakes_only_the_app_and_the_same_commit_reuses_it(project: Project, app_repo: Path, ec2):
    first_commit = commit(app_repo, "hello 1")
    git(app_repo, "tag", "-a", "v1.0.0", "-m", "one")
    with_git_source(project, app_repo)

    first = bake(project)
    assert first["cached"] is False
    assert first["app"] == {"source": str(app_repo), "commit": first_commit, "version": "v1.0.0"}
    amis = {
        i["ImageId"]: {t["Key"]: t["Value"] for t in i["Tags"]} for i in ec2.describe_images(Owners=["self"])["Images"]
    }
    assert amis[first["ami"]["us-east-1"]]["rodeo:app-commit"] == first_commit
    assert amis[first["ami"]["us-east-1"]]["rodeo:app-version"] == "v1.0.0"

    again = bake(project)
    assert again["cached"] is True and again["ami"] == first["ami"] and again["app"]["commit"] == first_commit

    # The same commit through another path of the repository: still the same input.
    moved = app_repo.parent / "moved-app"
    subprocess.run(["cp", "-a", str(app_repo), str(moved)], check=True)
    with_git_source(project, moved)
    assert bake(project)["ami"] == first["ami"]
    with_git_source(project, app_repo)

    second_commit = commit(app_repo, "hello 2")
    (app_repo / "VERSION").write_text("2.0.0\n")
    git(app_repo, "add", "-A")
    git(app_repo, "commit", "-q", "-m", "version file")
    third_commit = git(app_repo, "rev-parse", "HEAD")
    assert third_commit != second_commit
    second = bake(project)
    assert second["cached"] is False and second["ami"] != first["ami"]
    assert second["parent"]["cached"] is True  # base is reused: only the app rebakes
    assert f"app commit {first_commit[:7]} -> {third_commit[:7]}" in second["why"]
    assert second["app"]["version"] == "2.0.0"  # no tag on this commit: the version file

    # --ref: CI bakes the commit under test; the tag's commit is still baked, so it is reused.
    pinned = bake(project, "--ref", "v1.0.0")
    assert pinned["cached"] is True and pinned["ami"] == first["ami"]
    assert bake(project, "--ref", first_commit[:10])["ami"] == first["ami"]


def test_a_ref_that_does_not_resolve_is_one_line_and_bakes_nothing(project: Project, app_repo: Path, ec2):
    commit(app_repo, "hello")
    with_git_source(project, app_repo)
    before = project.amis(ec2)
    result = project.invoke("bake", "--image", "app", "--ref", "no-such-branch")
    assert result.returncode == 1
    assert f"error: image app: ref 'no-such-branch' does not resolve in {app_repo}" in result.stderr
    assert "hint: name a branch, a tag or a commit" in result.stderr and "Traceback" not in result.stderr
    assert project.amis(ec2) == before
