"""A Procfile and the runtime files, read as Rodeo's app role needs them: tables, no host."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolkit import config
from toolkit.bake import inputs, procfile
from toolkit.bake.source import SourceError

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    "text, processes, release",
    [
        ("web: gunicorn app:app --bind 0.0.0.0:$PORT\n", [("web", "gunicorn app:app --bind 0.0.0.0:$PORT")], None),
        (
            "# comment\n\nweb: python app.py\nworker:   python w.py --q 'a b'\n",
            [("web", "python app.py"), ("worker", "python w.py --q 'a b'")],
            None,
        ),
        ("release: python manage.py migrate\nweb: bin/web\n", [("web", "bin/web")], "python manage.py migrate"),
        ("web:bin/web\r\nclock: bin/clock\r\n", [("web", "bin/web"), ("clock", "bin/clock")], None),
        ("web: echo a: b\n", [("web", "echo a: b")], None),
    ],
)
def test_a_procfile_is_parsed(text, processes, release):
    parsed = procfile.parse(text)
    assert list(parsed.processes) == processes
    assert parsed.release == release


@pytest.mark.parametrize(
    "text, says",
    [
        ("web python app.py\n", "Procfile:1: 'web python app.py' is not 'name: command'"),
        ("web: a\nweb: b\n", "Procfile:2: process type 'web' is given twice"),
        ("web:\n", "Procfile:1: process type 'web' has no command"),
        ("# only a comment\n", "Procfile: names no process type"),
        ("release: migrate\n", "Procfile: names no process type"),
        ("we b: x\n", "Procfile:1: 'we b: x' is not 'name: command'"),
    ],
)
def test_a_bad_procfile_is_one_error_naming_the_line(text, says):
    with pytest.raises(SourceError) as err:
        procfile.parse(text)
    assert err.value.message == says


@pytest.mark.parametrize(
    "files, expected",
    [
        ({"requirements.txt": "gunicorn\n"}, ("python", "requirements", "requirements.txt", False)),
        ({"pyproject.toml": "[project]\n", "package.json": "{}"}, ("python", "project", "pyproject.toml", False)),
        ({"requirements.txt": "", "pyproject.toml": ""}, ("python", "requirements", "requirements.txt", False)),
        ({"package.json": '{"dependencies": {"express": "^4"}}'}, ("node", "npm", "package.json", True)),
        ({"package.json": '{"name": "x"}'}, ("node", "npm", "package.json", False)),
        ({}, ("none", "none", None, False)),
    ],
)
def test_the_runtime_comes_from_the_usual_files(files, expected):
    found = procfile.runtime(files)
    assert (found.name, found.install, found.file, found.node_dependencies) == expected


def test_a_broken_package_json_is_named():
    with pytest.raises(SourceError) as err:
        procfile.runtime({"package.json": "{"})
    assert err.value.message == "package.json: not valid JSON"


def test_read_needs_a_procfile(tmp_path):
    (tmp_path / "requirements.txt").write_text("flask\n")
    with pytest.raises(SourceError) as err:
        procfile.read(tmp_path)
    assert err.value.message == "the app source has no Procfile, so Rodeo's app role has nothing to run"


def test_the_example_app_reads_as_the_role_takes_it():
    app = procfile.read(ROOT / "examples/procfile-app")
    assert app.variables() == {
        "rodeo_procfile": {
            "processes": [
                {"name": "web", "command": "gunicorn --bind 0.0.0.0:$PORT --workers 2 --access-logfile - app:app"},
                {"name": "worker", "command": "python worker.py"},
            ],
            "release": "python -c \"print('release phase: nothing to migrate')\"",
        },
        "rodeo_runtime": {
            "name": "python",
            "install": "requirements",
            "file": "requirements.txt",
            "node_dependencies": False,
        },
    }


def _project(tmp_path: Path, app_yml: str) -> Path:
    (tmp_path / "inventories/dev").mkdir(parents=True)
    (tmp_path / "inventories/dev/rodeo.yml").write_text(
        "app: web\nregion: us-east-1\nimages:\n  base:\n    source_ami: ami-12345678\n    playbook: playbooks/base.yml\n"
        "    tests: tests/image/test_base.py\n  app:\n    parent: base\n" + app_yml
    )
    for rel in (
        "playbooks/base.yml",
        "tests/image/test_base.py",
        "playbooks/procfile.yml",
        "tests/image/test_procfile.py",
        "own.yml",
        "own.py",
    ):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text((ROOT / rel).read_text() if (ROOT / rel).is_file() else "- hosts: all\n")
    return tmp_path


@pytest.mark.parametrize(
    "app_yml, playbook, tests, uses_role",
    [
        ("    app_source: {git: ../shop}\n", "playbooks/procfile.yml", "tests/image/test_procfile.py", True),
        ("    app_source: {dir: shop}\n    tests: own.py\n", "playbooks/procfile.yml", "own.py", True),
        ("    app_source: {dir: shop}\n    playbook: own.yml\n    tests: own.py\n", "own.yml", "own.py", False),
    ],
)
def test_an_app_source_without_a_playbook_gets_rodeos_app_role(tmp_path, app_yml, playbook, tests, uses_role):
    image = config.load("dev", _project(tmp_path, app_yml)).image("app")
    assert (str(image.playbook), str(image.tests), image.procfile) == (playbook, tests, uses_role)


@pytest.mark.parametrize(
    "app_yml, says",
    [
        ("    tests: own.py\n", "images.app.playbook: required key is missing"),
        ("    app_source: {dir: shop}\n    playbook: own.yml\n", "images.app.tests: required key is missing"),
    ],
)
def test_a_playbook_is_required_without_an_app_source(tmp_path, app_yml, says):
    with pytest.raises(config.ConfigError) as err:
        config.load("dev", _project(tmp_path, app_yml))
    assert err.value.message == f"inventories/dev/rodeo.yml: {says}"


def test_the_role_and_its_tests_are_inputs_of_a_procfile_image():
    cfg = config.load("local", ROOT)
    image = config.Image(
        name="app",
        parent="base",
        app_source=config.AppSource(dir="examples/procfile-app"),
        playbook=config.PROCFILE_PLAYBOOK,
        tests=config.PROCFILE_TESTS,
    )
    names = set(inputs.file_digests(cfg, image))
    role = {str(p.relative_to(ROOT)) for p in (ROOT / "playbooks/roles/procfile").rglob("*") if p.is_file()}
    assert role and role | {"playbooks/procfile.yml", "tests/image/test_procfile.py"} <= names
    assert not any(n.startswith("playbooks/roles/webapp/") for n in names)


def test_a_release_line_longer_than_an_ami_tag_holds_is_refused():
    """The AMI records the release: line in a tag (256 characters at most): refused before any build instance boots."""
    assert procfile.parse("web: w\nrelease: " + "x" * 256 + "\n").release == "x" * 256
    with pytest.raises(SourceError) as err:
        procfile.parse("web: w\nrelease: " + "x" * 257 + "\n")
    assert err.value.message == (
        "Procfile:2: the release command is 257 characters; the image records it in an AMI tag, which holds at most 256"
    )
    assert "bin/release" in err.value.hint
