"""Load ``inventories/<env>/rodeo.yml`` once into frozen dataclasses.

The file is checked against the dataclasses below: unknown keys (with a
"did you mean"), wrong types, missing required keys and missing files are one
``ConfigError`` naming the file, the key and the fix. Nothing else in Rodeo
reads rodeo.yml; the ``Config`` is passed down.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from toolkit.errors import ConfigError

NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,38}$")
REGION_RE = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
AMI_RE = re.compile(r"^ami-[0-9a-f]{8,17}$")
STACKS = ("local", "aws")
# Packer 1.6.6's amazon-ebs ssh_interface values Rodeo supports (session_manager: see _check_image).
SSH_INTERFACES = ("public_ip", "private_ip", "public_dns", "private_dns")
ANSIBLE_STRATEGIES = ("mitogen", "linear")
# Rodeo's own playbook and image tests for an image whose app source holds a Procfile and which names no playbook.
PROCFILE_PLAYBOOK = Path("playbooks/procfile.yml")
PROCFILE_TESTS = Path("tests/image/test_procfile.py")


@dataclass(frozen=True)
class AmiFilter:
    """Find the newest AMI whose name matches ``name`` among ``owners``."""

    name: str
    owners: tuple[str, ...] = ("self",)


@dataclass(frozen=True)
class AppSource:
    """Where an image's app code comes from: exactly one of ``git``, ``dir`` or ``archive``.

    ``git`` is a repository URL or a path (relative to the project) with a
    ``ref`` (branch, tag or commit); ``dir`` a folder; ``archive`` a .tar.gz,
    .tar or .zip (path or https URL) with its ``sha256``. ``version_file``
    names a file of the source whose first line is the app's version.
    """

    git: str | None = None
    ref: str = "HEAD"
    dir: str | None = None
    archive: str | None = None
    sha256: str | None = None
    version_file: str | None = None

    @property
    def kind(self) -> str:
        """``git``, ``dir`` or ``archive``."""
        return "git" if self.git is not None else "dir" if self.dir is not None else "archive"

    @property
    def location(self) -> str:
        """The repository, folder or archive, as written in rodeo.yml."""
        return str(self.git or self.dir or self.archive)


@dataclass(frozen=True)
class Image:
    """One image to bake: its playbook, its tests and where it starts from."""

    name: str
    # Left out for an image with an app_source: Rodeo's app role bakes its Procfile (toolkit.bake.procfile).
    playbook: Path | None = None
    tests: Path | None = None
    source_ami: AmiFilter | str | None = None
    parent: str | None = None
    instance_type: str = "t3.micro"
    ssh_username: str = "admin"
    volume_size_gb: int = 8
    app_source: AppSource | None = None  # the app's code, an input of the bake (toolkit.bake.source)
    ansible_strategy: str = "mitogen"  # how Ansible runs the playbook: mitogen (faster) or linear (plain)
    # How Packer reaches the build instance over SSH (one of SSH_INTERFACES), and whether the instance gets a
    # public IP (unset: yes for public_ip/public_dns, else the subnet's default). See toolkit.packer.render.
    ssh_interface: str = "public_ip"
    associate_public_ip_address: bool | None = None

    @property
    def procfile(self) -> bool:
        """True when Rodeo's own app role bakes this image from its app source's Procfile (no playbook given)."""
        return self.playbook == PROCFILE_PLAYBOOK

    @property
    def public_address(self) -> bool:
        """True when the build instance asks for a public IP: explicitly, or because Packer connects to one."""
        if self.associate_public_ip_address is not None:
            return self.associate_public_ip_address
        return self.ssh_interface.startswith("public_")


@dataclass(frozen=True)
class Capacity:
    """Instance counts of a slot's Auto Scaling group while it is active."""

    min: int = 2
    max: int = 4
    desired: int = 2


@dataclass(frozen=True)
class SmokeCheck:
    """GETs the new slot must answer with 2xx, through a test listener on ``port``, before it takes traffic."""

    path: str = "/health"
    port: int = 8080  # the load balancer's test listener (Rodeo points it at the new slot only)
    timeout_seconds: int = 5
    requests: int = 5


@dataclass(frozen=True)
class LatencyJudging:
    """How the canary analysis judges response times (``toolkit.canary.judge``)."""

    # The canary fails when its median response time is more than this share above the baseline's (0.2: +20%) ...
    tolerance: float = 0.2
    # ... and more than this many milliseconds above it (a shift nobody notices is no failure; 0: any).
    floor_ms: float = 0.0
    outliers: str = "keep"  # keep, or remove: drop each slot's far-out values (3 IQR beyond its quartiles) first


@dataclass(frozen=True)
class ErrorJudging:
    """How the canary analysis judges the share of 5xx answers."""

    tolerance: float = 0.001  # the canary fails when its 5xx ratio is more than this above the baseline's (0.1 point)


@dataclass(frozen=True)
class JudgedMetric:
    """A CloudWatch metric of the team's, per slot (its target group, or its Auto Scaling group), judged like latency."""

    name: str
    namespace: str
    metric: str
    statistic: str = "Average"  # Average, Sum, Minimum, Maximum, SampleCount or a percentile (p99, p99.9)
    dimension: str = (
        "TargetGroup"  # TargetGroup (with LoadBalancer) or AutoScalingGroupName: what tells the slots apart
    )
    period: int = 60  # seconds per datapoint: 60 or more for standard metrics; 1, 5, 10 or 30 for high-resolution ones
    tolerance: float = 0.1  # relative, as latency's: the canary's median datapoint may be this share worse
    worse: str = "higher"  # higher or lower: which way is bad


