#!/usr/bin/python3
"""Rodeo's config loader: this release's config vars, from SSM Parameter Store into an EnvironmentFile.

Runs once at boot (rodeo-config.service), before the app. It reads the
instance's user data from the metadata service (IMDSv2), where a Rodeo
release names its config version and each key's SSM parameter with its
version (``{"rodeo": {"config_version": 3, "config_parameters": ["/rodeo/web/prod/GREETING:2"]}}``),
fetches exactly those versions (GetParameters, decrypted, 10 a call) with the
instance role's credentials (the SDK's default chain), and writes them as
``KEY="value"`` lines to the environment file (default
``/run/rodeo-config/config.env``: memory, so a secret never reaches the disk),
owned by root, group ``RODEO_CONFIG_GROUP`` (the app's user), mode 0640,
replaced atomically. The parameters are read in the instance's region, or in
the one the user data names (``config_region``: a release in waves keeps the
config in its first region). No user data, none of Rodeo's, or no config: an empty
file. No credentials yet (the instance profile's are served a little after
boot), or AWS not reachable yet: tried again with a backoff (1, 2, 4, 8, then
10 s) for up to a minute; then it exits non-zero, and systemd starts it again
(``Restart=on-failure``, a bounded number of times) while the app waits. Any
other failure to fetch exits non-zero at once, so the app (which requires this
unit) does not start with missing config.

It logs keys, never values. ``AWS_ENDPOINT_URL``, when set, is the AWS
endpoint (Debian 12's botocore predates reading it itself). Only the
standard library and Debian's python3-boto3 (its botocore, imported only
when there is config to fetch).
"""

from __future__ import annotations

import grp
import json
import os
import re
import sys
import tempfile
import time
import urllib.error
import urllib.request

IMDS = "http://169.254.169.254"
OUT = os.environ.get("RODEO_CONFIG_FILE", "/run/rodeo-config/config.env")
GROUP = os.environ.get("RODEO_CONFIG_GROUP", "root")
KEY_RE = re.compile(r"^[A-Z_][A-Z0-9_]*$")
REF_RE = re.compile(r"^(/[A-Za-z0-9_.\-/]+/([A-Z_][A-Z0-9_]*)):([0-9]+)$")
BATCH = 10  # GetParameters takes at most 10 names a call
WAIT_SECONDS = (
    60  # for the metadata service and AWS to answer at boot (then systemd restarts the unit: Restart=on-failure)
)
BACKOFF_FIRST, BACKOFF_MAX = 1.0, 10.0  # seconds between tries of AWS: doubling from the first, at most the max


class LoadError(Exception):
    """Config could not be loaded; the message names keys, never values."""


def references(user_data: bytes | None) -> tuple[int, list[tuple[str, str, int]]]:
    """``(config version, [(parameter name, key, version), ...])`` named by ``user_data``; ``(0, [])`` when it names none."""
    rodeo = _rodeo(user_data)
    if rodeo is None:
        return 0, []  # not Rodeo's user data (a script, or none)
    refs = []
    for ref in rodeo.get("config_parameters") or []:
        found = REF_RE.match(str(ref))
        if not found:
            raise LoadError(f"user data names a malformed config parameter: {ref!r}")
        refs.append((found.group(1), found.group(2), int(found.group(3))))
    keys = [k for _, k, _ in refs]
    if len(set(keys)) != len(keys):
        raise LoadError(f"user data names a config key twice: {sorted(k for k in keys if keys.count(k) > 1)[0]}")
    return int(rodeo.get("config_version") or 0), refs


def config_region(user_data: bytes | None) -> str | None:
    """The region holding the config vars (``config_region``: rodeo.yml's ``region:`` in a release in waves), or None: this one."""
    region = (_rodeo(user_data) or {}).get("config_region")
    return region if isinstance(region, str) and re.match(r"^[a-z]{2}(-[a-z]+)+-[0-9]$", region) else None


def _rodeo(user_data: bytes | None) -> dict | None:
    """The ``rodeo`` object of the user data (JSON), or None when it is not Rodeo's (a script, or none)."""
    try:
        doc = json.loads(user_data or b"")
    except ValueError:
        return None
    rodeo = doc.get("rodeo") if isinstance(doc, dict) else None
    return rodeo if isinstance(rodeo, dict) else None


def quote(value: str) -> str:
    """``value`` double-quoted for a systemd EnvironmentFile: ``\\``, ``"``, `````, ``$`` escaped; newlines kept inside the quotes."""
    if "\0" in value:
        raise ValueError("an environment variable cannot hold a NUL character")
    return '"' + re.sub(r'([\\"`$])', r"\\\1", value) + '"'


def render(values: dict[str, str], version: int) -> str:
    """The environment file's text for ``values`` (key -> value)."""
    lines = [f"# Rodeo config vars, config version {version}: written at boot by rodeo-config.service; do not edit"]
    for key in sorted(values):
        if not KEY_RE.match(key):
            raise LoadError(f"config key {key!r} is not an environment variable name")
        lines.append(f"{key}={quote(values[key])}")
    return "\n".join(lines) + "\n"


