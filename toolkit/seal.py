"""Seal a verified build host before Packer snapshots it.

Packer runs this as the last ``shell-local`` provisioner (same flags as
``toolkit.provision``). It fails the bake, before any AMI exists, when a
secret's value or the bake's private key is found on the build instance, or a
secret's value in the bake's artifacts. Then it removes what must not be
baked into the image: the bake's authorized key (the instance's only way in
for this bake) and the SSH host keys (each instance makes its own at first
boot).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from toolkit import secrets
from toolkit.errors import VerifyError
from toolkit.provision import BuildHost, step_main
from toolkit.verify import ssh_config

SKIP_DIRS = ("proc", "sys", "dev", "run")
# Runs as root on the build host: $1 user, $2 the bake key's comment.
SCRUB = r"""
set -e
home=$(getent passwd "$1" | cut -d: -f6)
keys="$home/.ssh/authorized_keys"
if [ -f "$keys" ]; then
  grep -vF -- "$2" "$keys" > "$keys.rodeo" || true
  if [ -s "$keys.rodeo" ]; then cat "$keys.rodeo" > "$keys"; else rm -f "$keys"; fi
  rm -f "$keys.rodeo"
fi
rm -f /etc/ssh/ssh_host_*
if grep -rqsF -- "$2" /root /home /etc/ssh; then echo "bake key still present" >&2; exit 3; fi
"""


def key_markers(key: Path) -> dict[str, str]:
    """A line of the bake's private key to scan for.

    Not the first line: every OpenSSH key of a type starts with the same
    header. The last-but-one line of the base64 body holds private bytes.
    """
    lines = [ln.strip() for ln in key.read_text().splitlines() if ln.strip() and not ln.startswith("-----")]
    return {"the bake's private SSH key": lines[-2]} if len(lines) >= 2 else {}


def ssh(host: BuildHost, cfg_file: Path, command: str, stdin: str = "") -> subprocess.CompletedProcess:
    """Run ``command`` on the build host with the bake key."""
    return subprocess.run(
        ["ssh", "-F", str(cfg_file), "-p", str(host.port), f"{host.user}@{host.host}", command],
        input=stdin, capture_output=True, text=True, timeout=600,
    )


def scan_host(host: BuildHost, cfg_file: Path, needles: dict[str, str]) -> list[tuple[str, str]]:
    """(what, path) for every file on the build host holding one of ``needles``' values."""
    if not needles:
        return []
    skip = " ".join(f"--exclude-dir={d}" for d in SKIP_DIRS)  # grep matches these by name
    found = []
    for what, value in needles.items():
        # One value at a time, through stdin: never on a command line, where `ps` shows it.
        proc = ssh(host, cfg_file, f"sudo -n grep -rlsF {skip} -f - / || true", stdin=value + "\n")
        if proc.returncode != 0:
            raise VerifyError(f"could not scan the build host: {proc.stderr.strip()}", "check sudo for the SSH user")
        found += [(what, path) for path in proc.stdout.splitlines() if path.strip()]
    return found


def seal(host: BuildHost, bake_dir: Path, values: dict[str, str]) -> None:
    """Scan for secrets and the bake key, then remove the bake's SSH access; VerifyError if unsafe."""
    cfg_file = ssh_config(bake_dir / "ssh_config", host)
    needles = {f"secret {name}": value for name, value in secrets.scannable(values).items()}
    needles.update(key_markers(host.key))
    leaks = scan_host(host, cfg_file, needles)
    if leaks:
        what, path = leaks[0]
        raise VerifyError(f"{what} was found on the build instance in {path}", "do not write it into the image; mark the task no_log and use it only at build time")
    in_artifacts = secrets.find_in_files(bake_dir, values, skip=("ssh_key",))
    if in_artifacts:
        name, path = in_artifacts[0]
        raise VerifyError(f"secret {name} was written to the bake's artifacts ({path.relative_to(bake_dir)})", "mark the Ansible tasks that use it no_log: true")
    proc = ssh(host, cfg_file, f"sudo -n sh -s -- {host.user} rodeo-{bake_dir.name}", stdin=SCRUB)
    if proc.returncode != 0:
        raise VerifyError(f"could not remove the bake's SSH key from the build instance: {proc.stderr.strip()}", "check sudo for the SSH user")


def _seal(args, host: BuildHost, values: dict[str, str]) -> str:
    seal(host, args.bake_dir, values)
    return f"sealed: no secret or bake key found ({len(secrets.scannable(values))} secret(s) scanned); bake key and host keys removed"


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``python -m toolkit.seal``."""
    return step_main("seal", _seal, argv)


if __name__ == "__main__":
    sys.exit(main())
