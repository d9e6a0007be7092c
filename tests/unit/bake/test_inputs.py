"""The inputs hash changes with every input of an image and with nothing else."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from toolkit import config
from toolkit.bake import inputs

RODEO_YML = """
app: web
region: us-east-1
images:
  base:
    source_ami: ami-12345678
    playbook: playbooks/base.yml
    tests: tests/image/test_base.py
  app:
    parent: base
    playbook: playbooks/app.yml
    tests: tests/image/test_app.py
"""

FILES = {
    "inventories/dev/rodeo.yml": RODEO_YML,
    "inventories/dev/group_vars/all.yml": "app_port: 8080\n",
    "playbooks/base.yml": "- hosts: all\n  roles: [base]\n",
    "playbooks/app.yml": "- hosts: all\n  roles:\n    - role: webapp\n",
    "playbooks/roles/base/tasks/main.yml": "- debug: msg=base\n",
    "playbooks/roles/webapp/tasks/main.yml": "- debug: msg=app\n",
    "playbooks/roles/webapp/templates/app.py.j2": "print('hi')\n",
    "playbooks/roles/webapp/meta/main.yml": "dependencies: [python]\n",
    "playbooks/roles/python/tasks/main.yml": "- debug: msg=py\n",
    "tests/image/test_base.py": "def test_b(host): pass\n",
    "tests/image/test_app.py": "def test_a(host): pass\n",
    "README.md": "hello\n",
}


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    for rel, text in FILES.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(textwrap.dedent(text))
    return tmp_path


def app_hash(root: Path, parent: str = "ami-00000001") -> str:
    cfg = config.load("dev", root)
    return inputs.inputs_hash(cfg, cfg.image("app"), "template", parent, parent, "0.1.0")


@pytest.mark.parametrize(
    "path",
    [
        "playbooks/app.yml",
        "playbooks/roles/webapp/templates/app.py.j2",
        "playbooks/roles/python/tasks/main.yml",  # a dependency of the app's role
        "inventories/dev/group_vars/all.yml",
        "tests/image/test_app.py",
    ],
)
def test_one_byte_of_an_input_changes_the_hash(root, path):
    before = app_hash(root)
    with open(root / path, "a") as fh:
        fh.write(" ")
    assert app_hash(root) != before


@pytest.mark.parametrize(
    "path", ["README.md", "playbooks/base.yml", "playbooks/roles/base/tasks/main.yml", "tests/image/test_base.py"]
)
def test_unrelated_files_do_not(root, path):
    before = app_hash(root)
    with open(root / path, "a") as fh:
        fh.write("# changed\n")
    assert app_hash(root) == before


def test_parent_ami_and_settings_are_inputs(root):
    before = app_hash(root)
    assert app_hash(root, parent="ami-00000002") != before
    yml = root / "inventories/dev/rodeo.yml"
    yml.write_text(
        yml.read_text().replace("tests/image/test_app.py", "tests/image/test_app.py\n    instance_type: t3.large")
    )
    assert app_hash(root) != before


def test_how_ansible_runs_is_not_an_input(root):
    """Mitogen or plain Ansible bake the same image: switching does not rebake."""
    before = app_hash(root)
    yml = root / "inventories/dev/rodeo.yml"
    yml.write_text(
        yml.read_text().replace("tests/image/test_app.py", "tests/image/test_app.py\n    ansible_strategy: linear")
    )
    assert config.load("dev", root).image("app").ansible_strategy == "linear"
    assert app_hash(root) == before


def test_roles_are_found_in_plays_and_tasks(root):
    (root / "playbooks/x.yml").write_text(
        "- hosts: all\n  roles: [a, {role: b}]\n  tasks:\n    - import_role: {name: c}\n    - ansible.builtin.include_role: {name: d}\n"
    )
    assert inputs.role_names(root / "playbooks/x.yml") == ["a", "b", "c", "d"]


def base_hash(root: Path, source: str = "ami-12345678") -> str:
    cfg = config.load("dev", root)
    return inputs.inputs_hash(cfg, cfg.image("base"), "template", source, "", "0.1.0")


def test_a_newer_source_ami_rebakes_a_root_image(root):
    # The filter (debian-12-*) resolves to a newer AMI after a security update: the base must rebake.
    assert base_hash(root, "ami-00000002") != base_hash(root, "ami-00000001")


@pytest.mark.parametrize(
    "path,rebakes_base",
    [
        ("inventories/dev/group_vars/all.yml", True),
        ("inventories/dev/group_vars/base.yml", True),
        ("inventories/dev/group_vars/base/extra.yml", True),
        ("inventories/dev/group_vars/build.yml", True),
        ("inventories/dev/host_vars/build-host.yml", True),
        ("inventories/dev/group_vars/app.yml", False),
        ("inventories/dev/group_vars/app/more.yml", False),
        ("inventories/dev/group_vars/workers.yml", False),
    ],
)
def test_only_the_vars_that_apply_to_the_image_count(root, path, rebakes_base):
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("x: 1\n")
    before = base_hash(root)
    target.write_text("x: 2\n")
    assert (base_hash(root) != before) is rebakes_base


def test_the_changed_inputs_are_named():
    before = {"settings": "a", "playbooks/base.yml": "b", "source_ami": "ami-1"}
    after = {"settings": "a", "playbooks/base.yml": "c", "source_ami": "ami-2", "tests/image/test_base.py": "d"}
    assert inputs.changed(before, after) == ["playbooks/base.yml", "source_ami", "tests/image/test_base.py"]
