"""App sources, pure parts: pins, versions, why a bake happens, credentials kept out of tags."""

from __future__ import annotations

import pytest

from toolkit.bake import inputs, source
from toolkit.bake.source import Resolved, git_reason

C1, C2 = "3f1c2a9" + "0" * 33, "8e0d4b1" + "1" * 33


@pytest.mark.parametrize(
    "before, after, said",
    [
        ({"app": f"git:{C1}"}, {"app": f"git:{C2}"}, ["app commit 3f1c2a9 -> 8e0d4b1"]),
        ({"app": "dir:" + "a" * 64}, {"app": "dir:" + "b" * 64}, ["app source dir aaaaaaaaaaaa -> dir bbbbbbbbbbbb"]),
        ({"app": "dir:" + "a" * 64}, {"app": f"git:{C1}"}, [f"app source dir aaaaaaaaaaaa -> git {C1[:12]}"]),
        ({}, {"app": f"git:{C1}"}, ["app added"]),
        ({"playbooks/base.yml": "1"}, {"playbooks/base.yml": "2"}, ["playbooks/base.yml changed"]),
        ({"playbooks/x.yml": "1"}, {}, ["playbooks/x.yml removed"]),
        ({"source_ami": "ami-1"}, {"source_ami": "ami-2"}, ["source AMI ami-1 -> ami-2"]),
        # A layered image's source is its parent: said once, as the parent.
        (
            {"source_ami": "ami-1", "parent_ami": "ami-1"},
            {"source_ami": "ami-2", "parent_ami": "ami-2"},
            ["parent AMI ami-1 -> ami-2"],
        ),
        (
            {"settings": "1", "vars": "1"},
            {"settings": "2", "vars": "2"},
            ["the image's settings in rodeo.yml changed", "the --var values changed"],
        ),
        ({"template": "1"}, {"template": "1"}, []),
    ],
)
def test_why_a_bake_happens(before, after, said):
    assert inputs.describe(before, after) == said


@pytest.mark.parametrize(
    "resolved, version_file, files, expected",
    [
        (
            Resolved("app", "git", "r", "main", C1, C1, ("v1.2.0", "v1.10.0", "v1.9.9")),
            "VERSION",
            {"VERSION": "9.9.9\n"},
            "v1.10.0",
        ),
        (Resolved("app", "git", "r", "main", C1, C1), "VERSION", {"VERSION": "2.0.0\nnotes\n"}, "2.0.0"),
        (Resolved("app", "git", "r", "main", C1, C1), "VERSION", {}, "3f1c2a9"),
        (Resolved("app", "git", "r", "main", C1, C1), None, {"VERSION": "2.0.0"}, "3f1c2a9"),
        (Resolved("app", "dir", "d", None, None, "c" * 64), "VERSION", {"VERSION": "  \n"}, "c" * 12),
    ],
)
def test_the_version_is_a_tag_then_the_version_file_then_the_pin(tmp_path, resolved, version_file, files, expected):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert source.version(resolved, tmp_path, version_file) == expected


@pytest.mark.parametrize(
    "location, shown",
    [
        ("https://oauth2:ghp_secret@github.com/acme/app.git", "https://github.com/acme/app.git"),
        ("https://github.com/acme/app.git", "https://github.com/acme/app.git"),
        ("git@github.com:acme/app.git", "git@github.com:acme/app.git"),
        ("../app", "../app"),
    ],
)
def test_credentials_never_reach_a_tag(location, shown):
    assert source.public_location(location) == shown


def test_a_folder_digest_follows_content_and_names_not_place(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for root in (a, b):
        (root / "sub").mkdir(parents=True)
        (root / "app.py").write_text("print(1)\n")
        (root / "sub" / "x").write_text("x")
    (a / ".git").mkdir()
    (a / ".git" / "HEAD").write_text("ref: refs/heads/main\n")  # git's own files are not the app
    assert source.dir_digest(a) == source.dir_digest(b)
    (b / "sub" / "x").write_text("y")
    assert source.dir_digest(a) != source.dir_digest(b)
    (b / "sub" / "x").write_text("x")
    (b / "app.py").chmod(0o755)  # the executable bit is content
    assert source.dir_digest(a) != source.dir_digest(b)


@pytest.mark.parametrize(
    "stderr, reason",
    [
        (
            "fatal: '/x' does not appear to be a git repository\nfatal: Could not read from remote repository.\n\nPlease make sure you have the correct "
            "access rights\nand the repository exists.\n",
            "'/x' does not appear to be a git repository",
        ),
        ("error: pathspec 'x' did not match\n", "pathspec 'x' did not match"),
        ("warning: something\nit broke\n", "it broke"),
        ("", "failed"),
    ],
)
def test_gits_reason_is_its_first_fatal_line(stderr, reason):
    assert git_reason(stderr) == reason