@dataclass(frozen=True)
class Analysis:
    """Canary analysis: at each weight step, the new slot judged against the old one (``toolkit.canary``)."""

    enabled: bool = False
    metrics: tuple[str | JudgedMetric, ...] = ("latency", "errors")
    confidence: float = 0.98  # a difference counts when a test is this sure of it (p-value below 1 - confidence)
    min_samples: int = 50  # per slot and metric; fewer: "not enough data"
    latency: LatencyJudging = field(default_factory=LatencyJudging)
    errors: ErrorJudging = field(default_factory=ErrorJudging)
    on_marginal: str = (
        "continue"  # continue, rollback, or wait (up to wait_seconds for a clearer verdict, then continue)
    )
    on_insufficient: str = "continue"  # continue or rollback, once wait_seconds have passed without enough data
    wait_seconds: int = 0  # how long past the step's pause to keep watching for more data


@dataclass(frozen=True)
class RegionWave:
    """One region of a release in waves (``release.regions``), with what is that region's own: ids differ per region."""

    region: str
    subnets: tuple[str, ...] = ()  # where its slot groups launch; empty: its load balancer's subnets
    security_groups: tuple[str, ...] = ()  # its instances' groups; empty: its VPC's default group
    alarms: tuple[str, ...] | None = None  # its alarms' names; None: release.alarms


@dataclass(frozen=True)
class Release:
    """How ``invoke release`` moves traffic: slots, steps and gates."""

    load_balancer: str
    slots: dict[str, str]
    image: str = "app"
    # application: an ALB, traffic moved by listener weights (steps). classic: a Classic ELB, which cannot
    # weight: the release rotates (the new slot's group joins the ELB, then the old one leaves, draining).
    load_balancer_type: str = "application"
    listener_port: int = 80
    capacity: Capacity = field(default_factory=Capacity)
    steps: tuple[int, ...] = (10, 50, 100)
    pause_seconds: int = 60
    alarms: tuple[str, ...] = ()
    health_timeout_seconds: int = 600
    keep_old_slot_warm: bool = False
    instance_type: str = "t3.micro"
    smoke_check: SmokeCheck | None = None
    # Where the slot groups launch instances; empty: the load balancer's subnets.
    subnets: tuple[str, ...] = ()
    # Security groups of the instances (launch template); empty: the VPC's default.
    security_groups: tuple[str, ...] = ()
    # The instances' IAM instance profile (its role: `invoke iam-policy --for instance`); how they read
    # their config vars and ship their logs. Made by your infrastructure code, like the load balancer.
    instance_profile: str | None = None
    # The release phase: a shell command run once per release on a one-off instance of the new AMI with the
    # release's config version, before any traffic moves (database migrations); non-zero or a timeout stops the release.
    release_command: str | None = None
    release_timeout_seconds: int = 600
    analysis: Analysis = field(default_factory=Analysis)  # canary analysis at each weight step
    # Regions in waves (toolkit.release.waves): released one after another, each behind its own gates; a region's
    # entry is its name, or {region, subnets, security_groups, alarms}. Empty: `region:` alone.
    regions: tuple[str | RegionWave, ...] = ()
    # A one-box wave first: the first step's share goes to one instance of the new AMI, and the rest of the new
    # slot starts only once that step's watch has passed (in the first region of the waves).
    one_box: bool = False


@dataclass(frozen=True)
class Notify:
    """Where Rodeo says what happened (bakes, releases, config changes); see ``toolkit.notify``.

    A webhook is an http(s) URL that takes Slack-compatible JSON, or
    ``${NAME}``: the URL is read from environment variable NAME when a message
    is sent (webhook URLs carry their secret; keep them out of git).
    """

    webhooks: tuple[str, ...] = ()
    sns_topic: str | None = None  # an SNS topic ARN
    timeout_seconds: int = 5  # per webhook call; a slow or failing one is reported, never fatal


# The only retention periods CloudWatch Logs accepts (PutRetentionPolicy), in days.
RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)


@dataclass(frozen=True)
class Logs:
    """The instances' logs in CloudWatch Logs (group ``/rodeo/<app>/<env>``)."""

    retention_days: int = 30


@dataclass(frozen=True)
class Schedule:
    """A recurring scheduled action of the slot holding traffic: at ``cron`` set the group's sizes (at least one)."""

    name: str
    cron: str  # minute hour day-of-month month day-of-week (toolkit.cron)
    min: int | None = None
    max: int | None = None
    desired: int | None = None
    time_zone: str | None = None  # default: scaling.time_zone


@dataclass(frozen=True)
class TargetTracking:
    """A target tracking policy of the slot holding traffic: keep ``metric`` near ``target``."""

    name: str
    metric: str  # cpu (average CPU %, 1-100) or requests_per_target (ALB requests per target per minute)
    target: int


@dataclass(frozen=True)
class Scaling:
    """``scaling:``: schedules and target tracking, kept on whichever slot holds traffic under stable names."""

    time_zone: str = "Etc/UTC"  # IANA name; the schedules' default
    schedules: tuple[Schedule, ...] = ()
    target_tracking: tuple[TargetTracking, ...] = ()


@dataclass(frozen=True)
class Review:
    """``review:``: review apps (``invoke review.up``), each on its own host name under ``domain``.

    Review app NAME answers at ``NAME.<domain>`` through the release's load
    balancer and listener (a rule on that host name); on AWS a wildcard DNS
    record ``*.<domain>`` pointing at the load balancer is the team's
    infrastructure code's, like the load balancer itself.
    """

    domain: str
    instance_type: str | None = None  # default: release.instance_type


