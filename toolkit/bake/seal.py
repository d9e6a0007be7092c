"""Seal a verified build host before Packer snapshots it.

Runs here, as the last of the bake's steps (``toolkit.bake.ssh_steps``; alone,
the same flags as ``toolkit.bake.provision``), over SSH. It fails the bake, before any AMI exists, when a
secret's value or the bake's private key is found on the build instance, or a
secret's value in the bake's artifacts. Then it removes what must not be
baked into the image: the bake's authorized key from every home, root's
included (on EC2, cloud-init writes the key pair's key into both), the SSH
host keys (each instance makes its own at first boot), Ansible's empty temp
folders, cloud-init's per-instance state and logs (``cloud-init clean``, so
every instance of the image runs it afresh), apt's downloaded packages and
binary caches (``apt-get clean``) and the machine id; it fails
when the key is still in any home, and ends the bake's SSH master
connection.

The scan reads the files whose status changed since the bake began (their
ctime, which no program can set back), not the whole disk: a secret or the
key reaches the host only during the bake. It looks for every value in one
pass, on the host, with the values sent through stdin, never on a command
line. Without the bake's start time, or when the host's clock went back, it
reads every file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from toolkit import secrets
from toolkit.bake import runner
from toolkit.bake.provision import HOST_CLOCK, LEAKS
from toolkit.bake.source import APP_DIR
from toolkit.errors import VerifyError
from toolkit.hosts import HOST_DIRS, ssh
from toolkit.hosts.ssh import SshHost

SKIP_DIRS = ("/proc", "/sys", "/dev", "/run")
CLOCK_MARGIN = 5  # seconds before the bake's start that still count as "changed during the bake"
# Runs as root on the build host with python3 (which Ansible needs there too). stdin: {"needles":
# [[what, value], ...], "since": epoch or null, "skip": [dirs]}; stdout: one JSON [what, path] a line.
SCAN = r"""
import json, os, subprocess, sys, time
args = json.load(sys.stdin)
needles = [(what, value.encode()) for what, value in args["needles"] if value]
since, skip = args["since"], args["skip"]
if since and time.time() < since + args["margin"]:
    since = None  # the clock went back since the bake began: read everything

