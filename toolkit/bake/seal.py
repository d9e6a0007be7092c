"""Seal a verified build host before Packer snapshots it.

Packer runs this as the last ``shell-local`` provisioner (same flags as
``toolkit.bake.provision``). It fails the bake, before any AMI exists, when a
secret's value or the bake's private key is found on the build instance, or a
secret's value in the bake's artifacts. Then it removes what must not be
baked into the image: the bake's authorized key (the instance's only way in
for this bake) and the SSH host keys (each instance makes its own at first
boot).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from toolkit.bake import secrets, step
from toolkit.bake.provision import LEAKS
from toolkit.bake.source import APP_DIR
from toolkit.errors import VerifyError
from toolkit.hosts import HOST_DIRS, ssh
from toolkit.hosts.ssh import SshHost

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


def scan_host(host: SshHost, cfg_file: Path, needles: dict[str, str]) -> list[tuple[str, str]]:
    """(what, path) for every file on the build host holding one of ``needles``' values."""
    if not needles:
        return []
    skip = " ".join(f"--exclude-dir={d}" for d in SKIP_DIRS)  # grep matches these by name
    found = []
    for what, value in needles.items():
        # One value at a time, through stdin: never on a command line, where `ps` shows it.
        proc = ssh.run(host, cfg_file, f"sudo -n grep -rlsF {skip} -f - / || true", stdin=value + "\n")
        if proc.returncode != 0:
            raise VerifyError(f"could not scan the build host: {proc.stderr.strip()}", "check sudo for the SSH user")
        found += [(what, path) for path in proc.stdout.splitlines() if path.strip()]
    return found


def seal(host: SshHost, bake_dir: Path, values: dict[str, str]) -> None:
    """Scan for secrets and the bake key, then remove the bake's SSH access; VerifyError if unsafe."""
    cfg_file = ssh.client_config(bake_dir / "ssh_config", host)
    needles = {f"secret {name}": value for name, value in values.items()}
    needles.update(key_markers(host.key))
    leaks = scan_host(host, cfg_file, needles)
    if leaks:
        what, path = leaks[0]
        raise VerifyError(f"{what} was found on the build instance in {path}", "do not write it into the image; mark the task no_log and use it only at build time")
    leaked = _leaks(bake_dir) + [{"file": str(p.relative_to(bake_dir)), "secrets": [n]} for n, p in secrets.find_in_files(bake_dir, values, skip=("ssh_key", APP_DIR, *HOST_DIRS))]
    if leaked:
        first = leaked[0]
        raise VerifyError(f"secret {first['secrets'][0]} was written to the bake's artifacts ({first['file']}; redacted there since)",
                          "mark the Ansible tasks that use it no_log: true")
    proc = ssh.run(host, cfg_file, f"sudo -n sh -s -- {host.user} rodeo-{bake_dir.name}", stdin=SCRUB)
    if proc.returncode != 0:
        raise VerifyError(f"could not remove the bake's SSH key from the build instance: {proc.stderr.strip()}", "check sudo for the SSH user")


def _leaks(bake_dir: Path) -> list[dict]:
    """What the provision step found (and redacted) in its artifacts."""
    try:
        return json.loads((bake_dir / LEAKS).read_text())
    except (OSError, ValueError):
        return []


def _seal(args, host: SshHost, values: dict[str, str]) -> str:
    seal(host, args.bake_dir, values)
    return f"no secret or bake key found ({len(values)} secret(s) scanned); bake key and host keys removed"


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``python -m toolkit.bake.seal``."""
    return step.main("seal", _seal, argv)


if __name__ == "__main__":
    sys.exit(main())
