"""Who runs a release: the AWS principal (STS GetCallerIdentity) and the git identity of the project.

Gathered once per release and written into its ledger entry
(``invoke releases`` shows them). Either may be unknown: a release never
fails because of who it cannot name.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import botocore.exceptions

GIT_TIMEOUT = 5  # seconds for one `git config` read


def aws_caller(aws: Any) -> str | None:
    """The ARN of the principal the environment's clients sign as (no IAM right is needed for it), or None."""
    try:
        return aws.client("sts").get_caller_identity()["Arn"]
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError, KeyError):
        return None


def git_author(root: Path) -> str | None:
    """``Name <email>`` of git's user.name and user.email in ``root`` (the project), or None when git has none."""
    found = {key: _git_config(root, key) for key in ("user.name", "user.email")}
    if not any(found.values()):
        return None
    name, email = found["user.name"], found["user.email"]
    return f"{name} <{email}>" if name and email else (name or f"<{email}>")


def _git_config(root: Path, key: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "config", "--get", key], cwd=root, capture_output=True, text=True, timeout=GIT_TIMEOUT
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None
