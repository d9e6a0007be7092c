"""Plan a bake: gather the facts, then decide purely.

``gather`` does all the I/O a plan needs (Packer's version, the rendered
template, the resolved source AMI, the git commit, the digest of every input
file, the clock); ``plan_bake`` turns those facts into a ``BakePlan`` without
touching anything, so the same facts always give the same plan and the plan
is tested as a table. The pipeline (``toolkit.bake.pipeline``) carries it out.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
import secrets
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit import __version__, lineage
from toolkit.bake import inputs, source
from toolkit.config import Config
from toolkit.errors import ConfigError
from toolkit.packer import render
from toolkit.packer import run as packer

VAR_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RENDERING = threading.Lock()


@dataclass(frozen=True)
class BakeFacts:
    """What the world says before a bake of one image."""

    image: str
    packer_version: tuple[int, ...]
    template: str  # the rendered HCL text
    source_ami: str  # the parent's AMI, or the base image's resolved source
    parent_ami: str | None
    git_sha: str
    files: dict[str, str]  # input file (relative to the project) -> sha256
    now: dt.datetime
    token: str = "0000"  # a random suffix that keeps bake ids unique
    toolkit_version: str = __version__
    extra_vars: dict[str, str] = field(default_factory=dict)  # `invoke bake --var KEY=VALUE`
    app: source.Resolved | None = None  # the app source, pinned (a commit or a digest)


@dataclass(frozen=True)
class BakePlan:
    """Everything decided before Packer runs."""

    image: str
    bake_id: str
    bake_dir: Path
    template: Path  # where the bake writes its own copy of the template
    template_text: str = field(repr=False)
    source_ami: str
    parent_ami: str | None
    inputs_hash: str
    inputs: dict[str, str]  # input name -> digest: what a later bake compares to say why it rebakes
    git_sha: str
    built_at: str
    packer_version: tuple[int, ...]
    extra_vars: dict[str, str] = field(default_factory=dict)
    app: source.Resolved | None = None

    def to_dict(self) -> dict:
        """The plan as plain data (``--plan --json``)."""
        data = dataclasses.asdict(self)
        data.pop("template_text")
        return json.loads(json.dumps(data, default=str))


def plan_bake(facts: BakeFacts, config: Config, state_dir: Path) -> BakePlan:
    """The bake of ``facts.image``: its id, folder, template and inputs hash. Pure."""
    image = config.image(facts.image)
    bake_id = f"{image.name}-{facts.now:%Y%m%d-%H%M%S}-{facts.token}"
    bake_dir = state_dir / "bakes" / bake_id
    digests = inputs.digests(
        config, image, facts.template, facts.source_ami, facts.parent_ami or "", facts.toolkit_version, facts.files
    )
    if facts.extra_vars:
        digests["vars"] = hashlib.sha256(json.dumps(facts.extra_vars, sort_keys=True).encode()).hexdigest()
    if facts.app is not None:
        digests["app"] = facts.app.pin  # the commit or content, never the checkout's path
    return BakePlan(
        image=image.name,
        bake_id=bake_id,
        bake_dir=bake_dir,
        template=bake_dir / f"{image.name}.pkr.hcl",
        template_text=facts.template,
        source_ami=facts.source_ami,
        parent_ami=facts.parent_ami,
        inputs_hash=inputs.combine(digests),
        inputs=digests,
        git_sha=facts.git_sha,
        built_at=facts.now.isoformat().replace("+00:00", "Z"),
        packer_version=facts.packer_version,
        extra_vars=dict(facts.extra_vars),
        app=facts.app,
    )


def parse_vars(pairs: list[str]) -> dict[str, str]:
    """``["KEY=VALUE", ...]`` from ``--var`` flags as a dict; ConfigError naming the first bad one."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not VAR_RE.match(key):
            raise ConfigError(
                f"--var {pair!r} is not KEY=VALUE with a variable name as KEY",
                "write it like --var app_version=1.2.3 (letters, digits and '_'; secrets go in RODEO_SECRET_<NAME>)",
            )
        out[key] = value
    return out


def gather(
    config: Config,
    aws: Any,
    image_name: str,
    state_dir: Path,
    parent_ami: str | None = None,
    extra_vars: dict[str, str] | None = None,
    app: source.Resolved | None = None,
) -> BakeFacts:
    """Read what a plan of ``image_name`` needs. Writes nothing but the render cache.

    ``app`` is the image's app source, resolved by the caller first
    (``source.resolve``), so a bad source fails before a parent bakes.
    """
    image = config.image(image_name)
    version = packer.version()
    return BakeFacts(
        image=image.name,
        packer_version=version,
        template=rendered(config, image.name, version, state_dir / "render-cache"),
        source_ami=parent_ami or lineage.resolve_source(aws, image),
        parent_ami=parent_ami,
        git_sha=git_sha(config.root),
        files=inputs.file_digests(config, image),
        now=dt.datetime.now(dt.timezone.utc).replace(microsecond=0),
        token=secrets.token_hex(2),
        extra_vars=dict(extra_vars or {}),
        app=app,
    )


def rendered(config: Config, image_name: str, version: tuple[int, ...], cache: Path) -> str:
    """The template's text, remembered in ``cache``: it depends only on the image's name,
    the Packer version and the renderer (python-hcl2 takes ~0.2 s a template)."""
    has_app = config.image(image_name).app_source is not None  # app sources add tags to the template
    key = hashlib.sha256(f"{image_name}|{version}|{has_app}|".encode() + render.renderer_digest().encode()).hexdigest()[
        :24
    ]
    path = cache / f"{image_name}-{key}.pkr.hcl"
    try:
        return path.read_text()
    except OSError:
        pass
    with _RENDERING:  # python-hcl2's parser is shared: one render at a time when bakes run in parallel
        text = render.render(config, image_name, version)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{secrets.token_hex(4)}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return text


def git_sha(root: Path) -> str:
    """HEAD's commit, with ``-dirty`` when the work tree has changes; ``unknown`` outside git."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=source.GIT_TIMEOUT,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=source.GIT_TIMEOUT,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha
