"""Secret variables: from the environment to Ansible, and nowhere else.

A secret is named in rodeo.yml (``secrets: [db_password]``) or simply present
as ``RODEO_SECRET_<NAME>`` in the environment; its value only ever comes from
that variable. It reaches the provision step through the environment of the
bake's steps (``toolkit.bake.handoff``; never Packer's, the template, a var
file or a flag), which hands it
to Ansible in a private file on a memory file system, deleted right after the
run. The seal step then scans the build instance and the bake's artifacts for
every value and fails the bake when one is found.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shlex
import tempfile
from pathlib import Path
from typing import Iterator, Mapping, MutableMapping
from xml.sax.saxutils import escape as xml_escape

from toolkit.errors import ConfigError

PREFIX = "RODEO_SECRET_"
# A shorter value cannot be told from chance matches when the seal step scans a
# whole root file system (binaries hold most short strings), and is too weak to be a secret.
MIN_LENGTH = 8
# Never handed to Ansible: ansible-runner writes its whole environment to its artifacts.
CREDENTIALS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")


def env_name(name: str) -> str:
    """The environment variable that holds secret ``name``."""
    return PREFIX + name.upper()


def collect(names: tuple[str, ...], environ: Mapping[str, str]) -> dict[str, str]:
    """Every secret's value: the named ones (which must be set) and any other RODEO_SECRET_*."""
    values = {key[len(PREFIX) :].lower(): value for key, value in environ.items() if key.startswith(PREFIX) and value}
    missing = [n for n in names if n not in values]
    if missing:
        raise ConfigError(
            f"secret {missing[0]} has no value",
            f"set {env_name(missing[0])} in the environment (secrets are never read from files)",
        )
    short = sorted(n for n, v in values.items() if len(v) < MIN_LENGTH)
    if short:
        raise ConfigError(
            f"secret {short[0]} is shorter than {MIN_LENGTH} characters",
            f"give {env_name(short[0])} a longer value: a short one cannot be scanned for reliably, nor kept secret",
        )
    return values


def take(environ: MutableMapping[str, str]) -> dict[str, str]:
    """Remove the secrets and AWS credentials from ``environ``; return the secrets."""
    values = collect((), environ)
    for key in [k for k in environ if k.startswith(PREFIX) or k in CREDENTIALS]:
        del environ[key]
    return values


@contextlib.contextmanager
def vars_file(values: dict[str, str]) -> Iterator[Path | None]:
    """A 0600 JSON file of the secrets for ``ansible-playbook -e @FILE``, removed afterwards."""
    if not values:
        yield None
        return
    folder = "/dev/shm" if os.path.isdir("/dev/shm") else None  # memory, not disk
    fd, name = tempfile.mkstemp(prefix="rodeo-secrets-", suffix=".json", dir=folder)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(values, fh)
        yield Path(name)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)


# How the tools a bake runs write a string: JSON with and without ASCII escapes (ansible-runner's event
# files, Ansible's own result JSON), Go's JSON (Packer: also escapes <, > and &), Python's repr (pytest's
# assertion messages), XML text and attributes (JUnit reports) and a shell word (Ansible's cmd).
ENCODINGS = {
    "json": lambda v: json.dumps(v)[1:-1],
    "json-utf8": lambda v: json.dumps(v, ensure_ascii=False)[1:-1],
    "go-json": lambda v: (
        json.dumps(v, ensure_ascii=False)[1:-1].replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    ),
    "repr": lambda v: repr(v)[1:-1],
    "xml": lambda v: xml_escape(v, {'"': "&quot;", "'": "&apos;"}),
    "xml-text": xml_escape,
    "shell": shlex.quote,
}


@functools.lru_cache(maxsize=64)  # redact runs on every line a bake prints: each value's forms are made once
def forms(value: str) -> tuple[str, ...]:
    """Every way ``value`` may be written by a tool of the bake: raw, and each encoding once or twice over
    (Ansible's result JSON inside ansible-runner's event JSON, a repr inside a JUnit report), longest first."""
    once = {encode(value) for encode in ENCODINGS.values()}
    twice = {encode(form) for form in once for encode in ENCODINGS.values()}
    return tuple(sorted({value} | once | twice, key=lambda form: (-len(form), form)))


def needles(values: dict[str, str]) -> list[tuple[str, str]]:
    """(secret name, form) for every form of every secret, longest first: what to redact or look for."""
    found = [(name, form) for name, value in values.items() if value for form in forms(value)]
    return sorted(found, key=lambda pair: (-len(pair[1]), pair))


def redact(text: str, values: dict[str, str]) -> str:
    """``text`` with every secret, in each of its ``forms``, replaced by ``[secret NAME]`` (longest first)."""
    for name, form in needles(values):
        text = text.replace(form, f"[secret {name}]")
    return text


def redact_files(folder: Path, values: dict[str, str], skip: tuple[str, ...] = ()) -> list[tuple[Path, list[str]]]:
    """Redact every secret's value in the files under ``folder``; return (file, secret names) for each that held one."""
    if not values:
        return []
    changed = []
    encoded = [(name, form.encode()) for name, form in needles(values)]
    for path, data in _files(folder, skip):
        names = sorted({name for name, form in encoded if form in data})
        if names:
            path.write_bytes(
                redact(data.decode("utf-8", errors="surrogateescape"), values).encode("utf-8", errors="surrogateescape")
            )
            changed.append((path, names))
    return changed


def find_in_files(folder: Path, values: dict[str, str], skip: tuple[str, ...] = ()) -> list[tuple[str, Path]]:
    """(secret name, file) for every file under ``folder`` holding a secret's value."""
    encoded = [(name, form.encode()) for name, form in needles(values)]
    if not encoded:
        return []
    return [
        (name, path)
        for path, data in _files(folder, skip)
        for name in sorted({n for n, form in encoded if form in data})
    ]


def _files(folder: Path, skip: tuple[str, ...]) -> Iterator[tuple[Path, bytes]]:
    """(path, bytes) of every regular file under ``folder``, sorted; a file or folder named in ``skip`` is passed over."""
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
        if skip and any(part in skip for part in path.relative_to(folder).parts):
            continue
        try:
            yield path, path.read_bytes()
        except OSError:
            continue
