"""Provision a build host with the image's playbook through ansible-runner.

Runs here, as the first of the bake's steps (``toolkit.bake.ssh_steps``), and reaches the
build host over SSH; alone: ``python -m toolkit.bake.provision`` with the runner's flags
(``toolkit.bake.runner``).

It writes an inventory for the one build host (with the environment's
``group_vars``), runs the playbook with SSH pipelining, prints a progress
event per task ("task 3 of 14") and the ok/changed/failed counts, and keeps
ansible-runner's artifacts under ``<bake-dir>/ansible/``. A failed run writes
``<bake-dir>/failure.json`` and exits 1 naming the task, the host it ran on
(for a delegated task, the delegate), Ansible's message (for a command, its
return code and the end of its stderr) and the task's file and line.

Speed: the playbook runs with Mitogen's strategy (``ansible_strategy:
mitogen``, the default; ``linear`` is plain Ansible), which runs every task
in one persistent Python on the host instead of copying and starting a
module per task. When Mitogen cannot load (not installed, an Ansible it
refuses, a broken plugin), the playbook runs again with the linear strategy,
announced in one line and in ``<bake-dir>/provision.json`` (which the bake's
record includes). Ansible's SSH (Mitogen's too) goes through the bake's
master connection (``toolkit.hosts.ssh``), which the image tests and the
seal step reuse.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.util
import json
import shutil
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from toolkit import config as config_mod
from toolkit import progress, secrets
from toolkit.bake import runner
from toolkit.errors import ProvisionError
from toolkit.hosts import ssh
from toolkit.hosts.ssh import SshHost

CALLBACKS = Path(__file__).with_name("ansible_callbacks")  # rodeo_tasks: counts a play's tasks as it starts
TASK_COUNT = "task-count.json"  # where rodeo_tasks writes the count, in ansible-runner's artifacts folder
EXTRA_VARS = "extra-vars.json"  # `invoke bake --var`: written by the pipeline, passed as -e @FILE
APP_VARS = "app-source.json"  # rodeo_app_dir, rodeo_app_commit, rodeo_app_version: written by the pipeline (toolkit.bake.source)
LEAKS = "leaks.json"  # files of the artifacts that held a secret's value (redacted since)
RECORD = "provision.json"  # how the playbook ran: strategy, Mitogen's fallback reason, counts
HOST_CLOCK = "host-clock-start"  # the host's clock (epoch s) when provisioning began: the seal scans what changed since
MITOGEN_STRATEGY = "mitogen_linear"
STOP_POLL = 0.2  # seconds between ansible-runner's looks at ``stopped``
# What a module says when it needs to respawn under another Python, which Mitogen cannot do.
MITOGEN_LIMITS = (
    "must be installed and visible from",
    "_module_fqn",
    "Could not import the python3-apt module",
    "Could not import the python3-dnf module",
    "has already been respawned",
)


def write_inventory(target: Path, host: SshHost, image: str, inventory_dir: Path) -> Path:
    """An inventory folder holding the build host (groups ``build`` and the image) and the env's vars."""
    target.mkdir(parents=True, exist_ok=True)
    hostvars = {
        "ansible_host": host.host,
        "ansible_port": host.port,
        "ansible_user": host.user,
        "ansible_ssh_private_key_file": str(host.key),
        "ansible_python_interpreter": "/usr/bin/python3",
    }
    inventory = {
        "all": {
            "children": {
                "build": {"hosts": {"build-host": hostvars}},
                image.replace("-", "_"): {"hosts": {"build-host": None}},
            }
        }
    }
    (target / "hosts.yml").write_text(json.dumps(inventory, indent=2) + "\n")
    for sub in ("group_vars", "host_vars"):
        link = target / sub
        if (inventory_dir / sub).is_dir() and not link.exists():
            link.symlink_to((inventory_dir / sub).resolve(), target_is_directory=True)
    return target


