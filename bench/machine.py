"""How fast this machine is at what the suite spends its CPU on: Python, fresh memory, new processes.

Run: python3 bench/machine.py [--rounds 3]

The suite's cost moved by 2.5 times between two days on the same code (the
crash tests: 0.66 user-s per test one morning, 1.66 the next day), while a
pure Python loop moved by 13%. The suite starts thousands of processes
(Python, Ansible, cloud-init in each boot), each touching fresh memory; a
virtual machine whose every first touch of a page is a fault into the host
pays for that, and a loop does not show it. This prints, per round:

- ``loop``: 30 million additions in one Python process (seconds of CPU);
- ``fault``: microseconds per page fault while touching 256 MiB of fresh
  anonymous memory (zeroing a page is well under a microsecond on bare metal);
- ``spawn``: milliseconds per start of ``/bin/true``, and of ``python3 -c
  "import json"``.

Run it beside a suite's figures to tell a slower machine from slower code.
The load average is printed before and after.
"""

from __future__ import annotations

import argparse
import mmap
import os
import resource
import subprocess
import sys
import time

PAGE = mmap.PAGESIZE
FRESH = 256 * 1024 * 1024


def loop() -> float:
    """CPU seconds of 30 million additions."""
    start, x = time.process_time(), 0
    for i in range(30_000_000):
        x += i
    return time.process_time() - start


def fault() -> float:
    """Microseconds per minor page fault over FRESH bytes of new anonymous memory."""
    before, start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
    memory = mmap.mmap(-1, FRESH)
    for offset in range(0, FRESH, PAGE):
        memory[offset] = 1
    took = time.perf_counter() - start
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    memory.close()
    return took / max(faults, 1) * 1e6


def spawn(argv: list[str], times: int) -> float:
    """Milliseconds per run of ``argv`` to its end."""
    start = time.perf_counter()
    for _ in range(times):
        subprocess.run(argv, check=True)
    return (time.perf_counter() - start) / times * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"python3 bench/machine.py --rounds {args.rounds}")
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    for n in range(1, args.rounds + 1):
        print(
            f"round {n}: loop {loop():.2f} CPU-s, fault {fault():.2f} us/page, "
            f"spawn /bin/true {spawn(['/bin/true'], 50):.1f} ms, "
            f"python3 -c 'import json' {spawn([sys.executable, '-c', 'import json'], 10):.0f} ms"
        )
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
