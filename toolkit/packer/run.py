"""Run the ``packer`` binary: find its version, ``init``, and ``build`` with live events.

``build`` reads Packer's ``-machine-readable`` stream, shows each UI line as it
comes, times the phases (boot, provision, verify, snapshot) from Packer's own
messages, keeps the whole stream as ``packer.log`` in the bake folder, and
returns the AMI ids from the manifest post-processor.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from toolkit.errors import PackerError

# Packer's say/message lines that open each phase, in order.
PHASE_MARKERS = (
    ("boot", re.compile(r"Launching a source AWS instance|Creating temporary keypair|Prevalidating")),
    ("provision", re.compile(r"Running local shell script|Provisioning with shell-local", re.I)),
    ("snapshot", re.compile(r"Stopping the source instance|Creating AMI|Creating the AMI")),
)
INTERRUPT_GRACE = 300.0
SHELL_STEPS = ("provision", "verify", "seal")  # the template's shell-local provisioners, in order
VERSION_CACHE = Path(os.environ.get("RODEO_CACHE_DIR", Path.home() / ".cache" / "rodeo")) / "versions"


@dataclass
class BuildResult:
    """What a finished ``packer build`` made."""

    amis: dict[str, str]
    phases: dict[str, float]
    log: Path
    errors: list[str] = field(default_factory=list)


def version(binary: str = "packer") -> tuple[int, ...]:
    """The installed Packer's version as a tuple; PackerError when it is missing."""
    path = shutil.which(binary)
    if path is None:
        raise PackerError("packer is not installed", "run 'make setup' (or apt-get install packer)")
    return _version_of(path)


@functools.lru_cache(maxsize=None)
def _version_of(path: str) -> tuple[int, ...]:
    # Once per binary and process: a layered bake plans every image of its lineage. And once per binary
    # (its size and mtime) across processes: `packer version` is 0.05-0.1 s of every bake, a cache hit too.
    st = os.stat(path)
    key = hashlib.sha256(f"{os.path.realpath(path)}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:24]
    remembered = VERSION_CACHE / f"packer-{key}"
    with contextlib.suppress(OSError, ValueError):
        return tuple(int(x) for x in remembered.read_text().split("."))
    out = subprocess.run([path, "version"], capture_output=True, text=True, timeout=60).stdout
    match = re.search(r"v?(\d+)\.(\d+)\.(\d+)", out)
    if not match:
        raise PackerError(f"cannot read the Packer version from {out.strip()!r}", "check that 'packer version' works")
    with contextlib.suppress(OSError):
        remembered.parent.mkdir(parents=True, exist_ok=True)
        remembered.write_text(".".join(match.groups()))
    return tuple(int(x) for x in match.groups())


def init(template: Path, env: dict[str, str]) -> None:
    """``packer init`` (Packer 1.7+): installs the plugins the template requires."""
    proc = subprocess.run(["packer", "init", str(template)], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise PackerError(f"packer init failed: {proc.stderr.strip() or proc.stdout.strip()}", "check network access to the plugin source")


def build_command(template: Path, var_file: Path) -> list[str]:
    """The ``packer build`` command line: machine-readable, and cleanup of everything on error."""
    return ["packer", "build", "-machine-readable", "-color=false", "-on-error=cleanup", f"-var-file={var_file}", str(template)]


def build(template: Path, var_file: Path, bake_dir: Path, env: dict[str, str], cwd: Path,
          on_line: Callable[[str], None] = lambda line: None, redact: Callable[[str], str] | None = None) -> BuildResult:
    """``packer build`` the template; PackerError (with Packer's own message) if it fails.

    ``redact`` rewrites every line before it is logged or shown (secret values out).
    """
    log_path = bake_dir / "packer.log"
    cmd = build_command(template, var_file)
    phases = PhaseClock()
    errors: list[str] = []
    with open(log_path, "w") as log:
        # Its own process group: an interrupt reaches Packer and its provisioners
        # through us (see _stop) whether it came from a terminal or a SIGTERM.
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                bufsize=1, start_new_session=True)
        interrupted = False
        while True:
            try:
                _follow(proc, log, phases, errors, on_line, redact or (lambda line: line))
                break
            except KeyboardInterrupt:
                if not interrupted:
                    interrupted = True
                    _stop(proc)
                # Keep reading: Packer reports its clean-up, and must not block on a full pipe.
        phases.stop()
        if interrupted:
            raise KeyboardInterrupt
    if proc.returncode != 0:
        last = next((e for e in reversed(errors) if e.strip()), "see the Packer log")
        raise PackerError(f"packer build failed: {last.strip().splitlines()[-1]}", f"full log: {log_path}")
    return BuildResult(amis=read_manifest(bake_dir / "manifest.json"), phases=phases.durations, log=log_path, errors=errors)


def _follow(proc: subprocess.Popen, log, phases: "PhaseClock", errors: list[str], on_line: Callable[[str], None],
            redact: Callable[[str], str]) -> None:
    """Read Packer's stream to its end: log it, time it, show it."""
    for raw in proc.stdout:
        raw = redact(raw)
        log.write(raw)
        kind, text = parse_line(raw)
        if kind in ("say", "message", "error") and text:
            phases.saw(text)
            if kind == "error":
                errors.append(text)
            for line in text.splitlines():
                on_line(line)
    proc.wait()


def _stop(proc: subprocess.Popen) -> None:
    """Interrupt Packer and its provisioners; Packer then cancels the build and deletes what it made.

    A watchdog kills the group if Packer has not ended after INTERRUPT_GRACE.
    """
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGINT)

    def watchdog() -> None:
        try:
            proc.wait(timeout=INTERRUPT_GRACE)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

    threading.Thread(target=watchdog, daemon=True).start()


