"""The bake's steps (provision, image tests, seal) in one process here, each driving the build host over SSH.

They run here, not on the build host: the bake starts them with Packer, and
Packer's one ``shell-local`` provisioner hands them the build host's address
once it can reach it (``toolkit.bake.handoff``); Ansible, testinfra and the
seal's commands then reach the host through the bake's SSH connection. Run
alone, the flags are ``python -m toolkit.bake.ssh_steps --env ENV --image NAME
--bake-dir DIR --host HOST --port PORT --user USER --key KEYFILE``. One
process instead of one per step saves two Python starts and their imports per
bake; each step still reports its own phase, and a failing step stops the
rest (``toolkit.bake.runner``).
"""

from __future__ import annotations

import sys

from toolkit.bake import image_tests, provision, runner, seal

STEPS = (("provision", provision.run_step), ("verify", image_tests.run_step), ("seal", seal.run_step))


def prepare() -> None:
    """Import what the steps load only when they run (ansible-runner, pytest and testinfra), ahead of the host (``toolkit.bake.handoff``)."""
    import ansible_runner  # noqa: F401
    import pytest  # noqa: F401
    import testinfra.plugin  # noqa: F401


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``python -m toolkit.bake.ssh_steps``."""
    return runner.run_steps(STEPS, argv, "python -m toolkit.bake.ssh_steps")


if __name__ == "__main__":
    sys.exit(main())
