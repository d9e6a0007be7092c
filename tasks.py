"""Rodeo's commands. Run ``invoke --list`` to see them, ``invoke --help TASK`` for flags.

Each task parses its flags, calls one toolkit function and prints the result.
Errors a user can cause end in one line with a hint and a non-zero exit; add
``--debug`` (or set RODEO_DEBUG=1) to see the traceback instead.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path

from invoke import Collection, Exit, task

ROOT = Path(__file__).resolve().parent
STATE_DIR = Path(os.environ.get("RODEO_STATE_DIR", ROOT / ".rodeo"))
CACHE_DIR = Path(os.environ.get("RODEO_CACHE_DIR", Path.home() / ".cache" / "rodeo"))


def _fail(message: str, hint: str = "", code: int = 1) -> Exit:
    line = f"error: {message}"
    if hint:
        line += f"\n  hint: {hint}"
    print(line, file=sys.stderr)
    return Exit(code=code)


def rodeo(fn):
    """Turn Rodeo's errors into one line and an exit code, unless --debug."""

    @functools.wraps(fn)
    def wrapper(c, *args, **kwargs):
        debug = kwargs.get("debug") or os.environ.get("RODEO_DEBUG") == "1"
        from toolkit.aws.session import explain
        from toolkit.errors import RodeoError

        try:
            return fn(c, *args, **kwargs)
        except RodeoError as exc:
            if debug:
                raise
            raise _fail(exc.message, exc.hint, exc.exit_code) from None
        except KeyboardInterrupt:
            if debug:
                raise
            raise _fail("interrupted", "everything started was cleaned up; run the command again", 130) from None
        except Exception as exc:
            known = explain(exc)
            if known is None or debug:
                raise
            raise _fail(known.message, known.hint) from None

    return wrapper


def _config(env: str):
    from toolkit import config

    return config.load(env, ROOT)


def _stack():
    from toolkit.local.stack import Stack

    return Stack(state_dir=STATE_DIR, cache_dir=CACHE_DIR)


def _connect(cfg, reporter=None):
    """AWS clients for ``cfg``'s environment, and the local stack (started if needed) or None."""
    from toolkit.aws.session import for_config

    if not cfg.is_local:
        return for_config(cfg), None
    from toolkit.local import stack

    url = stack.up(_stack(), cfg.region)
    return for_config(cfg, endpoint=url), _stack()


def _reporter(json_mode: bool):
    from toolkit.ui import Reporter

    return Reporter(stderr=json_mode)


def _print_json(data: dict) -> None:
    print(json.dumps(data, sort_keys=True, default=str))


# --- bake ---------------------------------------------------------------------------


@task(
    help={
        "image": "image to bake, as named under 'images:' in rodeo.yml (default: app)",
        "env": "environment: inventories/<env>/rodeo.yml (default: local)",
        "json": "print the bake's record as one JSON object on the last line",
        "debug": "show tracebacks",
    }
)
@rodeo
def bake(c, image="app", env="local", json=False, debug=False):
    """Bake IMAGE into a verified AMI: render, packer build, Ansible, testinfra, tags."""
    from toolkit.bake import bake as run_bake

    cfg = _config(env)
    cfg.image(image)
    reporter = _reporter(json)
    aws, stack = _connect(cfg, reporter)
    record = run_bake(cfg, aws, image, STATE_DIR, stack, reporter)
    if json:
        _print_json(record)
        return
    phases = ", ".join(f"{k} {v:.1f}s" for k, v in record["phases"].items())
    print(f"\n{record['image']} baked: {', '.join(f'{r} {a}' for r, a in record['ami'].items())}")
    print(f"  {record['duration_s']:.1f}s in all ({phases})")
    print(f"  git {record['tags'].get('rodeo:git-sha', '?')[:12]}, inputs {record['tags'].get('rodeo:inputs-hash', '?')[:12]}")
    print(f"  artifacts: {record['artifacts']}")


@task(help={"image": "render only this image (default: all)", "env": "environment (default: local)", "debug": "show tracebacks"})
@rodeo
def render(c, image="", env="local", debug=False):
    """Write packer/<image>.pkr.hcl for each image (deterministic; commit the result)."""
    from toolkit.packer import render as hcl
    from toolkit.packer.run import version

    cfg = _config(env)
    names = [cfg.image(image).name] if image else sorted(cfg.images)
    packer_version = version()
    for name in names:
        path = hcl.write(cfg, name, packer_version)
        print(f"wrote {path.relative_to(ROOT)}")


# --- local stack ---------------------------------------------------------------


@task(help={"env": "environment whose region the stack seeds (default: local)", "debug": "show tracebacks"})
@rodeo
def local_up(c, env="local", debug=False):
    """Start the local stack (moto server as AWS) and seed it; prints the endpoint."""
    from toolkit.local import stack

    cfg = _config(env)
    url = stack.up(_stack(), cfg.region)
    print(f"local stack up at {url}")
    print(f"  export AWS_ENDPOINT_URL={url}")


@task(help={"debug": "show tracebacks"})
@rodeo
def local_down(c, debug=False):
    """Stop the local stack and forget its AMIs and local images."""
    from toolkit.local import stack

    stopped = stack.down(_stack())
    print("local stack stopped" if stopped else "local stack was not running")


@task(help={"json": "print one JSON object", "debug": "show tracebacks"})
@rodeo
def local_status(c, json=False, debug=False):
    """Show whether the local stack runs, its endpoint and its images."""
    from toolkit.local import stack

    info = stack.status(_stack())
    if json:
        _print_json(info)
    elif info["running"]:
        print(f"running at {info['endpoint']} (pid {info['pid']}), {len(info['images'])} local image(s)")
    else:
        print("not running (start it with: invoke local.up)")


local = Collection("local")
local.add_task(local_up, "up")
local.add_task(local_down, "down")
local.add_task(local_status, "status")

ns = Collection()
ns.add_task(bake)
ns.add_task(render)
ns.add_collection(local)