def parse_line(raw: str) -> tuple[str, str]:
    """(type, text) of a ``-machine-readable`` line: ``time,target,type,data...``."""
    parts = raw.rstrip("\n").split(",")
    if len(parts) < 3:
        return "", raw.strip()
    kind = parts[2]
    data = parts[3:]
    if kind == "ui" and data:
        kind, data = data[0], data[1:]
    text = ",".join(data).replace("%!(PACKER_COMMA)", ",").replace("\\n", "\n").replace("\\r", "")
    return kind, text


class PhaseClock:
    """Times the phases of a bake from the order of Packer's messages."""

    def __init__(self) -> None:
        self.durations: dict[str, float] = {}
        self.current: str | None = None
        self.started = time.monotonic()
        self.shell_runs = 0

    def saw(self, text: str) -> None:
        """Feed one message; switch phase when it opens the next one."""
        for name, pattern in PHASE_MARKERS:
            if pattern.search(text):
                if name == "provision":
                    self.shell_runs += 1
                    name = SHELL_STEPS[min(self.shell_runs, len(SHELL_STEPS)) - 1]
                if name != self.current and name not in self.durations:
                    self._switch(name)
                return

    def _switch(self, name: str) -> None:
        now = time.monotonic()
        if self.current:
            self.durations[self.current] = round(self.durations.get(self.current, 0) + now - self.started, 2)
        self.current, self.started = name, now

    def stop(self) -> None:
        """Close the running phase."""
        if self.current:
            self._switch("")
            self.current = None


def read_manifest(path: Path) -> dict[str, str]:
    """Region -> AMI id from the manifest post-processor's last build."""
    try:
        builds = json.loads(path.read_text())["builds"]
    except (OSError, ValueError, KeyError):
        raise PackerError(f"Packer wrote no manifest at {path}", "see packer.log beside it") from None
    artifact = builds[-1]["artifact_id"]
    return dict(pair.split(":", 1) for pair in artifact.split(",") if ":" in pair)


def packer_env(aws_env: dict[str, str]) -> dict[str, str]:
    """The environment Packer runs with: ours, plus the account's, without checkpoint calls."""
    env = dict(os.environ)
    env.update(aws_env)
    # The provisioners call ansible-playbook and pytest from Rodeo's own venv.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["CHECKPOINT_DISABLE"] = "1"
    env["PACKER_NO_COLOR"] = "1"
    return env
