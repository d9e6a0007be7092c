"""Runs the bake's steps (provision, image tests, seal) here, each reaching the build host over SSH.

The steps run on this machine, in one process (one Python start, not three),
started for Packer's ``shell-local`` provisioner: ``python -m
toolkit.bake.ssh_steps --env ENV --image NAME --bake-dir DIR --host HOST
--port PORT --user USER --key KEYFILE``. Each
step can also run alone, with the same flags (``python -m toolkit.bake.seal
...``). A step tells Rodeo how it goes with progress events on its stdout
(``toolkit.progress``): that it began, what it did, or why it failed. A
step that fails also leaves ``<bake-dir>/failure.json`` with its reason, since
Packer itself only reports "exit code 1"; the steps after it do not run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Callable, Sequence

from toolkit import progress, secrets
from toolkit.errors import RodeoError
from toolkit.hosts.ssh import SshHost

Step = Callable[[argparse.Namespace, SshHost, dict[str, str]], str]


def parse_args(argv: list[str], prog: str) -> argparse.Namespace:
    """The flags Packer's shell-local provisioners pass to each step."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--env", required=True)
    parser.add_argument("--image", required=True)
    parser.add_argument("--bake-dir", required=True, type=Path)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument("--user", required=True)
    parser.add_argument("--key", required=True, type=Path)
    return parser.parse_args(argv)


def write_failure(bake_dir: Path, phase: str, exc: RodeoError, secret_values: dict[str, str] | None = None) -> None:
    """Leave the reason for the bake to report, with every secret value redacted."""
    record = {
        "phase": phase,
        "message": secrets.redact(exc.message, secret_values or {}),
        "hint": secrets.redact(exc.hint, secret_values or {}),
    }
    (bake_dir / "failure.json").write_text(json.dumps(record) + "\n")


def main(phase: str, step: Step, argv: list[str] | None, module: str) -> int:
    """Run one ``step`` (``python -m MODULE``) with Packer's flags: ``run_steps`` with one step."""
    return run_steps([(phase, step)], argv, f"python -m {module}")


def run_steps(steps: Sequence[tuple[str, Step]], argv: list[str] | None, prog: str) -> int:
    """Run ``steps`` (phase name, step) in order with Packer's flags, the secrets taken out of the environment first.

    Each step returns a summary of what it did. A RodeoError leaves ``failure.json``
    and exits 1 before the next step. Both are progress events too.
    """
    args = parse_args(sys.argv[1:] if argv is None else argv, prog)
    values = secrets.take(os.environ)  # before anything (ansible-runner) copies the environment to disk
    host = SshHost(args.host, args.port, args.user, args.key)
    for phase, step in steps:
        progress.emit(progress.Phase(phase))
        try:
            summary = step(args, host, values)
        except RodeoError as exc:
            write_failure(args.bake_dir, phase, exc, values)
            progress.emit(progress.Failed(phase, secrets.redact(exc.message, values), secrets.redact(exc.hint, values)))
            return 1
        progress.emit(progress.Done(phase, secrets.redact(summary, values)))
    return 0