@dataclass(frozen=True)
class Config:
    """One environment's settings, as read from its rodeo.yml."""

    app: str
    region: str
    images: dict[str, Image]
    stack: str = "aws"
    profile: str | None = None
    copy_to_regions: tuple[str, ...] = ()
    encrypt_boot: bool = True
    subnet_id: str | None = None
    secrets: tuple[str, ...] = ()  # names; values only from RODEO_SECRET_<NAME>
    release: Release | None = None
    notify: Notify | None = None
    logs: Logs = field(default_factory=Logs)
    scaling: Scaling | None = None
    review: Review | None = None
    # Filled in by load(), not read from the file.
    home_region: str = ""  # `region:`, also in the copy a release in waves makes for each other region (regions.py)
    env: str = ""
    root: Path = Path(".")
    path: Path = Path("rodeo.yml")

    @property
    def inventory_dir(self) -> Path:
        """The environment's folder: rodeo.yml, Ansible hosts and group_vars."""
        return self.path.parent

    @property
    def shown_path(self) -> str:
        """rodeo.yml's path as messages name it (relative to the project)."""
        return _rel(self.path, self.root)

    @property
    def config_region(self) -> str:
        """Where config vars live (SSM parameters, config versions): ``region:``, in every region of a release in waves."""
        return self.home_region or self.region

    @property
    def is_local(self) -> bool:
        """True when this environment runs on the local stack (moto + sandbox)."""
        return self.stack == "local"

    def image(self, name: str) -> Image:
        """The image called ``name``, or a ConfigError listing the valid names."""
        if name not in self.images:
            raise ConfigError(
                f"{self.shown_path}: no image named {name!r}",
                f"choose one of: {', '.join(sorted(self.images))}",
            )
        return self.images[name]

    def lineage(self, name: str) -> list[Image]:
        """The image and its parents, root first (base, ..., name)."""
        chain = [self.image(name)]
        while chain[0].parent:
            chain.insert(0, self.image(chain[0].parent))
        return chain


# Fields load() fills in, never read from the file (an image's name is its key).
_DERIVED: dict[type, tuple[str, ...]] = {Config: ("home_region", "env", "root", "path")}


def environments(root: Path) -> list[str]:
    """The environments that have an ``inventories/<env>/rodeo.yml``."""
    return sorted(p.parent.name for p in (root / "inventories").glob("*/rodeo.yml"))