class TaskPrinter:
    """An ansible-runner event handler: a progress event per task, and the failing task's details.

    ``count_file`` is where the ``rodeo_tasks`` callback writes how many tasks
    the playbook has (``task n of N``); ``root`` makes task paths relative.
    """

    def __init__(
        self,
        out=sys.stdout,
        secret_values: dict[str, str] | None = None,
        root: Path | None = None,
        count_file: Path | None = None,
    ) -> None:
        self.out = out
        self.secret_values = secret_values or {}
        self.root = root
        self.count_file = count_file
        self.failure: TaskFailure | None = None
        self.tasks = 0
        self.total: dict = {}

    def __call__(self, event: dict) -> bool:
        data = event.get("event_data", {})
        kind = event.get("event", "")
        if kind == "playbook_on_task_start":
            self.tasks += 1
            total = self._total()
            name = secrets.redact(data.get("task", "").strip(), self.secret_values)
            progress.emit(progress.Task(self.tasks, name, total.get("tasks"), bool(total.get("dynamic"))), self.out)
        elif kind in ("runner_on_failed", "runner_on_unreachable") and not data.get("ignore_errors"):
            self.failure = task_failure(data, self.root).redacted(self.secret_values)
            for line in self.failure.lines():
                self._print(line)
        return True

    def _total(self) -> dict:
        """The task count, once the callback has written it (at the play's start)."""
        if not self.total and self.count_file is not None:
            with contextlib.suppress(OSError, ValueError):
                self.total = json.loads(self.count_file.read_text())
        return self.total

    def _print(self, line: str) -> None:
        print(secrets.redact(line, self.secret_values), file=self.out, flush=True)


@dataclass(frozen=True)
class TaskFailure:
    """Why a task failed: where it ran (a delegated task: the delegate), its file and line, Ansible's message."""

    task: str
    host: str
    message: str  # one line: Ansible's message, a command's return code and the end of its stderr
    path: str = ""  # file:line of the task, relative to the project when inside it
    reason: str = ""  # Ansible's message and the return code only
    output: tuple[str, ...] = ()  # a command's last lines of stderr (of stdout when stderr is empty), marked as such

    def lines(self) -> list[str]:
        """The failure as the step prints it (and the bake shows it)."""
        where = f" at {self.path}" if self.path else ""
        return [
            f"FAILED: '{self.task}' on {self.host}{where}",
            f"  {self.reason or self.message}",
            *(f"  {line}" for line in self.output),
        ]

    def redacted(self, values: dict[str, str]) -> "TaskFailure":
        """The same failure with every secret value taken out of what Ansible said."""

        def redact(text: str) -> str:
            return secrets.redact(text, values)

        return dataclasses.replace(
            self,
            task=redact(self.task),
            message=redact(self.message),
            reason=redact(self.reason),
            output=tuple(map(redact, self.output)),
        )


def task_failure(data: dict, root: Path | None = None, tail: int = 5) -> TaskFailure:
    """The TaskFailure in a ``runner_on_failed`` (or ``_unreachable``) event's data; a loop's first failed item."""
    res = data.get("res") or {}
    item = next((r for r in res.get("results") or [] if isinstance(r, dict) and r.get("failed")), None)
    detail = item or res
    host = data.get("host") or "?"
    delegate = (res.get("_ansible_delegated_vars") or {}).get("ansible_host")
    if delegate and delegate != host:
        host = f"{delegate} (delegated from {host})"
    stream = "stderr" if _lines(detail.get("stderr")) or "rc" not in detail else "stdout"
    output = tuple(f"{stream}: {line}" for line in _lines(detail.get(stream))[-tail:])
    return TaskFailure(
        task=data.get("task") or "?",
        host=host,
        message=_one_line(failure_message(detail)),
        path=_relative(data.get("task_path") or "", root),
        reason=_one_line(failure_message(dict(detail, stderr=""))) if output else "",
        output=output,
    )


