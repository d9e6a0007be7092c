"""A Heroku-style app: its ``Procfile`` and its runtime, read from the app source's files (pure).

An image with an ``app_source`` and no playbook of its own is baked by
Rodeo's app role (``playbooks/procfile.yml``, role ``procfile``): one systemd
unit per process type of the Procfile (``web`` on ``$PORT`` behind the load
balancer, the others as workers) and the runtime the repository's usual
files ask for. ``read`` turns the exported source into the variables that
role takes; everything here is pure but ``read``'s file reads.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from toolkit.bake.source import SourceError

PROCFILE = "Procfile"
LINE_RE = re.compile(r"^([A-Za-z0-9_-]+)\s*:\s*(.*)$")
# The release phase's command: parsed and kept, not run by the bake (a release runs it: the AMI's rodeo:release-command tag).
RELEASE = "release"
TAG_LIMIT = 256  # characters of an EC2 tag value: the longest release: command an AMI can record
# Which files say which runtime, in the order they are looked for: (runtime, file, how its dependencies install).
RUNTIMES = (
    ("python", "requirements.txt", "requirements"),
    ("python", "pyproject.toml", "project"),
    ("node", "package.json", "npm"),
)


@dataclass(frozen=True)
class Procfile:
    """The process types of a Procfile, in its order, and its ``release:`` command (None without one)."""

    processes: tuple[tuple[str, str], ...]
    release: str | None = None

    def to_dict(self) -> dict:
        return {"processes": [{"name": n, "command": c} for n, c in self.processes], "release": self.release}


@dataclass(frozen=True)
class Runtime:
    """The language the app runs on and how its dependencies install (``none``: a shell or binary app)."""

    name: str = "none"
    install: str = "none"  # requirements, project, npm or none
    file: str | None = None  # the file that said so
    node_dependencies: bool = False  # package.json names dependencies: npm comes too

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "install": self.install,
            "file": self.file,
            "node_dependencies": self.node_dependencies,
        }


@dataclass(frozen=True)
class App:
    """What the app role needs to know of the app: its Procfile and runtime."""

    procfile: Procfile
    runtime: Runtime = field(default_factory=Runtime)

    def variables(self) -> dict:
        """The role's Ansible variables (``rodeo_procfile``, ``rodeo_runtime``)."""
        return {"rodeo_procfile": self.procfile.to_dict(), "rodeo_runtime": self.runtime.to_dict()}


def parse(text: str, where: str = PROCFILE) -> Procfile:
    """Parse a Procfile's text: ``name: command`` lines; blank lines and ``#`` comments are skipped.

    Raises SourceError naming the line for anything else, a name given twice,
    an empty command, or a file without a process.
    """
    processes: list[tuple[str, str]] = []
    release = None
    seen: set[str] = set()
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = LINE_RE.match(line)
        if match is None:
            raise SourceError(
                f"{where}:{number}: {line[:60]!r} is not 'name: command'",
                "write one process type a line, like 'web: gunicorn app:app --bind 0.0.0.0:$PORT'",
            )
        name, command = match.group(1), match.group(2).strip()
        if name in seen:
            raise SourceError(
                f"{where}:{number}: process type {name!r} is given twice", "keep one line per process type"
            )
        if not command:
            raise SourceError(
                f"{where}:{number}: process type {name!r} has no command", f"write the command after '{name}:'"
            )
        seen.add(name)
        if name == RELEASE and len(command) > TAG_LIMIT:
            raise SourceError(
                f"{where}:{number}: the release command is {len(command)} characters; the image records it in an AMI tag, "
                f"which holds at most {TAG_LIMIT}",
                "put the command in a script of the app (like bin/release) and write 'release: bin/release'",
            )
        if name == RELEASE:
            release = command
        else:
            processes.append((name, command))
    if not processes:
        raise SourceError(
            f"{where}: names no process type", "add a line like 'web: python app.py' (web serves on $PORT)"
        )
    return Procfile(tuple(processes), release)


def runtime(files: dict[str, str]) -> Runtime:
    """The runtime of an app whose top-level files are ``files`` (name -> text; only the runtime files are read).

    The first of ``RUNTIMES`` found wins; none of them: ``none`` (the Procfile runs what the image has).
    """
    for name, file, install in RUNTIMES:
        if file in files:
            deps = False
            if name == "node":
                try:
                    package = json.loads(files[file] or "{}")
                except ValueError:
                    raise SourceError(f"{file}: not valid JSON", "fix package.json (npm would refuse it too)") from None
                deps = bool(isinstance(package, dict) and package.get("dependencies"))
            return Runtime(name, install, file, deps)
    return Runtime()


def read(tree: Path) -> App:
    """The app in the exported source ``tree``: its Procfile and runtime; SourceError without a Procfile."""
    path = tree / PROCFILE
    if not path.is_file():
        raise SourceError(
            f"the app source has no {PROCFILE}, so Rodeo's app role has nothing to run",
            "add a Procfile (web: <command serving on $PORT>), or give the image a playbook of your own",
        )
    files = {file: (tree / file).read_text(errors="replace") for _, file, _ in RUNTIMES if (tree / file).is_file()}
    return App(parse(path.read_text(errors="replace")), runtime(files))
