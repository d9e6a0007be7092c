"""The inputs of a bake, and their hash.

An image's inputs are everything that can change what it contains: the
rendered template, the image's settings, the playbook and every file of the
roles it uses (and their dependencies), the environment's group_vars and
host_vars, the image's tests, the parent AMI and Rodeo's version. Their
SHA-256 is the ``rodeo:inputs-hash`` tag, so an unchanged input can find the
AMI it already made. Files outside this set (the README, another image's
playbook) do not change it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

from toolkit.config import Config, Image


def role_names(playbook: Path) -> list[str]:
    """Roles a playbook names in its plays' ``roles:`` and in import/include_role tasks."""
    try:
        plays = yaml.safe_load(playbook.read_text()) or []
    except (OSError, yaml.YAMLError):
        return []
    names: list[str] = []
    for play in plays if isinstance(plays, list) else []:
        if not isinstance(play, dict):
            continue
        for role in play.get("roles") or []:
            names.append(role if isinstance(role, str) else str(role.get("role") or role.get("name", "")))
        for section in ("pre_tasks", "tasks", "post_tasks"):
            for task in play.get(section) or []:
                for key in ("import_role", "include_role", "ansible.builtin.import_role", "ansible.builtin.include_role"):
                    if isinstance(task, dict) and isinstance(task.get(key), dict):
                        names.append(str(task[key].get("name", "")))
    return [n for n in names if n]


def role_files(roles_dir: Path, names: list[str]) -> list[Path]:
    """Every file of the named roles and of the roles they depend on (meta/main.yml)."""
    seen: set[str] = set()
    files: list[Path] = []
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen or not (roles_dir / name).is_dir():
            continue
        seen.add(name)
        files += sorted(p for p in (roles_dir / name).rglob("*") if p.is_file())
        meta = roles_dir / name / "meta" / "main.yml"
        if meta.is_file():
            deps = (yaml.safe_load(meta.read_text()) or {}).get("dependencies") or []
            todo += [d if isinstance(d, str) else str(d.get("role") or d.get("name", "")) for d in deps]
    return files


def files(config: Config, image: Image) -> list[Path]:
    """The files whose bytes are inputs of ``image``, sorted."""
    playbook = (config.root / image.playbook).resolve()
    found = {playbook, (config.root / image.tests).resolve()}
    found.update(role_files(playbook.parent / "roles", role_names(playbook)))
    for sub in ("group_vars", "host_vars"):
        folder = config.inventory_dir / sub
        if folder.is_dir():
            found.update(p for p in folder.rglob("*") if p.is_file())
    for extra in ("ansible.cfg", "tests/image/conftest.py"):
        if (config.root / extra).is_file():
            found.add((config.root / extra).resolve())
    return sorted(found)


def inputs_hash(config: Config, image: Image, template: str, parent_ami: str, version: str) -> str:
    """The SHA-256 of every input of a bake of ``image`` (hex)."""
    digest = hashlib.sha256()
    settings: dict[str, Any] = {
        "image": _plain(dataclasses.asdict(image)),
        "region": config.region,
        "copy_to_regions": list(config.copy_to_regions),
        "encrypt_boot": config.encrypt_boot,
        "secrets": sorted(config.secrets),  # names only: a value never leaves the environment
        "parent_ami": parent_ami,
        "toolkit_version": version,
    }
    _add(digest, "settings", json.dumps(settings, sort_keys=True).encode())
    _add(digest, "template", template.encode())
    for path in files(config, image):
        _add(digest, str(path.relative_to(config.root)), path.read_bytes())
    return digest.hexdigest()


def _add(digest: Any, name: str, data: bytes) -> None:
    digest.update(f"{name}\0{len(data)}\0".encode())
    digest.update(data)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value) if isinstance(value, Path) else value