def changed():
    cmd = ["find", "/"]
    for d in skip:
        cmd += ["-path", d, "-prune", "-o"]
    cmd += ["-type", "f"] + (["-newerct", "@%d" % since] if since else []) + ["-print0"]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    if proc.returncode == 0 or proc.stdout:
        return [p for p in proc.stdout.split(b"\0") if p]
    found = []  # a find without -newerct (busybox): walk, and compare ctimes here
    for top, dirs, files in os.walk(b"/"):
        dirs[:] = [d for d in dirs if os.path.join(top, d).decode(errors="replace") not in skip]
        for name in files:
            path = os.path.join(top, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if os.path.stat.S_ISREG(st.st_mode) and (not since or st.st_ctime >= since):
                found.append(path)
    return found

overlap = max([len(v) for _, v in needles] + [1]) - 1
for path in changed():
    hits, tail = set(), b""
    try:
        with open(path, "rb") as fh:
            while len(hits) < len({what for what, _ in needles}):
                chunk = fh.read(1 << 20)
                if not chunk:
                    break
                data = tail + chunk
                hits.update(what for what, value in needles if value in data)
                tail = data[-overlap:] if overlap else b""
    except OSError:
        continue
    for what in sorted(hits):
        print(json.dumps([what, path.decode(errors="replace")]))
"""
# Runs as root on the build host: $1 the SSH user, $2 the bake key's comment (its EC2 key pair's name), $3 its
# base64 body (a key the instance's metadata served carries the key pair's name, whatever comment it was made with).
# Every home's authorized_keys loses the bake key, root's too: cloud-init writes it there as well, behind its
# disable_root "Please login as the user ..." command. Exit 3: the key is still somewhere; 4: cloud-init clean failed.
SCRUB = r"""
set -e
user=$1 name=$2 body=$3
set -- -e "$name"
[ -z "$body" ] || set -- "$@" -e "$body"
homes=$( { getent passwd | cut -d: -f6; echo /root; } | sort -u)
echo "$homes" | while IFS= read -r h; do
  for keys in "$h/.ssh/authorized_keys" "$h/.ssh/authorized_keys2"; do
    [ -f "$keys" ] || continue
    grep -vF "$@" -- "$keys" > "$keys.rodeo" || true
    if [ -s "$keys.rodeo" ]; then cat "$keys.rodeo" > "$keys"; else rm -f "$keys"; fi
    rm -f "$keys.rodeo"
  done
done
rm -f /etc/ssh/ssh_host_*
# Ansible's remote temp folders (Mitogen's for root too), when empty: provisioning leftovers, not image content.
home=$(getent passwd "$user" | cut -d: -f6)
for h in "$home" /root; do rmdir "$h/.ansible/tmp" "$h/.ansible" 2>/dev/null || true; done
if command -v cloud-init >/dev/null; then
  # Its first boot must be over (it writes keys and users), then its per-instance state goes, so every
  # instance of the image runs it afresh: users, keys, host keys.
  # (only under a running systemd: elsewhere, a chroot, its boot stages never run and --wait never returns).
  [ ! -d /run/systemd/system ] || timeout 300 cloud-init status --wait >/dev/null 2>&1 || true
  cloud-init clean --logs >&2 || { echo "cloud-init clean failed" >&2; exit 4; }
fi
# apt's downloaded packages and binary caches (var/cache/apt/*.bin): derived files apt rebuilds at need, whose
# bytes embed when they were built, so two bakes of one playbook would differ. As Packer templates do: apt-get clean.
! command -v apt-get >/dev/null || apt-get clean
# Each instance makes its own machine id; an empty file (as Debian's cloud images ship it), not none: a missing
# one makes systemd's next boot a "first boot", which presets every unit (re-enabling what a playbook disabled).
[ ! -s /etc/machine-id ] || : > /etc/machine-id
left=$(echo "$homes" | while IFS= read -r h; do [ ! -d "$h/.ssh" ] || grep -rlsF "$@" -- "$h/.ssh" || true; done)
left="$left$(grep -rlsF "$@" -- /root /home /etc/ssh || true)"
if [ -n "$left" ]; then echo "the bake key is still in $(echo "$left" | sort -u | tr '\n' ' ')" >&2; exit 3; fi
"""


def key_markers(key: Path) -> dict[str, str]:
    """A line of the bake's private key to scan for.

    Not the first line: every OpenSSH key of a type starts with the same
    header. The last-but-one line of the base64 body holds private bytes.
    """
    lines = [ln.strip() for ln in key.read_text().splitlines() if ln.strip() and not ln.startswith("-----")]
    return {"the bake's private SSH key": lines[-2]} if len(lines) >= 2 else {}


def public_key_body(key: Path) -> str:
    """The base64 body of ``key``'s public half (``key.pub``), or "" when there is none."""
    try:
        fields = key.with_suffix(".pub").read_text().split()
    except OSError:
        return ""
    return fields[1] if len(fields) >= 2 else ""


def scan_host(
    host: SshHost, cfg_file: Path, needles: list[tuple[str, str]], since: int | None = None
) -> list[tuple[str, str]]:
    """(what, path) for every file on the build host holding one of ``needles``' (what, value) values.

    ``since``: only files whose status changed at or after this time of the
    host's clock (epoch seconds), unless the clock is now before it; None
    reads every file.
    """
    if not needles:
        return []
    request = json.dumps({"needles": needles, "since": since, "margin": CLOCK_MARGIN, "skip": list(SKIP_DIRS)})
    proc = ssh.run(host, cfg_file, f"sudo -n python3 -c {_quote(SCAN)}", stdin=request + "\n")
    if proc.returncode != 0:
        raise VerifyError(
            f"could not scan the build host: {proc.stderr.strip()}", "check sudo and python3 for the SSH user"
        )
    return [tuple(json.loads(line)) for line in proc.stdout.splitlines() if line.strip()]


def scan_start(bake_dir: Path) -> int | None:
    """The host's clock when the bake began, less a margin (written by the provision step), or None."""
    try:
        return int((bake_dir / HOST_CLOCK).read_text().strip()) - CLOCK_MARGIN
    except (OSError, ValueError):
        return None


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def seal(host: SshHost, bake_dir: Path, values: dict[str, str]) -> None:
    """Scan for secrets and the bake key, then remove the bake's SSH access; VerifyError if unsafe."""
    cfg_file = ssh.client_config(bake_dir / "ssh_config", host)
    needles = [(f"secret {name}", form) for name, form in secrets.needles(values)] + list(key_markers(host.key).items())
    leaks = scan_host(host, cfg_file, needles, scan_start(bake_dir))
    if leaks:
        what, path = leaks[0]
        raise VerifyError(
            f"{what} was found on the build instance in {path}",
            "do not write it into the image; mark the task no_log and use it only at build time",
        )
    leaked = _leaks(bake_dir) + [
        {"file": str(p.relative_to(bake_dir)), "secrets": [n]}
        for n, p in secrets.find_in_files(bake_dir, values, skip=("ssh_key", APP_DIR, *HOST_DIRS))
    ]
    if leaked:
        first = leaked[0]
        raise VerifyError(
            f"secret {first['secrets'][0]} was written to the bake's artifacts ({first['file']}; redacted there since)",
            "mark the Ansible tasks that use it no_log: true",
        )
    proc = ssh.run(
        host, cfg_file, f"sudo -n sh -s -- {host.user} rodeo-{bake_dir.name} {public_key_body(host.key)}", stdin=SCRUB
    )
    ssh.close_master(host, cfg_file)  # the bake's last use of the host: the session ends, Packer stops it
    if proc.returncode != 0:
        said = proc.stderr.strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
        raise VerifyError(
            f"could not seal the build instance: {said[0]}",
            "check sudo for the SSH user; every home's authorized_keys must lose the bake key",
        )


def _leaks(bake_dir: Path) -> list[dict]:
    """What the provision step found (and redacted) in its artifacts."""
    try:
        return json.loads((bake_dir / LEAKS).read_text())
    except (OSError, ValueError):
        return []


def run_step(args, host: SshHost, values: dict[str, str]) -> str:
    """The seal step: no secret or bake key left on the build host; the bake key and host keys removed."""
    with ssh.master_closed_on_error(host, args.bake_dir / "ssh_config"):
        seal(host, args.bake_dir, values)
    return f"no secret or bake key found ({len(values)} secret(s) scanned); bake key and host keys removed"


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``python -m toolkit.bake.seal``."""
    return runner.main("seal", run_step, argv, "toolkit.bake.seal")


if __name__ == "__main__":
    sys.exit(main())