def failure_message(res: dict, tail: int = 3) -> str:
    """Why a task failed: Ansible's message, and for a command that ran, its return code and the last lines of its stderr."""
    message = str(res.get("msg") or res.get("module_stderr") or "failed")
    stderr = [ln.strip() for ln in str(res.get("stderr") or "").splitlines() if ln.strip()]
    if "rc" in res and (stderr or res.get("rc")):
        message = f"{message} (rc {res['rc']})"
        if stderr:
            message += ": " + " | ".join(stderr[-tail:])
    elif not res.get("msg") and stderr:
        message = " | ".join(stderr[-tail:])
    return message


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _lines(text) -> list[str]:
    return [ln.rstrip() for ln in str(text or "").splitlines() if ln.strip()]


def _relative(task_path: str, root: Path | None) -> str:
    """``/abs/playbooks/roles/x/tasks/main.yml:12`` -> ``playbooks/roles/x/tasks/main.yml:12`` under ``root``."""
    if not task_path or root is None:
        return task_path
    path, sep, line = task_path.rpartition(":")
    if not sep or not line.isdigit():
        path, line = task_path, ""
    with contextlib.suppress(ValueError):
        path = str(Path(path).resolve().relative_to(root.resolve()))
    return f"{path}:{line}" if line else path


def run(
    cfg: config_mod.Config,
    image_name: str,
    host: SshHost,
    bake_dir: Path,
    out=sys.stdout,
    secret_values: dict[str, str] | None = None,
    strategy_plugins: Path | None = None,
    stopped: Callable[[], bool] | None = None,
) -> dict:
    """Run the image's playbook on ``host``; return the per-host stats, or raise ProvisionError.

    ``secret_values`` become Ansible variables through a private file that is
    deleted after the run (never through ansible-runner's own files, which
    keep the environment and extra vars among the artifacts).
    ``strategy_plugins`` is where Mitogen's strategy plugins are (default: the
    installed ``ansible_mitogen``'s). ``stopped`` is asked a few times a
    second; when it says True, Ansible is stopped and ProvisionError raised.
    """
    import ansible_runner

    image = cfg.image(image_name)
    playbook = (cfg.root / image.playbook).resolve()
    private = bake_dir / "ansible"
    inventory = write_inventory(private / "inventory", host, image.name, cfg.inventory_dir)
    printer = TaskPrinter(out, secret_values, cfg.root, private / "artifacts" / "provision" / TASK_COUNT)
    envvars = {
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_SSH_ARGS": f"-F {_master(host, bake_dir)}",  # the bake's one connection (toolkit.hosts.ssh)
        "ANSIBLE_ROLES_PATH": str(playbook.parent / "roles"),
        "ANSIBLE_NOCOLOR": "True",
    }
    if (cfg.root / "ansible.cfg").is_file():
        envvars["ANSIBLE_CONFIG"] = str(cfg.root / "ansible.cfg")
    envvars["ANSIBLE_CALLBACK_PLUGINS"] = str(CALLBACKS)  # ansible-runner adds its own
    try:
        with secrets.vars_file(secret_values or {}) as extra:

            def play(env: dict):
                printer.failure = None  # a failed Mitogen attempt's is not the last run's
                (private / "env" / "envvars").unlink(missing_ok=True)  # ansible-runner's copy would win over env
                return ansible_runner.run(
                    private_data_dir=str(private),
                    playbook=str(playbook),
                    inventory=str(inventory),
                    envvars=env,
                    cmdline=_cmdline(bake_dir, extra),
                    ident="provision",
                    event_handler=printer,
                    quiet=True,
                    rotate_artifacts=0,
                    # never None: ansible-runner would put its own SIGINT/SIGTERM handlers in this process for good
                    cancel_callback=stopped or (lambda: False),
                    settings={"pexpect_timeout": STOP_POLL},  # how often ansible-runner asks ``stopped``
                )

            result, how = run_with_strategy(
                image.ansible_strategy,
                envvars,
                play,
                private,
                out,
                strategy_plugins,
                redact=lambda text: secrets.redact(text, secret_values or {}),
            )
    finally:
        _redact_artifacts(private, bake_dir, secret_values or {})
    stats = result.stats or {}
    counts = {k: sum((stats.get(k) or {}).values()) for k in ("ok", "changed", "failures", "dark", "skipped")}
    print(
        f"PLAY RECAP ok={counts['ok']} changed={counts['changed']} failed={counts['failures']} unreachable={counts['dark']} skipped={counts['skipped']}",
        file=out,
        flush=True,
    )
    (bake_dir / RECORD).write_text(
        json.dumps(dict(how, counts=counts, status=result.status), indent=1, sort_keys=True) + "\n"
    )
    if result.status == "canceled":
        raise ProvisionError("provisioning was stopped (interrupted)", "run the command again")
    if result.status != "successful":
        raise provision_error(
            printer.failure or _runner_reason(result), image.playbook, private / "artifacts" / "provision"
        )
    return dict(counts, tasks=printer.tasks)


