"""``invoke run`` on the live local stack: seconds from start to exit, with the load average.

Run: .venv/bin/python bench/oneoff.py [--times 3]

Starts a live local stack for a sample project (tests/support/livebuilds.py),
releases a build of the sample app, then runs ``invoke run -- true`` and
``invoke run sh -c 'echo ...; exit 3'`` through the ``invoke`` command,
``--times`` times each, and prints one line per run: the command, its exit
code, its seconds, the 1-minute load average. Needs root (the live stack).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import livebuilds  # noqa: E402
from toolkit.hosts import sandbox  # noqa: E402
from toolkit.release import rollout  # noqa: E402
from toolkit.ui import Silent  # noqa: E402

CACHE = Path(os.environ.get("RODEO_CACHE_DIR", Path.home() / ".cache" / "rodeo"))
COMMANDS = (["run", "--", "true"], ["run", "sh", "-c", "echo to stdout; echo to stderr >&2; exit 3"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--times", type=int, default=3)
    args = parser.parse_args()
    layers = livebuilds.sample_layers(ROOT, CACHE, sandbox.ensure_rootfs(sandbox.rootfs_path(CACHE)))
    folder = Path(tempfile.mkdtemp(prefix="rodeo-bench-oneoff-"))
    try:
        with livebuilds.live_release(folder, ROOT, CACHE) as (cfg, st, aws):
            rollout.release(
                cfg, aws, ami=livebuilds.build(st, aws.client("ec2"), layers, folder, "2.0.0"), reporter=Silent()
            )
            env = dict(os.environ, RODEO_STATE_DIR=str(st.state_dir), RODEO_CACHE_DIR=str(CACHE), RODEO_LOCAL_LIVE="1")
            for words in COMMANDS:
                for _ in range(args.times):
                    started = time.monotonic()
                    done = subprocess.run(
                        [str(Path(sys.executable).parent / "invoke"), *words],
                        cwd=folder / "project",
                        env=env,
                        capture_output=True,
                        text=True,
                        timeout=600,
                    )
                    print(
                        f"invoke {' '.join(words)!s:70} exit {done.returncode}  {time.monotonic() - started:5.1f} s  "
                        f"load {os.getloadavg()[0]:.1f}",
                        flush=True,
                    )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
