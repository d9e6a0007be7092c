"""``--ref`` takes what ``git rev-parse`` takes in the app's repository, pinned to a commit once; git's own refusals read as one line.

Real repositories, no AWS: ``source.resolve`` (the plan) and ``source.export`` (the bake's copy of that commit).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tests.integration.bake.test_app_source import commit, git
from toolkit import config
from toolkit.bake import source
from toolkit.bake.source import SourceError
from toolkit.config import AppSource

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture()
def repo(tmp_path) -> Path:
    path = tmp_path / "app"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    return path


def resolve(where: str, ref: str, cache: Path) -> source.Resolved:
    cfg = config.load("local", ROOT)
    image = dataclasses.replace(cfg.image("app"), app_source=AppSource(git=where, ref="main"))
    return source.resolve(cfg, image, cache, ref)


def exported(where: str, resolved: source.Resolved, dest: Path, cache: Path) -> str:
    cfg = config.load("local", ROOT)
    image = dataclasses.replace(cfg.image("app"), app_source=AppSource(git=where, ref="main"))
    return (source.export(cfg, image, resolved, dest, cache).path / "hello.txt").read_text()


def test_ref_takes_what_git_rev_parse_takes_in_the_apps_repository(repo: Path, tmp_path: Path):
    one, two = commit(repo, "one"), commit(repo, "two")
    git(repo, "tag", "v1", one)
    git(repo, "checkout", "-q", "-b", "topic", one)
    topic = commit(repo, "topic")
    git(repo, "checkout", "-q", "--detach", "main")
    detached = commit(repo, "detached")  # on no branch: HEAD only
    cache = tmp_path / "cache"
    for ref, expected in [
        ("HEAD", detached),
        ("HEAD~1", two),
        ("@~2", one),
        ("main", two),
        ("main^", one),
        ("topic", topic),
        ("topic~1", one),
        ("v1", one),
        ("v1^{}", one),
        (two[:8], two),
        (two, two),
    ]:
        assert resolve(str(repo), ref, cache).commit == expected, ref
    # The commit on no branch is exported too: the mirror fetches it by its id.
    assert exported(str(repo), resolve(str(repo), "HEAD", cache), tmp_path / "out", cache) == "detached"


def test_a_url_resolves_head_relative_refs_against_the_repositorys_head(repo: Path, tmp_path: Path):
    one, two = commit(repo, "one"), commit(repo, "two")
    url = f"file://{repo}"
    cache = tmp_path / "cache"
    assert resolve(url, "HEAD~1", cache).commit == one
    assert resolve(url, "main~1", cache).commit == one
    assert exported(url, resolve(url, "HEAD~1", cache), tmp_path / "out", cache) == "one"
    assert resolve(url, "HEAD", cache).commit == two


@pytest.mark.parametrize("ref", ["no-such-branch", "HEAD~9", "--output=/tmp/x", "deadbeef"])
def test_a_ref_that_does_not_resolve_is_refused(repo: Path, tmp_path: Path, ref: str):
    commit(repo, "one")
    with pytest.raises(SourceError) as refused:
        resolve(str(repo), ref, tmp_path / "cache")
    assert refused.value.message == f"image app: ref {ref!r} does not resolve in {repo}"
    assert "git rev-parse" in refused.value.hint


def test_a_path_that_is_no_repository_says_so_in_one_sentence(tmp_path: Path):
    with pytest.raises(SourceError) as missing:
        resolve(str(tmp_path / "typo"), "main", tmp_path / "cache")
    assert missing.value.message == f"image app: app source {tmp_path / 'typo'}: no such folder ({tmp_path / 'typo'})"
    (tmp_path / "plain").mkdir()
    with pytest.raises(SourceError) as plain:
        resolve(str(tmp_path / "plain"), "main", tmp_path / "cache")
    assert (
        plain.value.message
        == f"image app: git cannot read app source {tmp_path / 'plain'}: '{tmp_path / 'plain'}' does not appear to be a git repository"
    )
