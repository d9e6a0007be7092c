"""Render an image's Packer template (``packer/<image>.pkr.hcl``) with python-hcl2.

The template is the image's shape and nothing else: everything that differs
between environments or bakes (region, source AMI, the build host, the bake
folder, lineage values) is a Packer variable, given per bake in a var file
(see ``bake_vars``). So rendering is pure and deterministic: the same config
and Packer version give the same bytes, and the committed file changes only
when the shape does.

How Packer reaches the build instance is the image's ``ssh_interface`` and
``associate_public_ip_address`` (rodeo.yml, per environment: variables).
Without them Packer 1.6.6 connects to the instance's public IP when it has
one, else its private one: in a subnet that gives no public IP, SSH times out
from outside the VPC. Rodeo's default is ``public_ip`` with a public IP asked
for, like ``invoke verify --ami``'s instance (its temporary security group
admits the caller's public address only); ``private_ip`` suits a Packer that
runs inside the VPC (that group must then admit its private address: today
``hosts/ec2.py`` gives the public one, so this needs that change). Packer 1.6.6 applies ``associate_public_ip_address`` only
with a ``subnet_id`` (hashicorp/packer#6589); without one, the default VPC's
subnets give public IPs themselves. A local build host's ``ssh_host`` wins
over both.

Packer 1.7+ needs a ``packer { required_plugins { amazon = ... } }`` block (and
``packer init``); Packer 1.6.6, which has the builder built in, rejects it.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toolkit.config import Config

if TYPE_CHECKING:
    import hcl2

AMAZON_PLUGIN = {"version": ">= 1.2.8, < 2.0.0", "source": "github.com/hashicorp/amazon"}
PLUGINS_SINCE = (1, 7, 0)
# Packer 1.6.6's builder rejects metadata_options; the release's launch template requires IMDSv2 in any case.
IMDSV2_SINCE = (1, 7, 0)
# Packer's waiters (instance running and stopped, AMI available, its encrypted copy, snapshots): the SDK's default
# gives up after 10 minutes (40 x 15 s), less than an encrypted copy of a large snapshot can take, and each wait
# ends up to 15 s after the resource is ready (7.5 s on average, four waits a bake). A look every second for one
# hour: a wait ends at most 1 s late (the local stack's encrypted copy, pending at its first look, cost 2.09 s a
# bake at 2 s, 1.07 s at 1 s: bench/bake.py), and one DescribeImages or DescribeInstances a second per bake is far
# below EC2's request rate limits (non-mutating actions: a bucket of 100, refilled 20 a second). Packer 1.6.6
# accepts the block.
AWS_POLLING = {"delay_seconds": 1, "max_attempts": 3600}
HEADER = "# Rendered by Rodeo from inventories/<env>/rodeo.yml ('invoke render'). Do not edit: changes are overwritten.\n\n"

# name -> (HCL type, default or None for "required"). Order is the file's order.
VARIABLES: dict[str, tuple[str, Any]] = {
    "app": ("string", None),
    "env": ("string", None),
    "region": ("string", None),
    "source_ami": ("string", None),
    "instance_type": ("string", "t3.micro"),
    "ssh_username": ("string", "admin"),
    "volume_size_gb": ("number", 8),
    "copy_to_regions": ("list(string)", []),
    "encrypt_boot": ("bool", True),
    "subnet_id": ("string", ""),
    "ssh_interface": ("string", "public_ip"),
    "associate_public_ip_address": ("bool", True),
    "ssh_source_cidrs": ("list(string)", None),  # the caller's address only
    # AWS's own endpoint and checks unless the environment says otherwise (toolkit.environment's packer_variables).
    "endpoint": ("string", ""),
    "skip_region_validation": ("bool", False),
    "skip_metadata_api_check": ("bool", False),
    "skip_credential_validation": ("bool", False),
    "ssh_host": ("string", ""),
    "ssh_port": ("number", 22),
    "ssh_keypair_name": ("string", None),
    "ssh_private_key_file": ("string", None),
    "python": ("string", "python3"),
    "bake_id": ("string", None),
    "bake_dir": ("string", None),
    "git_sha": ("string", None),
    "inputs_hash": ("string", None),
    "toolkit_version": ("string", None),
    "built_at": ("string", None),
}

# Only in the templates of images with an app source (their tags on the AMI and snapshots).
APP_VARIABLES: dict[str, tuple[str, Any]] = {"app_source": ("string", None), "app_commit": ("string", None), "app_version": ("string", None)}
APP_TAGS = {"rodeo:app-source": "var.app_source", "rodeo:app-commit": "var.app_commit", "rodeo:app-version": "var.app_version"}

# Only in the templates of images Rodeo's app role bakes from a Procfile: its release: line ("" for none), on the AMI and
# its snapshots, for the release phase (toolkit.release.phase; toolkit.lineage.RELEASE_COMMAND_TAG).
PROCFILE_VARIABLES: dict[str, tuple[str, Any]] = {"release_command": ("string", "")}
PROCFILE_TAGS = {"rodeo:release-command": "var.release_command"}

# Packer's one shell-local provisioner hands the build host to the bake's steps (provision, image tests, seal), already running.
HANDOFF_MODULE = "toolkit.bake.handoff"

LINEAGE_TAGS = {
    "rodeo:app": "var.app",
    "rodeo:image": None,  # the image name, a literal
    "rodeo:git-sha": "var.git_sha",
    "rodeo:source-ami": "var.source_ami",
    "rodeo:inputs-hash": "var.inputs_hash",
    "rodeo:verified": '"true"',
    "rodeo:toolkit-version": "var.toolkit_version",
    "rodeo:built-at": "var.built_at",
}


def q(value: str) -> str:
    """An HCL string literal (python-hcl2 writes strings bare)."""
    return json.dumps(value)


def needs_plugins(version: tuple[int, ...]) -> bool:
    """True when this Packer version needs ``required_plugins`` and ``packer init``."""
    return tuple(version) >= PLUGINS_SINCE


def render(config: Config, image_name: str, packer_version: tuple[int, ...]) -> str:
    """The HCL text of ``image_name``'s template for ``packer_version``."""
    import hcl2  # here, not at the top: a bake whose template is in the render cache never loads it (0.07 s)

    image = config.image(image_name)
    top = hcl2.Builder()
    if needs_plugins(packer_version):
        plugins = hcl2.Builder()
        plugins.block("required_plugins", amazon={k: q(v) for k, v in AMAZON_PLUGIN.items()})
        top.block("packer", __nested_builder__=plugins)
    has_app = image.app_source is not None
    variables = VARIABLES | (APP_VARIABLES if has_app else {}) | (PROCFILE_VARIABLES if image.procfile else {})
    for name, (kind, default) in variables.items():
        attrs: dict[str, Any] = {"type": kind}
        if default is not None:
            attrs["default"] = _literal(default)
        top.block("variable", [q(name)], **attrs)
    top.block("source", [q("amazon-ebs"), q(image.name)], __nested_builder__=_source_blocks(packer_version), **_source(image.name, has_app, image.procfile))
    top.block("build", __nested_builder__=_build_blocks(image.name), sources=[q(f"source.amazon-ebs.{image.name}")])
    return HEADER + _tidy(hcl2.dumps(top.build()))


