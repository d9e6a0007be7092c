"""The errors Rodeo raises on purpose.

Every error a user can cause is a ``RodeoError``: one line saying what is
wrong (``message``) and one saying what to do (``hint``). ``tasks.py`` prints
both and exits non-zero; a traceback is shown only with ``--debug``.
"""

from __future__ import annotations

from typing import Any


class RodeoError(Exception):
    """Base of every error Rodeo expects a user may cause."""

    exit_code = 1

    def __init__(self, message: str, hint: str = "", result: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        # The typed result of a run that ended badly but has one to show (a rolled-back release, a failed verify).
        self.result = result

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigError(RodeoError, ValueError):
    """rodeo.yml (or a flag) is missing, malformed or names something absent."""


class PackerError(RodeoError):
    """Packer is missing, too old, or a build failed."""


class ProvisionError(RodeoError):
    """An Ansible playbook failed on the build host."""


class VerifyError(RodeoError):
    """The image's testinfra tests failed."""


class SandboxError(RodeoError):
    """The local build instance could not be made or reached."""


class StackError(RodeoError):
    """The local stack (moto server) could not be started or reached."""


class AwsError(RodeoError):
    """An AWS call failed in a way retries could not fix."""


class ImageError(RodeoError):
    """An AMI is missing, unverified, or not Rodeo's."""


class ReleaseError(RodeoError):
    """A release could not start or was rolled back."""


class LockError(ReleaseError):
    """Another release holds the environment's lock."""


class LockLost(LockError):
    """The lock this run held was taken over (``--break-lock``); the run stopped before its next change."""


class TableMissing(RodeoError):
    """The app's DynamoDB table (locks, release ledger, config versions) does not exist yet: ``invoke setup`` makes it."""


class LogsError(RodeoError):
    """The environment's logs cannot be read (no log group yet)."""


class OneOffError(RodeoError):
    """A one-off instance could not run its command (launch refused, instance gone, no end in time)."""


class PromoteError(ReleaseError):
    """``invoke promote`` refused: the same environment, nothing released in the source, an unverified or rolled-back AMI.

    ``reason`` names which refusal it is (a word, for tests and ``--json``).
    """

    def __init__(self, message: str, hint: str = "", reason: str = "refused", result: Any = None) -> None:
        super().__init__(message, hint, result)
        self.reason = reason


class ReviewError(RodeoError):
    """A review app could not be made, updated or removed."""