def fetch(ssm, refs: list[tuple[str, str, int]]) -> dict[str, str]:
    """key -> value of each referenced parameter version (decrypted), 10 names a call."""
    wanted = {f"{name}:{version}": (name, key, version) for name, key, version in refs}
    names = sorted(wanted)
    out = {}
    for start in range(0, len(names), BATCH):
        answer = ssm.get_parameters(Names=names[start : start + BATCH], WithDecryption=True)
        if answer.get("InvalidParameters"):
            raise LoadError(f"SSM has no such parameter version: {', '.join(sorted(answer['InvalidParameters']))}")
        for param in answer["Parameters"]:
            name = param["Name"].split(":")[0]
            ref = next((r for r in wanted.values() if r[0] == name), None)
            if ref is None or int(param["Version"]) != ref[2]:
                raise LoadError(
                    f"SSM answered {name} version {param.get('Version')}, not a version the user data names"
                )
            out[ref[1]] = param["Value"]
    absent = sorted({k for _, k, _ in refs} - set(out))
    if absent:
        raise LoadError(f"SSM did not answer for {', '.join(absent)}")
    return out


def write(path: str, text: str, group: str) -> None:
    """Replace ``path`` with ``text`` atomically: root-owned, group ``group``, mode 0640, never readable by others."""
    gid = grp.getgrnam(group).gr_gid
    folder = os.path.dirname(path)
    os.makedirs(folder, mode=0o755, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".config.env.")  # 0600 from the start
    try:
        os.fchown(fd, 0, gid)
        os.fchmod(fd, 0o640)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _imds(path: str, token: str | None, method: str = "GET") -> bytes | None:
    """The metadata service's answer for ``path``, None on 404."""
    headers = (
        {"X-aws-ec2-metadata-token-ttl-seconds": "300"}
        if method == "PUT"
        else {"X-aws-ec2-metadata-token": token or ""}
    )
    request = urllib.request.Request(IMDS + path, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=2) as answer:
            return answer.read()
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def _patiently(what: str, call, deadline: float):
    """``call()``, again every second on a connection failure until ``deadline`` (the network may still be coming up)."""
    while True:
        try:
            return call()
        except (OSError, urllib.error.URLError) as exc:
            if time.monotonic() >= deadline:
                raise LoadError(f"{what}: {exc}") from None
            time.sleep(1)


def load(out: str = OUT, group: str = GROUP) -> str:
    """Fetch this instance's config and write the environment file; returns what to log."""
    deadline = time.monotonic() + WAIT_SECONDS
    token = _patiently(
        "the metadata service did not answer", lambda: _imds("/latest/api/token", None, "PUT").decode(), deadline
    )
    user_data = _patiently("the metadata service did not answer", lambda: _imds("/latest/user-data", token), deadline)
    version, refs = references(user_data)
    values = {}
    if refs:
        region = (
            config_region(user_data)
            or _patiently(
                "the metadata service did not answer",
                lambda: _imds("/latest/meta-data/placement/region", token),
                deadline,
            ).decode()
        )
        values = _from_ssm(refs, region, deadline)
    write(out, render(values, version), group)
    return f"config version {version}: {len(values)} config var(s) written to {out}" + (
        f" ({', '.join(sorted(values))})" if values else ""
    )


def _from_ssm(refs: list[tuple[str, str, int]], region: str, deadline: float) -> dict[str, str]:
    import botocore.config  # botocore's own session: boto3's client, without importing boto3 and s3transfer at boot
    import botocore.exceptions
    import botocore.session

    e = botocore.exceptions
    config = botocore.config.Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=3, read_timeout=10)

    def attempt() -> dict[str, str]:
        # A new session each time: one that found no credentials (the instance profile's are served a few
        # seconds after boot) keeps none, and its client would fail the same way forever.
        ssm = botocore.session.get_session().create_client(
            "ssm", region_name=region, endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None, config=config
        )
        return fetch(ssm, refs)

    try:
        return with_backoff(
            attempt,
            (
                e.NoCredentialsError,
                e.PartialCredentialsError,
                e.CredentialRetrievalError,
                e.EndpointConnectionError,
                e.ConnectTimeoutError,
                e.ReadTimeoutError,
                e.ConnectionClosedError,
            ),
            deadline,
        )
    except e.NoCredentialsError:
        raise LoadError(
            f"no AWS credentials after {WAIT_SECONDS}s: give the instances an instance profile whose role may "
            "ssm:GetParameters (and kms:Decrypt for secrets)"
        ) from None
    except e.BotoCoreError as exc:
        raise LoadError(f"AWS did not answer: {exc}") from None
    except e.ClientError as exc:
        err = exc.response.get("Error", {})
        raise LoadError(f"SSM refused GetParameters: {err.get('Code')}: {err.get('Message')}") from None


def with_backoff(call, retryable: tuple, deadline: float):
    """``call()``, again after 1, 2, 4, 8, then every 10 s while it raises one of ``retryable``; the last error once
    the next try would start after ``deadline`` (AWS credentials and endpoints can lag the network at first boot)."""
    delay = BACKOFF_FIRST
    while True:
        try:
            return call()
        except retryable as exc:
            if time.monotonic() + delay > deadline:
                raise
            print(f"rodeo-config: {type(exc).__name__}: {exc}; trying again in {delay:g}s", file=sys.stderr, flush=True)
            time.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)


def main() -> int:
    try:
        print(f"rodeo-config: {load()}", flush=True)
        return 0
    except Exception as exc:  # anything: the unit fails and the app does not start (messages name keys, never values)
        print(
            f"rodeo-config: config not loaded, the app must not start: {type(exc).__name__}: {exc}",
            file=sys.stderr,
            flush=True,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