def _literal(value: Any) -> Any:
    if isinstance(value, str):
        return q(value)
    if isinstance(value, list):
        return [_literal(v) for v in value]
    return value


def _source(name: str, has_app: bool = False, procfile: bool = False) -> dict[str, Any]:
    named = LINEAGE_TAGS | (APP_TAGS if has_app else {}) | (PROCFILE_TAGS if procfile else {})
    tags = {q(k): (v or q(name)) for k, v in named.items()}
    return {
        "ami_name": q("${var.app}-${var.bake_id}"),
        "ami_description": q(f"Rodeo image {name} of ${{var.app}} (${{var.git_sha}})"),
        "region": "var.region",
        "source_ami": "var.source_ami",
        "instance_type": "var.instance_type",
        "subnet_id": "var.subnet_id",
        "associate_public_ip_address": "var.associate_public_ip_address",
        "ami_regions": "var.copy_to_regions",
        "encrypt_boot": "var.encrypt_boot",
        "custom_endpoint_ec2": "var.endpoint",
        "skip_region_validation": "var.skip_region_validation",
        "skip_metadata_api_check": "var.skip_metadata_api_check",
        "skip_credential_validation": "var.skip_credential_validation",
        "communicator": q("ssh"),
        "ssh_interface": "var.ssh_interface",
        "ssh_username": "var.ssh_username",
        "ssh_host": "var.ssh_host",
        "ssh_port": "var.ssh_port",
        "ssh_keypair_name": "var.ssh_keypair_name",
        "ssh_private_key_file": "var.ssh_private_key_file",
        "ssh_timeout": q("10m"),
        "temporary_security_group_source_cidrs": "var.ssh_source_cidrs",
        "run_tags": {q("Name"): q("rodeo-bake-${var.bake_id}"), q("rodeo:bake"): "var.bake_id"},
        "tags": tags,
        "snapshot_tags": tags,
    }