def provision_error(failure: TaskFailure | str, playbook: str, artifacts: Path) -> ProvisionError:
    """The bake's error for a failed task (or, as a string, why Ansible failed before any task could)."""
    if isinstance(failure, str):
        return ProvisionError(
            f"Ansible run of {playbook} failed: {failure}", f"fix {playbook} (artifacts: {artifacts})"
        )
    return ProvisionError(
        f"Ansible task '{failure.task}' failed on {failure.host}: {failure.message}",
        f"fix {failure.path or playbook} (artifacts: {artifacts})",
    )


def _master(host: SshHost, bake_dir: Path) -> Path:
    """The bake's SSH client config, with its master connection started (``toolkit.hosts.ssh``)."""
    cfg_file = ssh.client_config(bake_dir / "ssh_config", host)
    ssh.open_master(host, cfg_file)
    clock = ssh.run(host, cfg_file, "date +%s", timeout=60)
    if clock.returncode == 0 and clock.stdout.strip().isdigit():
        (bake_dir / HOST_CLOCK).write_text(clock.stdout.strip() + "\n")
    return cfg_file


def run_with_strategy(
    strategy: str,
    envvars: dict,
    play: Callable[[dict], object],
    private: Path,
    out,
    plugins: Path | None = None,
    redact: Callable[[str], str] = lambda text: text,
) -> tuple[object, dict]:
    """``play(envvars)`` with ``strategy``; for Mitogen, once more with Ansible's linear strategy when it fails to load.

    Returns the last run and ``{"strategy": ..., "fallback": why or None}``
    (``why`` through ``redact``: a task's message may hold a secret's value).
    The failed attempt's artifacts are kept as ``artifacts/provision-mitogen``.
    """
    fallback = None
    if strategy == "mitogen":
        plugins = plugins or mitogen_plugins()
        if plugins is None:
            fallback = "mitogen is not installed"
        else:
            result = play(dict(envvars, ANSIBLE_STRATEGY=MITOGEN_STRATEGY, ANSIBLE_STRATEGY_PLUGINS=str(plugins)))
            fallback = mitogen_failure(result)
            if fallback is None:
                return result, {"strategy": "mitogen", "fallback": None}
            failed = private / "artifacts" / "provision"
            if failed.is_dir():
                shutil.rmtree(private / "artifacts" / "provision-mitogen", ignore_errors=True)
                failed.rename(failed.with_name("provision-mitogen"))
        fallback = redact(fallback)
        print(f"mitogen: {fallback}; provisioning with Ansible's linear strategy instead", file=out, flush=True)
    return play(dict(envvars, ANSIBLE_STRATEGY="linear")), {"strategy": "linear", "fallback": fallback}


def mitogen_plugins() -> Path | None:
    """The strategy plugins of the installed ``ansible_mitogen``, found without importing it (or Ansible)."""
    spec = importlib.util.find_spec("ansible_mitogen")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "plugins" / "strategy"
    return folder if (folder / f"{MITOGEN_STRATEGY}.py").is_file() else None


