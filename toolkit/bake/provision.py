"""Provision a build host with the image's playbook through ansible-runner.

Packer runs this as a ``shell-local`` provisioner (flags: ``toolkit.bake.step``).

It writes an inventory for the one build host (with the environment's
``group_vars``), runs the playbook with SSH pipelining, prints a progress
event per task ("task 3 of 14") and the ok/changed/failed counts, and keeps
ansible-runner's artifacts under ``<bake-dir>/ansible/``. A failed run writes
``<bake-dir>/failure.json`` and exits 1 naming the task, the host it ran on
(for a delegated task, the delegate), Ansible's message (for a command, its
return code and the end of its stderr) and the task's file and line.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from toolkit import config as config_mod
from toolkit.bake import progress, secrets, step
from toolkit.errors import ProvisionError
from toolkit.hosts.ssh import SshHost

CALLBACKS = Path(__file__).with_name("ansible_callbacks")  # rodeo_tasks: counts a play's tasks as it starts
TASK_COUNT = "task-count.json"  # where rodeo_tasks writes the count, in ansible-runner's artifacts folder
EXTRA_VARS = "extra-vars.json"  # `invoke bake --var`: written by the pipeline, passed as -e @FILE
APP_VARS = "app-source.json"  # rodeo_app_dir, rodeo_app_commit, rodeo_app_version: written by the pipeline (toolkit.bake.source)
LEAKS = "leaks.json"  # files of the artifacts that held a secret's value (redacted since)


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
    inventory = {"all": {"children": {"build": {"hosts": {"build-host": hostvars}}, image.replace("-", "_"): {"hosts": {"build-host": None}}}}}
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

    def __init__(self, out=sys.stdout, secret_values: dict[str, str] | None = None, root: Path | None = None,
                 count_file: Path | None = None) -> None:
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
        return [f"FAILED: '{self.task}' on {self.host}{where}", f"  {self.reason or self.message}", *(f"  {line}" for line in self.output)]

    def redacted(self, values: dict[str, str]) -> "TaskFailure":
        """The same failure with every secret value taken out of what Ansible said."""
        def redact(text: str) -> str:
            return secrets.redact(text, values)
        return dataclasses.replace(self, task=redact(self.task), message=redact(self.message), reason=redact(self.reason),
                                   output=tuple(map(redact, self.output)))


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
        task=data.get("task") or "?", host=host, message=_one_line(failure_message(detail)), path=_relative(data.get("task_path") or "", root),
        reason=_one_line(failure_message(dict(detail, stderr=""))) if output else "", output=output,
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


def run(cfg: config_mod.Config, image_name: str, host: SshHost, bake_dir: Path, out=sys.stdout,
        secret_values: dict[str, str] | None = None) -> dict:
    """Run the image's playbook on ``host``; return the per-host stats, or raise ProvisionError.

    ``secret_values`` become Ansible variables through a private file that is
    deleted after the run (never through ansible-runner's own files, which
    keep the environment and extra vars among the artifacts).
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
        "ANSIBLE_SSH_ARGS": "-o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no",
        "ANSIBLE_ROLES_PATH": str(playbook.parent / "roles"),
        "ANSIBLE_NOCOLOR": "True",
    }
    if (cfg.root / "ansible.cfg").is_file():
        envvars["ANSIBLE_CONFIG"] = str(cfg.root / "ansible.cfg")
    envvars["ANSIBLE_CALLBACK_PLUGINS"] = str(CALLBACKS)  # ansible-runner adds its own
    try:
        with secrets.vars_file(secret_values or {}) as extra:
            result = ansible_runner.run(
                private_data_dir=str(private),
                playbook=str(playbook),
                inventory=str(inventory),
                envvars=envvars,
                cmdline=_cmdline(bake_dir, extra),
                ident="provision",
                event_handler=printer,
                quiet=True,
                rotate_artifacts=0,
            )
    finally:
        _redact_artifacts(private, bake_dir, secret_values or {})
    stats = result.stats or {}
    counts = {k: sum((stats.get(k) or {}).values()) for k in ("ok", "changed", "failures", "dark", "skipped")}
    print(f"PLAY RECAP ok={counts['ok']} changed={counts['changed']} failed={counts['failures']} unreachable={counts['dark']} skipped={counts['skipped']}", file=out, flush=True)
    if result.status != "successful":
        raise provision_error(printer.failure or _runner_reason(result), image.playbook, private / "artifacts" / "provision")
    return dict(counts, tasks=printer.tasks)


def provision_error(failure: TaskFailure | str, playbook: str, artifacts: Path) -> ProvisionError:
    """The bake's error for a failed task (or, as a string, why Ansible failed before any task could)."""
    if isinstance(failure, str):
        return ProvisionError(f"Ansible run of {playbook} failed: {failure}", f"fix {playbook} (artifacts: {artifacts})")
    return ProvisionError(f"Ansible task '{failure.task}' failed on {failure.host}: {failure.message}",
                          f"fix {failure.path or playbook} (artifacts: {artifacts})")


def _cmdline(bake_dir: Path, secrets_file: Path | None) -> str | None:
    """ansible-playbook's extra arguments: the app source's variables, the --var file, then the secrets (which win)."""
    files = [f for f in (bake_dir / APP_VARS, bake_dir / EXTRA_VARS, secrets_file) if f is not None and f.is_file()]
    return " ".join(f"-e @{f}" for f in files) or None


def _redact_artifacts(private: Path, bake_dir: Path, values: dict[str, str]) -> None:
    """Take every secret's value out of ansible-runner's files, noting which held one (the seal step fails on them)."""
    found = [{"file": str(path.relative_to(bake_dir)), "secrets": names} for path, names in secrets.redact_files(private, values)]
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


def _provision(args: argparse.Namespace, host: SshHost, values: dict[str, str]) -> str:
    cfg = config_mod.load(args.env, Path.cwd())  # Packer runs us in the project root
    counts = run(cfg, args.image, host, args.bake_dir, secret_values=values)
    return f"{counts['tasks']} task{'' if counts['tasks'] == 1 else 's'}, {counts['changed']} changed"


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``python -m toolkit.bake.provision``."""
    return step.main("provision", _provision, argv)


if __name__ == "__main__":
    sys.exit(main())
