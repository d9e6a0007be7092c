"""Run the ``packer`` binary: find its version, ``init``, and ``build`` with live events.

``build`` reads Packer's ``-machine-readable`` stream and keeps all of it as
``packer.log`` in the bake folder. It turns the stream into progress events
(``toolkit.progress``): Packer's own messages into phases (boot,
provision, verify, seal, snapshot, copy), which it also times; the steps'
event lines into theirs; every other line into ``Output`` (shown only with
``--verbose``). When the build fails, the last event carries the lines that
say why: the failing step's own output, or Packer's reasons, each once.
It returns the AMI ids from the manifest post-processor.
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
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from toolkit import procs, progress
from toolkit.errors import AwsError, PackerError

if TYPE_CHECKING:
    from toolkit.cancel import Cancel

# Packer's say/message lines that open each phase, in order.
PHASE_MARKERS = (
    ("boot", re.compile(r"Launching a source AWS instance|Creating temporary keypair|Prevalidating")),
    ("provision", re.compile(r"Running local shell script|Provisioning with shell-local", re.I)),
    ("snapshot", re.compile(r"Stopping the source instance|Creating AMI|Creating the AMI")),
    ("copy", re.compile(r"Copying/Encrypting AMI|Copying AMI|Copying to: ")),
)
# Packer's messages worth a glance on the running phase's line; True: also its summary when it ends.
NOTES = (
    (re.compile(r"Instance ID: (\S+)"), r"instance \1", False),
    (re.compile(r"Waiting for SSH to become available"), "waiting for SSH", False),
    (re.compile(r"Connected to SSH!"), "connected over SSH", True),
    (re.compile(r"Waiting for the instance to stop"), "stopping the instance", False),
    (re.compile(r"Creating AMI \S+ from instance"), "creating the AMI", False),
    (re.compile(r"Waiting for AMI to become ready"), "waiting for the AMI", False),
    (re.compile(r"Waiting for all copies to complete"), "waiting for the copies", False),
)
# Packer's words around a failure's reason (it says each reason up to three times).
REASON_PREFIXES = re.compile(r"^(?:Build '[^']*' errored after [^:]*: |(?:==>|-->)\s*[\w.-]+: )")
BOILERPLATE = re.compile(
    r"Some builds didn't complete successfully|Builds finished but no artifacts|^Provisioning step had errors"
)
COPYING = re.compile(r"Copying to: (\S+)")
SOURCE = re.compile(r"^\s*(?:==>|-->)?\s*[\w-]+\.[\w.-]+:(?: |$)")  # "    amazon-ebs.app: " before a step's line
INTERRUPT_GRACE = 300.0
SHELL_STEPS = ("provision", "verify", "seal")  # the template's shell-local provisioners, in order
TAIL = 12  # a failing step's last lines shown
# What Packer gets instead of a profile (see packer_env), and the variables that would name one.
CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
PROFILE_VARIABLES = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE")
VERSION_CACHE = Path(os.environ.get("RODEO_CACHE_DIR", Path.home() / ".cache" / "rodeo")) / "versions"


@dataclass
class BuildResult:
    """What a finished ``packer build`` made."""

    amis: dict[str, str]
    phases: dict[str, float]
    log: Path
    errors: list[str] = field(default_factory=list)
    window: tuple[float, float] = (
        0.0,
        0.0,
    )  # when Packer started and ended (epoch seconds): bakes that overlapped show it


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


INIT_TIMEOUT = 300  # seconds: downloading the amazon plugin takes a few; a stalled download must not hang the bake


def init(template: Path, env: dict[str, str]) -> None:
    """``packer init`` (Packer 1.7+): installs the plugins the template requires."""
    try:
        proc = subprocess.run(
            ["packer", "init", str(template)], capture_output=True, text=True, env=env, timeout=INIT_TIMEOUT
        )
    except subprocess.TimeoutExpired:
        raise PackerError(
            f"packer init did not end within {INIT_TIMEOUT} s", "check network access to the plugin source (github.com)"
        ) from None
    if proc.returncode != 0:
        raise PackerError(
            f"packer init failed: {proc.stderr.strip() or proc.stdout.strip()}",
            "check network access to the plugin source",
        )


def build_command(template: Path, var_file: Path, on_error: str = "cleanup") -> list[str]:
    """The ``packer build`` command line: machine-readable; on error Packer cleans up, or with ``abort`` leaves the instance up."""
    return [
        "packer",
        "build",
        "-machine-readable",
        "-color=false",
        f"-on-error={on_error}",
        f"-var-file={var_file}",
        str(template),
    ]


def build(
    template: Path,
    var_file: Path,
    bake_dir: Path,
    env: dict[str, str],
    cwd: Path,
    on_event: Callable[[progress.Event], None] = lambda event: None,
    redact: Callable[[str], str] | None = None,
    phase: str | None = None,
    on_error: str = "cleanup",
    cancel: "Cancel | None" = None,
) -> BuildResult:
    """``packer build`` the template; PackerError (with Packer's own message) if it fails.

    ``on_event`` gets every progress event; ``redact`` rewrites every line
    before it is logged or shown (secret values out). ``phase`` is the phase
    already running when Packer starts (the build host's boot). ``cancel``
    stops the build as Ctrl-C does, from another thread (a bake among several).
    """
    if cancel is not None:
        cancel.check()
    log_path = bake_dir / "packer.log"
    cmd = build_command(template, var_file, on_error)
    stream = Stream(on_event, PhaseClock(phase, on_event))
    started = time.time()
    with open(log_path, "w", buffering=1) as log:  # line by line: a hung build shows where it stopped
        # Its own process group: an interrupt reaches Packer and its provisioners
        # through us (see _stop) whether it came from a terminal or a SIGTERM.
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,
            # Rodeo killed (kill -9): Packer is told to stop, and cleans up, instead of waiting out its SSH timeout.
            preexec_fn=procs.stop_with_parent,
        )
        stopping = threading.Lock()
        interrupted: list[bool] = []

        def interrupt() -> None:
            with stopping:
                if not interrupted:
                    interrupted.append(True)
                    _stop(proc)

        with cancel.on_set(interrupt) if cancel is not None else contextlib.nullcontext():
            while True:
                try:
                    for raw in proc.stdout:
                        raw = (redact or str)(raw)
                        log.write(raw)
                        stream.feed(raw)
                    proc.wait()
                    break
                except KeyboardInterrupt:
                    interrupt()
                    # Keep reading: Packer reports its clean-up, and must not block on a full pipe.
        why = stream.why()
        stream.clock.stop()
        if interrupted:
            raise KeyboardInterrupt
    if proc.returncode != 0:
        reasons = stream.reasons()
        on_event(progress.Ended(False, why))
        raise PackerError(f"packer build failed: {(reasons or ['see the Packer log'])[-1]}", f"full log: {log_path}")
    on_event(progress.Ended(True))
    return BuildResult(
        amis=read_manifest(bake_dir / "manifest.json"),
        phases=stream.clock.durations,
        log=log_path,
        errors=stream.errors,
        window=(round(started, 3), round(time.time(), 3)),
    )


class Stream:
    """Packer's machine-readable lines in, progress events out; keeps what a failure needs."""

    def __init__(self, on_event: Callable[[progress.Event], None], clock: "PhaseClock") -> None:
        self.on_event, self.clock = on_event, clock
        self.errors: list[str] = []
        self.step_lines: deque[str] = deque(maxlen=TAIL)  # the last shell step's own output
        self.in_step = False  # from a shell step's start to Packer's next message of its own
        self.regions: list[str] = []  # the AMI copied (encrypted) to

    def feed(self, raw: str) -> None:
        """One line of the stream."""
        kind, text = parse_line(raw)
        if kind == "error":
            self.errors.append(text)
        if kind not in ("say", "message", "error") or not text:
            return
        for line in text.splitlines():
            self._line(kind, line)

    def _line(self, kind: str, line: str) -> None:
        own = SOURCE.sub("", line)
        event = progress.parse(own)
        if event is not None:
            if isinstance(event, progress.Phase):
                self.clock.enter(event.name)
            else:
                self.on_event(event)
            return
        if kind == "say":  # the phase it opens first, then the line (--verbose shows it under that phase)
            self.in_step = bool(self.clock.saw(own) in SHELL_STEPS)
            if self.in_step:
                self.step_lines.clear()
        elif self.in_step and own.strip():
            self.step_lines.append(own.rstrip())
        self.on_event(progress.Output(line))
        copying = COPYING.search(own)
        if copying:
            self.regions.append(copying[1])
        note = progress.Note(f"to {', '.join(self.regions)}", True) if copying else phase_note(own)
        if note:
            self.on_event(note)

    def reasons(self) -> list[str]:
        """Packer's error lines, each reason once, without its framing."""
        return unique_reasons(self.errors)

    def why(self) -> tuple[str, ...]:
        """The lines that say why the build failed: the failing step's own, else Packer's reasons."""
        if self.clock.current in SHELL_STEPS and self.step_lines:
            return tuple(self.step_lines)
        return tuple(self.reasons())


def phase_note(text: str) -> progress.Note | None:
    """The short news a Packer message gives about the running phase, or None."""
    for pattern, note, final in NOTES:
        found = pattern.search(text.strip())
        if found:
            return progress.Note(found.expand(note), final)
    return None


def unique_reasons(errors: list[str]) -> list[str]:
    """Packer's error lines as reasons, each once, in order ("Build 'x' errored after 2s: R", "--> x: R" are R)."""
    seen: list[str] = []
    for error in errors:
        for line in error.splitlines():
            reason = REASON_PREFIXES.sub("", line.strip()).strip()
            if reason and not BOILERPLATE.search(reason) and reason not in seen:
                seen.append(reason)
    return seen


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
    """Times the phases of a bake from the order of Packer's messages, telling ``on_event`` when one begins.

    A phase is entered once: a later message that matches it (``Creating AMI
    tags`` after the copy) does not go back.
    """

    def __init__(
        self, initial: str | None = None, on_event: Callable[[progress.Event], None] = lambda event: None
    ) -> None:
        self.durations: dict[str, float] = {}
        self.current: str | None = None
        self.started = time.monotonic()
        self.shell_runs = 0
        self.on_event = on_event
        if initial:
            self.enter(initial)

    def saw(self, text: str) -> str | None:
        """Feed one message; switch phase when it opens the next one. Returns the phase it opened, if any."""
        for name, pattern in PHASE_MARKERS:
            if pattern.search(text):
                if name == "provision":
                    self.shell_runs += 1
                    name = SHELL_STEPS[min(self.shell_runs, len(SHELL_STEPS)) - 1]
                return name if self.enter(name) else None
        return None

    def enter(self, name: str) -> bool:
        """Switch to ``name`` unless it runs or ran already (a step naming itself confirms the order)."""
        if name == self.current or name in self.durations:
            return False
        self._switch(name)
        self.on_event(progress.Phase(name))
        return True

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
    """The environment Packer runs with: ours, plus the account's as plain keys, without checkpoint calls.

    Packer 1.6.6 (Debian's) reads ``AWS_PROFILE`` with an old SDK that knows
    neither SSO profiles nor some ``credential_process`` and role chains
    (hashicorp/packer#10525). So Rodeo resolves the credentials itself, with
    botocore (the chain its own clients use), and hands Packer only
    ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` and, for temporary ones,
    ``AWS_SESSION_TOKEN``: no profile variable reaches Packer. Temporary
    credentials are not refreshed during the build: they must outlive it
    (an SSO or assumed role's session lasts an hour or more).
    """
    env = dict(os.environ)
    env.update(aws_env)
    keys = aws_credentials(aws_env)
    for name in PROFILE_VARIABLES + CREDENTIAL_VARIABLES:
        env.pop(name, None)
    env.update(keys)
    # The provisioners call ansible-playbook and pytest from Rodeo's own venv.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["CHECKPOINT_DISABLE"] = "1"
    env["PACKER_NO_COLOR"] = "1"
    return env


def aws_credentials(aws_env: dict[str, str]) -> dict[str, str]:
    """The credentials of ``aws_env``'s account as the three plain variables; AwsError when there are none.

    Keys already in ``aws_env`` (the local stack's) are taken as they are;
    otherwise botocore resolves them for ``aws_env``'s ``AWS_PROFILE`` (an
    explicit profile, as Rodeo's clients use it), else its default chain.
    """
    if aws_env.get("AWS_ACCESS_KEY_ID"):
        return {name: aws_env[name] for name in CREDENTIAL_VARIABLES if aws_env.get(name)}
    import botocore.exceptions
    import botocore.session

    from toolkit.aws import explain

    try:
        found = botocore.session.Session(profile=aws_env.get("AWS_PROFILE") or None).get_credentials()
        frozen = found.get_frozen_credentials() if found is not None else None
    except botocore.exceptions.BotoCoreError as exc:
        raise (explain(exc) or PackerError(str(exc), "check the AWS profile")) from None
    if frozen is None or not frozen.access_key:
        raise AwsError(
            "no AWS credentials found for Packer", "set AWS_PROFILE (or run 'aws sso login'), or use --env local"
        )
    out = {"AWS_ACCESS_KEY_ID": frozen.access_key, "AWS_SECRET_ACCESS_KEY": frozen.secret_key}
    if frozen.token:
        out["AWS_SESSION_TOKEN"] = frozen.token
    return out
