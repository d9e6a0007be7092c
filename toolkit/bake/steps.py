"""The bake's steps on the build host, in one process: provision, image tests, seal.

The bake starts them with Packer and Packer's one ``shell-local`` provisioner
hands them the build host once it can reach it (``toolkit.bake.handoff``); run
alone, the flags are ``python -m toolkit.bake.steps --env ENV --image NAME
--bake-dir DIR --host HOST --port PORT --user USER --key KEYFILE``. One
process instead of one per step saves two Python starts and their imports per
bake; each step still reports its own phase, and a failing step stops the
rest (``toolkit.bake.step``).
"""

from __future__ import annotations

import sys

from toolkit.bake import image_tests, provision, seal, step

STEPS = (("provision", provision.run_step), ("verify", image_tests.run_step), ("seal", seal.run_step))


def prepare() -> None:
    """Import what the steps load only when they run (ansible-runner, pytest and testinfra), ahead of the host (``toolkit.bake.handoff``)."""
    import ansible_runner  # noqa: F401
    import pytest  # noqa: F401
    import testinfra.plugin  # noqa: F401


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``python -m toolkit.bake.steps``."""
    return step.run_steps(STEPS, argv, "python -m toolkit.bake.steps")


if __name__ == "__main__":
    sys.exit(main())