def load(env: str = "local", root: Path | str = ".") -> Config:
    """Read and check ``inventories/<env>/rodeo.yml`` under ``root``."""
    root = Path(root).resolve()
    if not NAME_RE.match(env):
        raise ConfigError(f"--env {env!r} is not a valid environment name", _env_hint(root))
    path = root / "inventories" / env / "rodeo.yml"
    if not path.is_file():
        raise ConfigError(f"no environment {env!r}: {_rel(path, root)} does not exist", _env_hint(root))
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{_rel(path, root)}: not UTF-8 text (byte {exc.start})", "save the file as UTF-8") from None
    except _DuplicateKey as exc:
        raise ConfigError(
            f"{_rel(path, root)}: duplicate key {exc.args[0]!r} at line {exc.args[1]}",
            "keep one of them: YAML would silently use the last",
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(
            f"{_rel(path, root)}: not valid YAML{where}", "fix the syntax (indentation, colons, quotes)"
        ) from None
    shown = _rel(path, root)
    if not isinstance(data, dict):
        raise ConfigError(
            f"{shown}: must be a mapping of settings, got {_kind(data)}", "start from inventories/local/rodeo.yml"
        )
    images = data.get("images")
    if isinstance(images, dict):
        for key, value in images.items():
            if isinstance(value, dict) and "name" in value:
                raise ConfigError(
                    f"{shown}: images.{key}.name: unknown key",
                    "an image's name is its key under images:; remove 'name:'",
                )
        data = dict(data, images={k: dict(v, name=k) if isinstance(v, dict) else v for k, v in images.items()})
    config = _build(Config, data, shown, "")
    if config.release and config.release.load_balancer_type == "classic" and "steps" not in data["release"]:
        config = dataclasses.replace(config, release=dataclasses.replace(config.release, steps=CLASSIC_STEPS))
    config = dataclasses.replace(
        config,
        home_region=config.region,
        env=env,
        root=root,
        path=path,
        images={k: _defaults(v, shown) for k, v in config.images.items()},
    )
    _check(config, shown)
    return config


class _DuplicateKey(Exception):
    """A mapping names the same key twice (args: key, line)."""


class _StrictLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses duplicate keys instead of keeping the last."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise _DuplicateKey(key, key_node.start_mark.line + 1)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _defaults(image: Image, file: str) -> Image:
    """An image with an app source and no playbook gets Rodeo's app role (and its tests, unless it names its own)."""
    if image.playbook is None and image.app_source is None:
        raise ConfigError(
            f"{file}: images.{image.name}.playbook: required key is missing",
            "add 'playbook:' (and 'tests:'), or an app_source holding a Procfile for Rodeo's own app role",
        )
    if image.playbook is None:
        return dataclasses.replace(image, playbook=PROCFILE_PLAYBOOK, tests=image.tests or PROCFILE_TESTS)
    if image.tests is None:
        raise ConfigError(
            f"{file}: images.{image.name}.tests: required key is missing",
            "add 'tests:' naming the image's testinfra tests",
        )
    return image


def _env_hint(root: Path) -> str:
    envs = environments(root)
    return f"choose one of: {', '.join(envs)}" if envs else "create inventories/<env>/rodeo.yml"


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _kind(value: Any) -> str:
    return {type(None): "nothing (empty)", list: "a list", str: "a string", dict: "a mapping"}.get(
        type(value), type(value).__name__
    )


def _build(cls: type, data: Any, file: str, key: str) -> Any:
    """Make dataclass ``cls`` from ``data``, checking keys and types."""
    if not isinstance(data, dict):
        raise ConfigError(
            f"{file}: {key or 'top level'}: expected a mapping, got {_kind(data)}",
            "see inventories/local/rodeo.yml for the shape",
        )
    hints = typing.get_type_hints(cls)
    derived = _DERIVED.get(cls, ())
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in derived}
    allowed = [n for n in fields if n != "name"]
    for name in data:
        if name not in fields:
            close = difflib.get_close_matches(str(name), allowed, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"valid keys: {', '.join(allowed)}"
            raise ConfigError(f"{file}: {_join(key, name)}: unknown key", hint)
    values = {}
    for name, f in fields.items():
        if name in data:
            values[name] = _coerce(hints[name], data[name], file, _join(key, name))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(
                f"{file}: {_join(key, name)}: required key is missing", f"add '{name}:' under {key or 'the top level'}"
            )
    return cls(**values)


def _join(key: str, name: Any) -> str:
    return f"{key}.{name}" if key else str(name)


def _coerce(hint: Any, value: Any, file: str, key: str) -> Any:
    """Check ``value`` against type ``hint``; return it in its frozen form."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                return _coerce(option, value, file, key)
            except ConfigError as exc:
                # The option of the value's own shape explains best what is wrong.
                shaped = isinstance(value, dict) == (
                    dataclasses.is_dataclass(option) or typing.get_origin(option) is dict
                )
                errors.insert(0 if shaped else len(errors), exc)
        raise errors[0]
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, file, key)
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(
                f"{file}: {key}: expected a list, got {_kind(value)}", "write it as [a, b] or as '- item' lines"
            )
        (item,) = typing.get_args(hint)[:1]
        return tuple(_coerce(item, v, file, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(
                f"{file}: {key}: expected a mapping, got {_kind(value)}", "write it as 'name: value' lines"
            )
        _, item = typing.get_args(hint)
        return {str(k): _coerce(item, v, file, _join(key, k)) for k, v in value.items()}
    if hint is Path:
        return Path(_coerce(str, value, file, key))
    expected = {str: "a string", int: "a whole number", bool: "true or false", float: "a number"}[hint]
    if hint is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{file}: {key}: expected {expected}, got {value!r}", "write a number without quotes")
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{file}: {key}: expected {expected}, got {value!r}", "write a number without quotes")
        return float(value)
    if not isinstance(value, hint):
        raise ConfigError(f"{file}: {key}: expected {expected}, got {_kind(value)} {value!r}", "fix the value's type")
    return value


def _check(config: Config, file: str) -> None:
    """Checks that span keys: names, regions, files, parents, release steps."""
    if not NAME_RE.match(config.app):
        raise ConfigError(
            f"{file}: app: {config.app!r} is not a valid name",
            "use lowercase letters, digits and '-', starting with a letter",
        )
    if config.stack not in STACKS:
        raise ConfigError(f"{file}: stack: {config.stack!r} is not known", f"choose one of: {', '.join(STACKS)}")
    known = _known_regions()
    for key, region in [("region", config.region)] + [
        (f"copy_to_regions[{i}]", r) for i, r in enumerate(config.copy_to_regions)
    ]:
        if not REGION_RE.match(region) or (known and region not in known):
            close = difflib.get_close_matches(region, sorted(known), n=2)
            hint = (
                f"did you mean {' or '.join(repr(c) for c in close)}?"
                if close
                else "write it like us-east-1 or eu-west-2"
            )
            raise ConfigError(f"{file}: {key}: {region!r} is not an AWS region", hint)
    if not config.images:
        raise ConfigError(f"{file}: images: no image is defined", "add at least one image under 'images:'")
    for i, name in enumerate(config.secrets):
        if not re.match(r"^[a-z][a-z0-9_]{0,63}$", name):
            raise ConfigError(
                f"{file}: secrets[{i}]: {name!r} is not a valid variable name",
                "use lowercase letters, digits and '_' (the value comes from RODEO_SECRET_<NAME>)",
            )
    for image in config.images.values():
        _check_image(config, image, file)
    if config.release:
        _check_release(config, config.release, file)
    if config.notify:
        _check_notify(config.notify, file)
    if config.logs.retention_days not in RETENTION_DAYS:
        days = config.logs.retention_days
        below, above = [d for d in RETENTION_DAYS if d < days][-1:], [d for d in RETENTION_DAYS if d > days][:1]
        near = below + above
        raise ConfigError(
            f"{file}: logs.retention_days: {days} is not a retention CloudWatch Logs accepts",
            f"choose one of {', '.join(map(str, RETENTION_DAYS))} (nearest: {' or '.join(map(str, near))})",
        )
    if config.scaling:
        _check_scaling(config, config.scaling, file)
    if config.review:
        _check_review(config, config.review, file)


def _known_regions() -> set[str]:
    """Every region botocore's bundled partition data knows (all partitions); no network call."""
    import botocore

    try:
        data = json.loads((Path(botocore.__file__).parent / "data" / "partitions.json").read_text())
        return {r for part in data["partitions"] for r in part.get("regions", {})}
    except (OSError, ValueError, KeyError):
        return set()  # an unknown botocore layout: the pattern check alone


def _check_image(config: Config, image: Image, file: str) -> None:
    key = f"images.{image.name}"
    if not NAME_RE.match(image.name):
        raise ConfigError(
            f"{file}: {key}: {image.name!r} is not a valid image name",
            "use lowercase letters, digits and '-', starting with a letter",
        )
    for attr in ("playbook", "tests"):
        path = (config.root / getattr(image, attr)).resolve()
        if not path.is_relative_to(config.root):
            raise ConfigError(
                f"{file}: {key}.{attr}: {getattr(image, attr)} is outside the project",
                "keep playbooks and tests inside the project folder",
            )
        if path.is_dir():
            raise ConfigError(
                f"{file}: {key}.{attr}: {getattr(image, attr)} is a directory, not a file",
                f"name the {attr} file itself",
            )
        if not path.is_file():
            raise ConfigError(
                f"{file}: {key}.{attr}: {getattr(image, attr)} does not exist",
                "fix the path (it is relative to the project root)",
            )
    if (image.parent is None) == (image.source_ami is None):
        raise ConfigError(
            f"{file}: {key}: set exactly one of 'parent' or 'source_ami'",
            "a base image names its source_ami; a layered one names its parent",
        )
    if image.parent is not None and image.parent not in config.images:
        raise ConfigError(
            f"{file}: {key}.parent: no image named {image.parent!r}",
            f"choose one of: {', '.join(sorted(config.images))}",
        )
    if isinstance(image.source_ami, str) and not AMI_RE.match(image.source_ami):
        raise ConfigError(
            f"{file}: {key}.source_ami: {image.source_ami!r} is not an AMI id",
            "write an id like ami-0abc1234 or a filter {name: ..., owners: [...]}",
        )
    if not re.match(r"^[a-z_][a-z0-9_-]{0,31}$", image.ssh_username):
        raise ConfigError(
            f"{file}: {key}.ssh_username: {image.ssh_username!r} is not a user name",
            "use a Linux user name like admin or ubuntu",
        )
    if not re.match(r"^[a-z0-9-]+\.[a-z0-9-]+$", image.instance_type):
        raise ConfigError(
            f"{file}: {key}.instance_type: {image.instance_type!r} is not an instance type", "write it like t3.micro"
        )
    if image.volume_size_gb < 1:
        raise ConfigError(f"{file}: {key}.volume_size_gb: must be at least 1", "give the root volume size in GiB")
    if image.app_source is not None:
        _check_app_source(image.app_source, file, f"{key}.app_source")
    if image.ssh_interface not in SSH_INTERFACES:
        why = (
            " (Debian's AMIs carry no SSM agent; Packer needs the session-manager-plugin and an instance profile)"
            if image.ssh_interface == "session_manager"
            else ""
        )
        raise ConfigError(
            f"{file}: {key}.ssh_interface: {image.ssh_interface!r} is not supported{why}",
            f"choose one of: {', '.join(SSH_INTERFACES)} (private_*: Packer runs where it reaches the subnet, e.g. CI in the VPC)",
        )
    if image.ansible_strategy not in ANSIBLE_STRATEGIES:
        raise ConfigError(
            f"{file}: {key}.ansible_strategy: {image.ansible_strategy!r} is not known",
            f"choose one of: {', '.join(ANSIBLE_STRATEGIES)} (linear is plain Ansible)",
        )
    seen, name = set(), image.name
    while name:
        if name in seen:
            raise ConfigError(
                f"{file}: {key}.parent: images form a loop ({' -> '.join(seen)})",
                "make the chain of parents end at an image with a source_ami",
            )
        seen.add(name)
        name = config.images[name].parent if name in config.images else None


def _check_app_source(source: AppSource, file: str, key: str) -> None:
    given = [k for k in ("git", "dir", "archive") if getattr(source, k) is not None]
    if len(given) != 1:
        raise ConfigError(
            f"{file}: {key}: set exactly one of 'git', 'dir' or 'archive'"
            + (f" (found {', '.join(given)})" if given else ""),
            "git: a repository URL or path with a ref; dir: a folder; archive: a file or https URL with its sha256",
        )
    if not source.location.strip():
        raise ConfigError(f"{file}: {key}.{given[0]}: is empty", "name the repository, folder or archive")
    if source.ref != "HEAD" and source.git is None:
        raise ConfigError(f"{file}: {key}.ref: only a git source has a ref", "remove 'ref:' or use 'git:'")
    if not source.ref.strip() or source.ref.startswith("-"):
        raise ConfigError(f"{file}: {key}.ref: {source.ref!r} is not a git ref", "name a branch, a tag or a commit")
    if source.archive is not None and not re.match(r"^[0-9a-f]{64}$", source.sha256 or ""):
        raise ConfigError(
            f"{file}: {key}.sha256: an archive needs its SHA-256 (64 hex digits)",
            f"add sha256: (sha256sum {source.archive})",
        )
    if source.sha256 is not None and source.archive is None:
        raise ConfigError(
            f"{file}: {key}.sha256: only an archive source has a sha256", "remove 'sha256:' or use 'archive:'"
        )
    if source.version_file is not None and (
        source.version_file.startswith("/") or ".." in Path(source.version_file).parts
    ):
        raise ConfigError(
            f"{file}: {key}.version_file: {source.version_file!r} must be a path inside the source",
            "write it like VERSION",
        )


LOAD_BALANCER_TYPES = ("application", "classic")
# A Classic ELB's rotation as steps: 50 is "both slots' groups attached" (each instance InService gets its
# share; the new ones only once they pass the ELB's check), 100 "the old group detached" (draining).
CLASSIC_STEPS = (50, 100)


def _check_release(config: Config, release: Release, file: str) -> None:
    if release.load_balancer_type not in LOAD_BALANCER_TYPES:
        raise ConfigError(
            f"{file}: release.load_balancer_type: {release.load_balancer_type!r} is not one of {', '.join(LOAD_BALANCER_TYPES)}",
            "application for an ALB (the default), classic for a Classic Load Balancer",
        )
    if release.load_balancer_type == "classic":
        _check_classic(config, release, file)
    if release.regions or release.one_box:
        _check_waves(config, release, file)
    if release.image not in config.images:
        raise ConfigError(
            f"{file}: release.image: no image named {release.image!r}",
            f"choose one of: {', '.join(sorted(config.images))}",
        )
    if sorted(release.slots) != ["blue", "green"]:
        raise ConfigError(
            f"{file}: release.slots: must name exactly 'blue' and 'green'",
            "write slots: {blue: <target group>, green: <target group>}",
        )
    if release.slots["blue"] == release.slots["green"]:
        raise ConfigError(
            f"{file}: release.slots: blue and green both name {release.slots['blue']!r}",
            "give each slot its own target group",
        )
    check = release.smoke_check
    if check is not None:
        if not 1 <= check.port <= 65535:
            raise ConfigError(
                f"{file}: release.smoke_check.port: {check.port} is not a port", "give a port between 1 and 65535"
            )
        if not check.path.startswith("/"):
            raise ConfigError(
                f"{file}: release.smoke_check.path: {check.path!r} must start with '/'", "write it like /health"
            )
        if check.timeout_seconds < 1:
            raise ConfigError(
                f"{file}: release.smoke_check.timeout_seconds: must be at least 1", "give a number of seconds"
            )
        if not 1 <= check.requests <= 100:
            raise ConfigError(
                f"{file}: release.smoke_check.requests: {check.requests} must be between 1 and 100",
                "a few requests are enough",
            )
        if check.port == release.listener_port:
            raise ConfigError(
                f"{file}: release.smoke_check.port: {check.port} is the live listener's port",
                "give the test listener a port of its own (it sends everything to the new slot)",
            )
    cap = release.capacity
    if cap.min < 0 or cap.desired < 1 or cap.max < 1:
        raise ConfigError(
            f"{file}: release.capacity: counts must be positive (min >= 0, desired and max >= 1)",
            "fix the capacity numbers",
        )
    if not cap.min <= cap.desired <= cap.max:
        raise ConfigError(
            f"{file}: release.capacity: need min <= desired <= max, got {cap.min}/{cap.desired}/{cap.max}",
            "fix the capacity numbers",
        )
    steps = list(release.steps)
    if not steps or steps[-1] != 100 or any(not 0 < s <= 100 for s in steps) or steps != sorted(set(steps)):
        raise ConfigError(
            f"{file}: release.steps: {steps} must increase and end at 100",
            "write percentages of traffic like [10, 50, 100]",
        )
    for key in ("pause_seconds", "health_timeout_seconds"):
        if getattr(release, key) < 0:
            raise ConfigError(f"{file}: release.{key}: must not be negative", "give a number of seconds")
    if release.release_command is not None and not release.release_command.strip():
        raise ConfigError(
            f"{file}: release.release_command: is empty",
            "give a shell command (like bin/migrate), or leave the key out",
        )
    if release.release_timeout_seconds < 1:
        raise ConfigError(f"{file}: release.release_timeout_seconds: must be at least 1", "give a number of seconds")
    if not 1 <= release.listener_port <= 65535:
        raise ConfigError(
            f"{file}: release.listener_port: {release.listener_port} is not a port", "give a port between 1 and 65535"
        )
    if release.instance_profile is not None and not re.match(r"^[\w+=,.@-]{1,128}$", release.instance_profile):
        raise ConfigError(
            f"{file}: release.instance_profile: {release.instance_profile!r} is not an instance profile name",
            "give the profile's name (letters, digits and +=,.@_-), not its ARN",
        )
    for key, prefix in (("subnets", "subnet-"), ("security_groups", "sg-")):
        for i, value in enumerate(getattr(release, key)):
            if not re.match(rf"^{prefix}[0-9a-f]{{8,17}}$", value):
                raise ConfigError(
                    f"{file}: release.{key}[{i}]: {value!r} is not an id like {prefix}0abc1234",
                    f"give {key.replace('_', ' ')} by id",
                )
    _check_analysis(release.analysis, file)


def _check_waves(config: Config, release: Release, file: str) -> None:
    """``release.regions``: known regions, each once, ``region:`` among them, the others copied to; ``one_box``'s step."""
    known = _known_regions()
    seen: list[str] = []
    for i, wave in enumerate(release.regions):
        name = wave if isinstance(wave, str) else wave.region
        if not REGION_RE.match(name) or (known and name not in known):
            close = difflib.get_close_matches(name, sorted(known), n=2)
            hint = f"did you mean {' or '.join(repr(c) for c in close)}?" if close else "write it like us-east-1"
            raise ConfigError(f"{file}: release.regions[{i}]: {name!r} is not an AWS region", hint)
        if name in seen:
            raise ConfigError(f"{file}: release.regions[{i}]: {name} is named twice", "name each region once")
        for key, prefix in (("subnets", "subnet-"), ("security_groups", "sg-")):
            for j, value in enumerate(() if isinstance(wave, str) else getattr(wave, key)):
                if not re.match(rf"^{prefix}[0-9a-f]{{8,17}}$", value):
                    raise ConfigError(
                        f"{file}: release.regions[{i}].{key}[{j}]: {value!r} is not an id like {prefix}0abc1234",
                        f"give {name}'s {key.replace('_', ' ')} by id",
                    )
        if name != config.region and name not in config.copy_to_regions:
            raise ConfigError(
                f"{file}: release.regions[{i}]: {name} has no copy of the AMIs (not in copy_to_regions)",
                f"add {name} to copy_to_regions: a bake copies its AMI there, with its tags",
            )
        seen.append(name)
    if release.regions and config.region not in seen:
        raise ConfigError(
            f"{file}: release.regions: {config.region} (region:) is not one of them",
            f"add it: the bakes and config vars live there; write regions: [{config.region}, {', '.join(seen)}]",
        )
    if release.one_box:
        if release.load_balancer_type == "classic":
            raise ConfigError(
                f"{file}: release.one_box: needs an ALB's weights (a Classic ELB sends to every InService instance alike)",
                "remove one_box",
            )
        if release.steps and release.steps[0] >= 100:
            raise ConfigError(
                f"{file}: release.one_box: the first step ({release.steps[0]}%) is the one-box's share: it must be below 100",
                "start steps with a small share, like [10, 50, 100]",
            )


def _check_classic(config: Config, release: Release, file: str) -> None:
    """What a Classic ELB cannot do: weights, a listener reaching only the new slot, per-slot data, host rules."""
    why = "a Classic ELB sends to every InService instance alike"
    if release.steps not in (CLASSIC_STEPS, (100,)):
        raise ConfigError(
            f"{file}: release.steps: {list(release.steps)} cannot be kept behind a Classic ELB: it has no weights",
            "leave steps out: the new slot's instances join the old ones (50: watched), then the old leave (100); "
            "[100] skips the watch in between",
        )
    for key, on, hint in (
        ("smoke_check", release.smoke_check is not None, "remove it: health checks and alarms gate the rotation"),
        (
            "analysis",
            release.analysis.enabled,
            "set release.analysis.enabled: false (its data tells slots apart by target group)",
        ),
    ):
        if on:
            raise ConfigError(f"{file}: release.{key}: needs an ALB ({why})", hint)
    if config.review is not None:
        raise ConfigError(f"{file}: review: review apps need an ALB's host rules ({why})", "remove review:")
    for i, policy in enumerate(config.scaling.target_tracking if config.scaling else ()):
        if policy.metric == "requests_per_target":
            raise ConfigError(
                f"{file}: scaling.target_tracking[{i}].metric: requests_per_target needs an ALB's target group",
                "track cpu behind a Classic ELB",
            )


JUDGED = ("latency", "errors")  # what the canary analysis reads from the load balancer's access logs
ON_MARGINAL = ("continue", "rollback", "wait")
ON_INSUFFICIENT = ("continue", "rollback")
STATISTIC_RE = re.compile(r"^(Average|Sum|Minimum|Maximum|SampleCount|p\d{1,2}(\.\d{1,2})?)$")
DIMENSIONS = ("TargetGroup", "AutoScalingGroupName")


def _check_analysis(analysis: Analysis, file: str) -> None:
    """``release.analysis``: the choices named, numbers in range, each metric known once."""
    key = f"{file}: release.analysis"
    for name, value, choices in (
        ("on_marginal", analysis.on_marginal, ON_MARGINAL),
        ("on_insufficient", analysis.on_insufficient, ON_INSUFFICIENT),
        ("latency.outliers", analysis.latency.outliers, ("keep", "remove")),
    ):
        if value not in choices:
            more = " (to wait for data, set wait_seconds)" if value == "wait" else ""
            raise ConfigError(f"{key}.{name}: {value!r} is not one of {', '.join(choices)}", f"choose one{more}")
    if not 0.5 <= analysis.confidence < 1:
        raise ConfigError(
            f"{key}.confidence: {analysis.confidence:g} must be at least 0.5 and below 1",
            "write it as a share: 0.98 for 98% (Kayenta's default)",
        )
    if analysis.min_samples < 5:
        raise ConfigError(
            f"{key}.min_samples: {analysis.min_samples} is too few to tell two slots apart",
            "give 5 or more (Kayenta asks for 50 data points per metric)",
        )
    for name, value in (
        ("latency.tolerance", analysis.latency.tolerance),
        ("latency.floor_ms", analysis.latency.floor_ms),
        ("errors.tolerance", analysis.errors.tolerance),
        ("wait_seconds", analysis.wait_seconds),
    ):
        if value < 0:
            raise ConfigError(f"{key}.{name}: must not be negative", "give 0 or more")
    if analysis.enabled and not analysis.metrics:
        raise ConfigError(
            f"{key}.metrics: is empty", f"name what to judge: {', '.join(JUDGED)}, or a CloudWatch metric"
        )
    seen: set[str] = set()
    for i, metric in enumerate(analysis.metrics):
        name = metric if isinstance(metric, str) else metric.name
        where = f"{key}.metrics[{i}]"
        if isinstance(metric, str) and metric not in JUDGED:
            raise ConfigError(
                f"{where}: unknown metric {metric!r}",
                f"choose {' or '.join(JUDGED)}, or name a CloudWatch metric as {{name, namespace, metric}}",
            )
        if isinstance(metric, JudgedMetric):
            _check_judged_metric(metric, where)
        if name in seen:
            raise ConfigError(f"{where}: {name!r} is named twice", "judge each metric once")
        seen.add(name)


def _check_judged_metric(metric: JudgedMetric, where: str) -> None:
    if metric.name in JUDGED or not NAME_RE.match(metric.name):
        raise ConfigError(
            f"{where}.name: {metric.name!r} is not a name of its own",
            f"use lowercase letters, digits and '-', other than {' and '.join(JUDGED)}",
        )
    if not STATISTIC_RE.match(metric.statistic):
        raise ConfigError(
            f"{where}.statistic: {metric.statistic!r} is not a CloudWatch statistic",
            "choose Average, Sum, Minimum, Maximum, SampleCount or a percentile like p99",
        )
    if metric.dimension not in DIMENSIONS:
        raise ConfigError(
            f"{where}.dimension: {metric.dimension!r} is not one of {', '.join(DIMENSIONS)}", "choose one"
        )
    if metric.period not in (1, 5, 10, 30) and (metric.period < 60 or metric.period % 60):
        raise ConfigError(
            f"{where}.period: {metric.period} is not a CloudWatch period",
            "give 1, 5, 10 or 30 (high-resolution metrics) or a multiple of 60",
        )
    if metric.worse not in ("higher", "lower"):
        raise ConfigError(f"{where}.worse: {metric.worse!r} is not higher or lower", "say which way is bad")
    if metric.tolerance < 0:
        raise ConfigError(f"{where}.tolerance: must not be negative", "give 0 or more")


# A review app's host is <name (up to 20)>.<domain>: an ALB's host-header value is at most 128 characters, with
# only letters after its last '.'.
DOMAIN_RE = re.compile(r"^(?=.{3,100}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def _check_review(config: Config, review: Review, file: str) -> None:
    if config.release is None:
        raise ConfigError(
            f"{file}: review: needs a release: section",
            "review apps run behind the release's load balancer; add release: or remove review:",
        )
    if not DOMAIN_RE.match(review.domain):
        raise ConfigError(
            f"{file}: review.domain: {review.domain!r} is not a DNS domain an ALB rule can match",
            "write lowercase labels joined by '.', ending in letters, at most 100 characters: review.example.com",
        )
    if review.instance_type is not None and not re.match(r"^[a-z0-9-]+\.[a-z0-9-]+$", review.instance_type):
        raise ConfigError(
            f"{file}: review.instance_type: {review.instance_type!r} is not an instance type", "write it like t3.micro"
        )


WEBHOOK_ENV_RE = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
SNS_TOPIC_RE = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$")


def _check_notify(notify: Notify, file: str) -> None:
    from urllib.parse import urlsplit

    for i, hook in enumerate(notify.webhooks):
        if WEBHOOK_ENV_RE.match(hook):
            continue
        parts = urlsplit(hook)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            shown = f"a {parts.scheme}: URL" if parts.scheme else repr(hook[:40])
            raise ConfigError(
                f"{file}: notify.webhooks[{i}]: {shown} is not an http(s) URL",
                "give the webhook's https:// URL, or ${NAME} to read it from an environment variable",
            )
    if notify.sns_topic is not None and not SNS_TOPIC_RE.match(notify.sns_topic):
        raise ConfigError(
            f"{file}: notify.sns_topic: {notify.sns_topic!r} is not an SNS topic ARN",
            "write it like arn:aws:sns:us-east-1:123456789012:deploys",
        )
    if not 1 <= notify.timeout_seconds <= 30:
        raise ConfigError(
            f"{file}: notify.timeout_seconds: {notify.timeout_seconds} must be between 1 and 30",
            "a few seconds: a notification never holds a release up for long",
        )


METRICS = {
    "cpu": (1, 100, "a CPU percentage from 1 to 100"),
    "requests_per_target": (1, 1_000_000, "requests per target per minute, at least 1"),
}


def _check_scaling(config: Config, scaling: Scaling, file: str) -> None:
    """Names, cron expressions, time zones, sizes and targets of ``scaling:``; pure (no AWS)."""
    from toolkit import cron

    if config.release is None:
        raise ConfigError(
            f"{file}: scaling: needs a release: section",
            "scaling applies to the release's slots; add release: or remove scaling:",
        )
    _check_zone(scaling.time_zone, file, "scaling.time_zone")
    seen: dict[str, str] = {}
    timed: list[tuple[str, str, Any]] = []  # (name, zone, parsed cron) of the schedules checked so far
    floor = config.release.capacity.min
    entries = [(f"scaling.schedules[{i}]", s) for i, s in enumerate(scaling.schedules)]
    entries += [(f"scaling.target_tracking[{i}]", t) for i, t in enumerate(scaling.target_tracking)]
    for key, entry in entries:
        if not NAME_RE.match(entry.name):
            raise ConfigError(
                f"{file}: {key}.name: {entry.name!r} is not a valid name",
                "use lowercase letters, digits and '-', starting with a letter (AWS gets rodeo-<name>)",
            )
        if entry.name in seen:
            raise ConfigError(
                f"{file}: {key}.name: {entry.name!r} is also {seen[entry.name]}",
                "give each schedule and policy its own name",
            )
        seen[entry.name] = key
    for key, s in entries[: len(scaling.schedules)]:
        try:
            parsed = cron.parse(s.cron)
        except cron.CronError as exc:
            raise ConfigError(
                f"{file}: {key}.cron: {exc}",
                'write 5 fields like "0 9 * * MON-FRI" (minute hour day-of-month month day-of-week)',
            ) from None
        if not cron.fires(parsed):
            raise ConfigError(
                f"{file}: {key}.cron: {s.cron!r} never fires (no such day)", "check the day of month against the month"
            )
        zone = s.time_zone or scaling.time_zone
        if s.time_zone is not None:
            _check_zone(s.time_zone, file, f"{key}.time_zone")
        other = next((name for name, z, c in timed if z == zone and cron.overlap(c, parsed)), None)
        if other:
            raise ConfigError(
                f"{file}: {key}.cron: {s.name!r} can fire at the same minute as {other!r}",
                "AWS refuses two scheduled actions of a group at the same time: move one by a minute, or merge them",
            )
        timed.append((s.name, zone, parsed))
        sizes = [(k, getattr(s, k)) for k in ("min", "desired", "max") if getattr(s, k) is not None]
        if not sizes:
            raise ConfigError(
                f"{file}: {key}: sets none of min, max and desired",
                "give the sizes the group takes at that time (min, max and desired)",
            )
        low = [f"{k} {v}" for k, v in sizes if v < floor]
        if low:
            raise ConfigError(
                f"{file}: {key}: {', '.join(low)} is below release.capacity.min ({floor})",
                "a slot holding traffic needs capacity.min healthy instances, or every release's health gate fails: raise it or lower capacity.min",
            )
        if [v for _, v in sizes] != sorted(v for _, v in sizes):
            raise ConfigError(
                f"{file}: {key}: need min <= desired <= max, got {', '.join(f'{k} {v}' for k, v in sizes)}",
                "fix the sizes",
            )
    for key, t in entries[len(scaling.schedules) :]:
        if t.metric not in METRICS:
            close = difflib.get_close_matches(t.metric, list(METRICS), n=1)
            raise ConfigError(
                f"{file}: {key}.metric: {t.metric!r} is not known",
                f"did you mean {close[0]!r}?" if close else f"choose one of: {', '.join(METRICS)}",
            )
        low, high, what = METRICS[t.metric]
        if not low <= t.target <= high:
            raise ConfigError(f"{file}: {key}.target: {t.target} is out of range for {t.metric}", f"give {what}")


def _check_zone(zone: str, file: str, key: str) -> None:
    """An IANA time zone name this machine's tz database knows (AWS takes IANA names)."""
    import zoneinfo

    known = zoneinfo.available_timezones()
    if zone not in known:
        close = difflib.get_close_matches(zone, sorted(known), n=2)
        hint = (
            f"did you mean {' or '.join(repr(c) for c in close)}?"
            if close
            else "write an IANA name like Europe/Berlin or America/New_York"
        )
        raise ConfigError(f"{file}: {key}: {zone!r} is not a known time zone", hint)