def _source_blocks(packer_version: tuple[int, ...]) -> hcl2.Builder:
    import hcl2

    inner = hcl2.Builder()
    if tuple(packer_version) >= IMDSV2_SINCE:
        inner.block("metadata_options", http_endpoint=q("enabled"), http_tokens=q("required"), http_put_response_hop_limit=1)
    inner.block("aws_polling", **AWS_POLLING)
    inner.block(
        "launch_block_device_mappings",
        device_name=q("/dev/xvda"),
        volume_size="var.volume_size_gb",
        volume_type=q("gp3"),
        throughput=125,
        iops=3000,
        delete_on_termination=True,
    )
    return inner


def _build_blocks(name: str) -> hcl2.Builder:
    import hcl2

    inner = hcl2.Builder()
    # The steps are already running (started by the bake with Packer): this hands them the host Packer reached.
    handoff = "--bake-dir '${var.bake_dir}' --host '${build.Host}' --port '${build.Port}' --user '${build.User}'"
    inner.block("provisioner", [q("shell-local")], inline=[q(f"'${{var.python}}' -m {HANDOFF_MODULE} {handoff}")])
    inner.block("post-processor", [q("manifest")], output=q("${var.bake_dir}/manifest.json"), strip_path=True)
    return inner


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


def write(config: Config, image_name: str, packer_version: tuple[int, ...]) -> Path:
    """Render ``image_name`` to ``packer/<image>.pkr.hcl`` (``invoke render`` only); rewrite only when it changed."""
    config.image(image_name)
    path = config.root / "packer" / f"{image_name}.pkr.hcl"
    text = render(config, image_name, packer_version)
    if not path.is_file() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return path


@functools.lru_cache(maxsize=1)
def renderer_digest() -> str:
    """What the rendered text depends on besides its arguments: this file and python-hcl2's version.

    The version is read from python-hcl2's ``version.py`` without importing it.
    """
    spec = importlib.util.find_spec("hcl2")
    folder = Path(next(iter(spec.submodule_search_locations))) if spec and spec.submodule_search_locations else None
    version = (folder / "version.py").read_bytes() if folder and (folder / "version.py").is_file() else b"unknown"
    return hashlib.sha256(Path(__file__).read_bytes() + version).hexdigest()


def var_file(values: dict[str, Any]) -> str:
    """A ``.pkrvars.hcl`` text setting ``values`` (every key must be a template variable)."""
    unknown = sorted(set(values) - set(VARIABLES) - set(APP_VARIABLES) - set(PROCFILE_VARIABLES))
    if unknown:
        raise KeyError(f"not template variables: {unknown}")
    return "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items())