def mitogen_failure(result) -> str | None:
    """Why a run failed because of Mitogen rather than the playbook, or None.

    Three ways: Mitogen did not load (an import error, a plugin Ansible
    cannot use, a Mitogen that refuses this Ansible: the run ends before its
    first task); it could not start on the host (unreachable, in Mitogen's
    words); or a task needed what Mitogen cannot do: a module that re-runs
    itself under another Python (``apt`` on a host without python3-apt
    installs it, then respawns). Any other failed task is the playbook's.
    """
    if result.status in ("successful", "canceled"):  # a stopped run is not Mitogen's failure: no fallback
        return None
    events = list(result.events)
    failed = [
        e
        for e in events
        if e.get("event") in ("runner_on_failed", "runner_on_unreachable")
        and not (e.get("event_data") or {}).get("ignore_errors")
    ]
    if failed:
        data = failed[-1].get("event_data") or {}
        res = data.get("res") or {}
        text = json.dumps(res, default=str)
        why = _one_line(failure_message(res), 160)
        if any(marker in text for marker in MITOGEN_LIMITS):
            return f"task '{data.get('task', '?')}' needs what Mitogen cannot do ({why})"
        if failed[-1].get("event") == "runner_on_unreachable" and "mitogen" in text.lower():
            return f"could not start on the host ({why})"
        return None
    if any(str(e.get("event", "")).startswith("runner_on_") for e in events):
        return None
    try:
        lines = [ln.strip() for ln in result.stdout.read().splitlines() if ln.strip()]
    except Exception:
        lines = []
    related = [ln for ln in lines if "mitogen" in ln.lower() or "strategy" in ln.lower()]
    return f"failed to load ({_one_line(related[0], 200)})" if related else None


def _cmdline(bake_dir: Path, secrets_file: Path | None) -> str | None:
    """ansible-playbook's extra arguments: the app source's variables, the --var file, then the secrets (which win)."""
    files = [f for f in (bake_dir / APP_VARS, bake_dir / EXTRA_VARS, secrets_file) if f is not None and f.is_file()]
    return " ".join(f"-e @{f}" for f in files) or None


def _redact_artifacts(private: Path, bake_dir: Path, values: dict[str, str]) -> None:
    """Take every secret's value out of ansible-runner's files, noting which held one (the seal step fails on them)."""
    found = [
        {"file": str(path.relative_to(bake_dir)), "secrets": names}
        for path, names in secrets.redact_files(private, values)
    ]
    if found:
        (bake_dir / LEAKS).write_text(json.dumps(found, indent=1) + "\n")


def _runner_reason(result) -> str:
    """The tail of Ansible's output when no task event says why (syntax errors, bad paths)."""
    try:
        lines = [ln.strip() for ln in result.stdout.read().splitlines() if ln.strip()]
    except Exception:
        lines = []
    interesting = [ln for ln in lines if "ERROR" in ln or "error" in ln.lower()]
    return _one_line((interesting or lines or [f"status {result.status}, rc {result.rc}"])[0])


def run_step(args: argparse.Namespace, host: SshHost, values: dict[str, str]) -> str:
    """The provision step: the image's playbook on the build host (Ctrl-C or SIGTERM stops Ansible)."""
    cfg = config_mod.load(args.env, Path.cwd())  # Packer runs us in the project root
    # Ctrl-C reaches this step with Packer; Rodeo sends SIGTERM when Packer stops waiting for it.
    # Either stops Ansible at once, and the artifacts are still redacted on the way out.
    # The next steps (same process) get the usual handlers back.
    stop = threading.Event()
    saved = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with ssh.master_closed_on_error(host, args.bake_dir / "ssh_config"):
            counts = run(cfg, args.image, host, args.bake_dir, secret_values=values, stopped=stop.is_set)
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    if stop.is_set():  # a signal after Ansible's last task: stop before the next step
        raise ProvisionError("the bake was stopped (interrupted) after provisioning", "run the command again")
    return f"{counts['tasks']} task{'' if counts['tasks'] == 1 else 's'}, {counts['changed']} changed"


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``python -m toolkit.bake.provision``."""
    return runner.main("provision", run_step, argv, "toolkit.bake.provision")


if __name__ == "__main__":
    sys.exit(main())
