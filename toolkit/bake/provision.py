"""Provision a build host with the image's playbook through ansible-runner.

Packer runs this as a ``shell-local`` provisioner (flags: ``toolkit.bake.step``).

It writes an inventory for the one build host (with the environment's
``group_vars``), runs the playbook with SSH pipelining, prints each task as it
runs and the ok/changed/failed counts, and keeps ansible-runner's artifacts
under ``<bake-dir>/ansible/``. A failed run writes ``<bake-dir>/failure.json``
and exits 1 naming the task, the host and Ansible's message.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from toolkit import config as config_mod
from toolkit.bake import secrets, step
from toolkit.errors import ProvisionError
from toolkit.hosts.ssh import SshHost

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
    """An ansible-runner event handler that prints each task and keeps the last failure."""

    def __init__(self, out=sys.stdout, secret_values: dict[str, str] | None = None) -> None:
        self.out = out
        self.secret_values = secret_values or {}
        self.failure: dict | None = None

    def __call__(self, event: dict) -> bool:
        data = event.get("event_data", {})
        kind = event.get("event", "")
        if kind == "playbook_on_task_start":
            self._print(f"TASK {data.get('task', '').strip()}")
        elif kind in ("runner_on_failed", "runner_on_unreachable") and not data.get("ignore_errors"):
            message = secrets.redact(failure_message(data.get("res", {}) or {}), self.secret_values)
            self.failure = {"task": data.get("task", "?"), "host": data.get("host", "?"), "message": _one_line(message)}
            self._print(f"  FAILED on {self.failure['host']}: {self.failure['message']}")
        elif kind == "runner_on_ok" and data.get("res", {}).get("changed"):
            self._print("  changed")
        return True

    def _print(self, line: str) -> None:
        print(secrets.redact(line, self.secret_values), file=self.out, flush=True)


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
    printer = TaskPrinter(out, secret_values)
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
        failure = printer.failure or {"task": "(playbook)", "host": "build-host", "message": _runner_reason(result)}
        raise ProvisionError(
            f"Ansible task '{failure['task']}' failed on {failure['host']}: {failure['message']}",
            f"fix {image.playbook} (artifacts: {private / 'artifacts' / 'provision'})",
        )
    return counts


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
    return f"provisioned: {counts['changed']} change(s)"


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``python -m toolkit.bake.provision``."""
    return step.main("provision", _provision, argv)


if __name__ == "__main__":
    sys.exit(main())
