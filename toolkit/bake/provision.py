"""Provision a build host with the image's playbook through ansible-runner.

Packer runs this as a ``shell-local`` provisioner (flags: ``toolkit.bake.step``).

It writes an inventory for the one build host (with the environment's
``group_vars``), runs the playbook with SSH pipelining, prints each task as it
runs and the ok/changed/failed counts, and keeps ansible-runner's artifacts
under ``<bake-dir>/ansible/``. A failed run writes ``<bake-dir>/failure.json``
and exits 1 naming the task, the host and Ansible's message.

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
import importlib.util
import json
import shutil
import sys
from pathlib import Path
from typing import Callable

from toolkit import config as config_mod
from toolkit.bake import secrets, step
from toolkit.errors import ProvisionError
from toolkit.hosts import ssh
from toolkit.hosts.ssh import SshHost

EXTRA_VARS = "extra-vars.json"  # `invoke bake --var`: written by the pipeline, passed as -e @FILE
LEAKS = "leaks.json"  # files of the artifacts that held a secret's value (redacted since)
RECORD = "provision.json"  # how the playbook ran: strategy, Mitogen's fallback reason, counts
HOST_CLOCK = "host-clock-start"  # the host's clock (epoch s) when provisioning began: the seal scans what changed since
MITOGEN_STRATEGY = "mitogen_linear"
# What a module says when it needs to respawn under another Python, which Mitogen cannot do.
MITOGEN_LIMITS = ("must be installed and visible from", "_module_fqn", "Could not import the python3-apt module",
                  "Could not import the python3-dnf module", "has already been respawned")


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
        secret_values: dict[str, str] | None = None, strategy_plugins: Path | None = None) -> dict:
    """Run the image's playbook on ``host``; return the per-host stats, or raise ProvisionError.

    ``secret_values`` become Ansible variables through a private file that is
    deleted after the run (never through ansible-runner's own files, which
    keep the environment and extra vars among the artifacts).
    ``strategy_plugins`` is where Mitogen's strategy plugins are (default: the
    installed ``ansible_mitogen``'s).
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
        "ANSIBLE_SSH_ARGS": f"-F {_master(host, bake_dir)}",  # the bake's one connection (toolkit.hosts.ssh)
        "ANSIBLE_ROLES_PATH": str(playbook.parent / "roles"),
        "ANSIBLE_NOCOLOR": "True",
    }
    if (cfg.root / "ansible.cfg").is_file():
        envvars["ANSIBLE_CONFIG"] = str(cfg.root / "ansible.cfg")
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
                )

            result, how = run_with_strategy(image.ansible_strategy, envvars, play, private, out, strategy_plugins,
                                            redact=lambda text: secrets.redact(text, secret_values or {}))
    finally:
        _redact_artifacts(private, bake_dir, secret_values or {})
    stats = result.stats or {}
    counts = {k: sum((stats.get(k) or {}).values()) for k in ("ok", "changed", "failures", "dark", "skipped")}
    print(f"PLAY RECAP ok={counts['ok']} changed={counts['changed']} failed={counts['failures']} unreachable={counts['dark']} skipped={counts['skipped']}", file=out, flush=True)
    (bake_dir / RECORD).write_text(json.dumps(dict(how, counts=counts, status=result.status), indent=1, sort_keys=True) + "\n")
    if result.status != "successful":
        failure = printer.failure or {"task": "(playbook)", "host": "build-host", "message": _runner_reason(result)}
        raise ProvisionError(
            f"Ansible task '{failure['task']}' failed on {failure['host']}: {failure['message']}",
            f"fix {image.playbook} (artifacts: {private / 'artifacts' / 'provision'})",
        )
    return counts


def _master(host: SshHost, bake_dir: Path) -> Path:
    """The bake's SSH client config, with its master connection started (``toolkit.hosts.ssh``)."""
    cfg_file = ssh.client_config(bake_dir / "ssh_config", host)
    ssh.open_master(host, cfg_file)
    clock = ssh.run(host, cfg_file, "date +%s", timeout=60)
    if clock.returncode == 0 and clock.stdout.strip().isdigit():
        (bake_dir / HOST_CLOCK).write_text(clock.stdout.strip() + "\n")
    return cfg_file


def run_with_strategy(strategy: str, envvars: dict, play: Callable[[dict], object], private: Path, out,
                      plugins: Path | None = None, redact: Callable[[str], str] = lambda text: text) -> tuple[object, dict]:
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
    if result.status == "successful":
        return None
    events = list(result.events)
    failed = [e for e in events if e.get("event") in ("runner_on_failed", "runner_on_unreachable")
              and not (e.get("event_data") or {}).get("ignore_errors")]
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
    """ansible-playbook's extra arguments: the --var file, then the secrets (which win)."""
    files = [f for f in (bake_dir / EXTRA_VARS, secrets_file) if f is not None and f.is_file()]
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
    with ssh.master_closed_on_error(host, args.bake_dir / "ssh_config"):
        counts = run(cfg, args.image, host, args.bake_dir, secret_values=values)
    return f"provisioned: {counts['changed']} change(s)"


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``python -m toolkit.bake.provision``."""
    return step.main("provision", _provision, argv)


if __name__ == "__main__":
    sys.exit(main())
