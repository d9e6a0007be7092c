"""The bake's steps on the build host, in one process: provision, image tests, seal.

Packer runs this as the template's one ``shell-local`` provisioner, after it
can reach the build host: ``python -m toolkit.bake.steps --env ENV --image NAME
--bake-dir DIR --host HOST --port PORT --user USER --key KEYFILE``. One
process instead of one per step saves two Python starts and their imports per
bake; each step still reports its own phase, and a failing step stops the
rest (``toolkit.bake.step``).
"""

from __future__ import annotations

import sys

from toolkit.bake import image_tests, provision, seal, step

STEPS = (("provision", provision.run_step), ("verify", image_tests.run_step), ("seal", seal.run_step))


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``python -m toolkit.bake.steps``."""
    return step.run_steps(STEPS, argv, "python -m toolkit.bake.steps")


if __name__ == "__main__":
    sys.exit(main())
