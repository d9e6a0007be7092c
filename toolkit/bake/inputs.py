"""The inputs of a bake, and their hash.

An image's inputs are everything that can change what it contains: the
rendered template, the image's settings, the playbook and every file of the
roles it uses (and their dependencies), the environment's group_vars and
host_vars that apply to the build host, the image's tests, the source (or
parent) AMI and Rodeo's version. Each input has a digest of its own (kept in
the bake's record, so a later bake can say which input changed). Their
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

# Image settings that change how a bake runs, not what the image holds: changing them does not rebake.
NOT_INPUTS = ("ansible_strategy",)


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
                for key in (
                    "import_role",
                    "include_role",
                    "ansible.builtin.import_role",
                    "ansible.builtin.include_role",
                ):
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


def groups(image: Image) -> tuple[str, ...]:
    """The inventory groups the build host is in (see ``provision.write_inventory``)."""
    return ("all", "build", image.name.replace("-", "_"))


def vars_files(folder: Path, names: tuple[str, ...]) -> list[Path]:
    """The files of a ``group_vars``/``host_vars`` folder that apply to ``names``: ``NAME``, ``NAME.yml`` (.yaml, .json) and ``NAME/*``."""
    found: list[Path] = []
    if not folder.is_dir():
        return found
    for name in names:
        for candidate in (name, f"{name}.yml", f"{name}.yaml", f"{name}.json"):
            path = folder / candidate
            if path.is_file():
                found.append(path)
            elif path.is_dir():
                found += [p for p in path.rglob("*") if p.is_file()]
    return found


def files(config: Config, image: Image) -> list[Path]:
    """The files whose bytes are inputs of ``image``, sorted.

    Of the environment's ``group_vars`` and ``host_vars``, only those that
    apply to the build host count: another image's group does not rebake this one.
    """
    playbook = (config.root / image.playbook).resolve()
    found = {playbook, (config.root / image.tests).resolve()}
    found.update(role_files(playbook.parent / "roles", role_names(playbook)))
    found.update(p.resolve() for p in vars_files(config.inventory_dir / "group_vars", groups(image)))
    found.update(p.resolve() for p in vars_files(config.inventory_dir / "host_vars", ("build-host",)))
    for extra in ("ansible.cfg", "tests/image/conftest.py"):
        if (config.root / extra).is_file():
            found.add((config.root / extra).resolve())
    return sorted(found)


def file_digests(config: Config, image: Image) -> dict[str, str]:
    """Each input file of ``image`` (relative to the project) -> the SHA-256 of its bytes."""
    return {
        str(path.relative_to(config.root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in files(config, image)
    }


def digests(
    config: Config,
    image: Image,
    template: str,
    source_ami: str,
    parent_ami: str,
    version: str,
    file_digests: dict[str, str],
) -> dict[str, str]:
    """Every input of a bake of ``image``, by name -> digest (pure).

    ``source_ami`` is the AMI the build starts from: the parent's, or the
    newest match of a base image's filter, so a newer source (a security
    update) rebakes the image.
    """
    shape = _plain({k: v for k, v in dataclasses.asdict(image).items() if k not in NOT_INPUTS})
    if image.app_source is not None:
        # Where the source lives is no input (its pin, the "app" input, is): a moved checkout reuses the AMI.
        shape["app_source"] = {"version_file": image.app_source.version_file}
    settings: dict[str, Any] = {
        "image": shape,
        "region": config.region,
        "copy_to_regions": list(config.copy_to_regions),
        "encrypt_boot": config.encrypt_boot,
        "secrets": sorted(config.secrets),  # names only: a value never leaves the environment
        "toolkit_version": version,
    }
    out = {
        "settings": _sha(json.dumps(settings, sort_keys=True).encode()),
        "template": _sha(template.encode()),
        "source_ami": source_ami,
        "parent_ami": parent_ami,
    }
    out.update(file_digests)
    return out


def combine(digests: dict[str, str]) -> str:
    """The inputs hash: one SHA-256 over every named digest."""
    digest = hashlib.sha256()
    for name in sorted(digests):
        _add(digest, name, digests[name].encode())
    return digest.hexdigest()


def inputs_hash(config: Config, image: Image, template: str, source_ami: str, parent_ami: str, version: str) -> str:
    """The SHA-256 of every input of a bake of ``image`` (hex), reading the files now."""
    return combine(digests(config, image, template, source_ami, parent_ami, version, file_digests(config, image)))


def changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """The inputs whose digests differ (added or removed ones too), sorted."""
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


# Inputs that are not files, as a person names them.
NAMED = {
    "settings": "the image's settings in rodeo.yml",
    "template": "the rendered template",
    "vars": "the --var values",
    "source_ami": "source AMI",
    "parent_ami": "parent AMI",
    "app": "app",
}


def describe(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Why a bake happens, one phrase per changed input (pure).

    ``playbooks/base.yml changed``, ``source AMI ami-1 -> ami-2``,
    ``app commit 3f1c2a9 -> 8e0d4b1``, ``playbooks/x.yml added``.
    """
    out = []
    names = changed(before, after)
    for name in names:
        if name == "source_ami" and "parent_ami" in names:
            continue  # a layered image's source is its parent: say it once
        old, new = before.get(name), after.get(name)
        label = NAMED.get(name, name)
        if name == "app" and old and new:
            (old_kind, _, old_pin), (new_kind, _, new_pin) = old.partition(":"), new.partition(":")
            if old_kind == new_kind == "git":
                out.append(f"app commit {old_pin[:7]} -> {new_pin[:7]}")
            else:
                out.append(f"app source {old_kind} {old_pin[:12]} -> {new_kind} {new_pin[:12]}")
        elif name in ("source_ami", "parent_ami") and old and new:
            out.append(f"{label} {old} -> {new}")
        elif old is None:
            out.append(f"{label} added")
        elif new is None:
            out.append(f"{label} removed")
        else:
            out.append(f"{label} changed")
    return out


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _add(digest: Any, name: str, data: bytes) -> None:
    digest.update(f"{name}\0{len(data)}\0".encode())
    digest.update(data)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value) if isinstance(value, Path) else value
