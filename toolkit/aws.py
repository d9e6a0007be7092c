"""The one place Rodeo makes AWS clients.

Clients get adaptive retries, the environment's region, and the endpoint and
credentials they are given, otherwise whatever botocore finds itself
(``AWS_ENDPOINT_URL``, ``AWS_PROFILE``, ``AWS_REGION``, SSO, instance roles).
The environment a command works in (``toolkit.environment``) is an ``Aws``.
``explain`` turns botocore's failures into one-line errors; ``once_settled``
retries a call while AWS has not yet seen what it just made.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

import botocore.config
import botocore.exceptions
import botocore.loaders
import botocore.session

from toolkit.errors import AwsError, RodeoError

RETRIES = {"mode": "adaptive", "max_attempts": 10}
# What a failed AWS call raises: AWS's refusal (ClientError), or botocore's own (no credentials, endpoint down, ...).
AWS_ERRORS = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)
# botocore's service models, decoded once: EC2's alone is 4 MB of gzipped JSON, 0.1-0.15 s of every start.
MODEL_CACHE = Path(os.environ.get("RODEO_CACHE_DIR", Path.home() / ".cache" / "rodeo")) / "botocore"
# What AWS answers for a resource made (or freed) a moment ago, before every part of EC2 and Auto Scaling has seen it:
# https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html. Error code -> a fragment its message
# must hold ("": any message). A launch template without ImageId is "fully-formed" too, but never becomes so.
SETTLING = {
    "InvalidGroup.NotFound": "",
    "InvalidSecurityGroupID.NotFound": "",
    "InvalidSnapshot.InUse": "",
    "InvalidLaunchTemplateId.VersionNotFound": "",
    "ValidationError": "fully-formed launch template",
}
SETTLE_SECONDS = 60.0  # AWS's guide: retry "starting with a couple of seconds ... up to a few minutes"
T = TypeVar("T")


@dataclass
class Aws:
    """Clients for one environment, made on first use and cached."""

    region: str
    endpoint: str | None = None
    profile: str | None = None
    credentials: dict | None = None  # botocore's aws_access_key_id, ...: a given principal (default: botocore's chain)
    _clients: dict = field(default_factory=dict, repr=False)

    def client(self, service: str, region: str | None = None) -> Any:
        """A botocore client for ``service`` in ``region`` (default: the environment's), made once per ``Aws``.

        botocore's own session, not boto3's: the same clients, without loading
        boto3's resources and s3transfer (0.1-0.2 s of every command's start).
        The session is this process's for the profile and the ``AWS_*``
        environment (``_session``); each ``Aws`` has clients of its own, so an
        event handler one registers on its client reaches no other.
        """
        region = region or self.region
        key = (service, region)
        made = self._clients.get(key)
        if made is not None:
            return made
        with _SESSION_LOCK:
            if key not in self._clients:
                session = _session(self.profile)
                creds = self.credentials or {}
                cfg = botocore.config.Config(retries=retries(session), connect_timeout=5, read_timeout=60)
                self._clients[key] = session.create_client(
                    service, region_name=region, endpoint_url=self.endpoint, config=cfg, **creds
                )
            return self._clients[key]

    def env(self) -> dict[str, str]:
        """Environment variables that point a child process (Packer) at the same account."""
        out = {"AWS_REGION": self.region, "AWS_DEFAULT_REGION": self.region}
        creds = self.credentials
        if creds:
            out.update(
                AWS_ACCESS_KEY_ID=creds["aws_access_key_id"], AWS_SECRET_ACCESS_KEY=creds["aws_secret_access_key"]
            )
            if creds.get("aws_session_token"):
                out["AWS_SESSION_TOKEN"] = creds["aws_session_token"]
        if self.endpoint:
            out["AWS_ENDPOINT_URL"] = self.endpoint
        if self.profile:
            out["AWS_PROFILE"] = self.profile
        return out


# botocore sessions are not safe to use from several threads at once (bakes running in parallel): clients are made
# one at a time. A client, once made, is safe to share.
_SESSION_LOCK = threading.Lock()
_SESSIONS: dict[tuple, Any] = {}


def _session(profile: str | None) -> Any:
    """This process's botocore session for ``profile`` and the ``AWS_*`` environment variables as they are now.

    A session costs about 6 ms to make and its first client twice a later
    one's (its endpoint and partition data): a test or command that makes
    many ``Aws`` made as many sessions. Keyed by the environment too, so a
    changed ``AWS_PROFILE``, ``AWS_CONFIG_FILE`` or key gets a session that
    reads it, as a new session would. Call under ``_SESSION_LOCK``.
    """
    key = (profile, tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_"))))
    session = _SESSIONS.get(key)
    if session is None:
        session = _SESSIONS[key] = botocore.session.Session(profile=profile)
        _cache_models(session, MODEL_CACHE)
    return session


def retries(session: Any) -> dict:
    """Rodeo's retry settings, except where the user set their own (``AWS_MAX_ATTEMPTS``, ``AWS_RETRY_MODE``, or the profile's)."""
    try:
        profile = session.get_scoped_config()
    except botocore.exceptions.ProfileNotFound:
        profile = {}
    out = dict(RETRIES)
    for key, variable in (("mode", "retry_mode"), ("max_attempts", "max_attempts")):
        if os.environ.get(f"AWS_{variable.upper()}") or profile.get(variable):
            del out[key]  # botocore applies the user's
    return out


class _CachedModels(botocore.loaders.JSONFileLoader):
    """botocore's data files, kept decoded in ``folder`` (marshal: plain data, loads 5x faster than JSON).

    Keyed by the file's path, size and mtime, so a botocore upgrade reads its own files.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def load_file(self, file_path):
        source = next((file_path + ext for ext in (".json", ".json.gz") if os.path.isfile(file_path + ext)), None)
        if source is None:
            return None
        st = os.stat(source)
        cached = self.folder / (
            hashlib.sha256(f"{source}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:32] + ".marshal"
        )
        try:
            return marshal.loads(cached.read_bytes())
        except (OSError, EOFError, ValueError, TypeError):
            pass
        data = _plain(super().load_file(file_path))
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp = cached.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(marshal.dumps(data))
            tmp.replace(cached)
        except (OSError, ValueError):
            pass  # a read-only cache: decode each time, as botocore does
        return data


def _plain(value: Any) -> Any:
    """botocore's OrderedDicts as dicts (which keep their order): what marshal can write."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


_LOADERS: dict[tuple, Any] = {}  # (folder, AWS_DATA_PATH) -> the loader every session of this process shares


def _cache_models(session: Any, folder: Path) -> None:
    """Give ``session`` this process's loader, reading the decoded-model cache (botocore's own loading if its layout differs).

    One loader for every session: it keeps each model it loaded (botocore's
    loaders cache per instance), so a process that makes many sessions (a
    test, a long command) decodes EC2's model once, not once a session.
    """
    key = (folder, session.get_config_variable("data_path"))
    try:
        loader = _LOADERS.get(key)
        if loader is None:
            loader = botocore.loaders.create_loader(key[1])
            loader.file_loader = _CachedModels(folder)
            loader = _LOADERS.setdefault(key, loader)
        session.register_component("data_loader", loader)
    except Exception:
        pass


def explain(exc: BaseException) -> RodeoError | None:
    """A one-line RodeoError for a botocore failure, or None if it is not one."""
    e = botocore.exceptions
    if isinstance(exc, (e.NoCredentialsError, e.PartialCredentialsError)):
        return AwsError("no AWS credentials found", "set AWS_PROFILE (or run 'aws sso login'), or use --env local")
    if isinstance(exc, e.ProfileNotFound):
        return AwsError(str(exc), "check AWS_PROFILE or 'profile:' in rodeo.yml against ~/.aws/config")
    if isinstance(exc, (e.EndpointConnectionError, e.ConnectTimeoutError, e.ConnectionClosedError)):
        return AwsError(
            f"AWS is unreachable: {exc}",
            "check the network, AWS_ENDPOINT_URL, or run 'invoke local.up' for the local stack",
        )
    if isinstance(exc, e.TokenRetrievalError) or isinstance(exc, e.SSOError):
        return AwsError(f"AWS login expired: {exc}", "run 'aws sso login' and try again")
    if isinstance(exc, e.ClientError):
        err = exc.response.get("Error", {})
        code, msg = err.get("Code", "Error"), err.get("Message", "")
        op = getattr(exc, "operation_name", "an AWS call")
        if code in (
            "UnauthorizedOperation",
            "AccessDenied",
            "AccessDeniedException",
            "UnrecognizedClientException",
            "InvalidClientTokenId",
        ):
            return AwsError(
                f"AWS refused {op}: {code}",
                "the credentials lack this permission; grant it to the role or pick another AWS_PROFILE",
            )
        return AwsError(f"AWS {op} failed: {code}: {msg}", "fix the cause above and run the command again")
    if isinstance(exc, e.BotoCoreError):
        return AwsError(f"AWS call failed: {exc}", "run again with --debug for details")
    return None


def settling(exc: BaseException) -> bool:
    """True when ``exc`` is AWS saying a resource made a moment ago is not visible yet (see ``SETTLING``)."""
    fragment = SETTLING.get(error_code(exc))
    if fragment is None:
        return False
    message = exc.response.get("Error", {}).get("Message", "")  # type: ignore[attr-defined]
    return fragment in message and "parameter ImageId" not in message


def once_settled(
    call: Callable[[], T],
    timeout: float = SETTLE_SECONDS,
    first_delay: float = 0.1,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """``call()``, repeated while AWS answers that what it uses was made a moment ago (``settling``).

    Backs off from ``first_delay`` (doubling, at most 5 s) for up to
    ``timeout`` seconds, then lets the last refusal through. Any other
    failure is raised at once.
    """
    deadline, delay = clock() + timeout, first_delay
    while True:
        try:
            return call()
        except botocore.exceptions.ClientError as exc:
            if not settling(exc) or clock() + delay > deadline:
                raise
        sleep(delay)
        delay = min(delay * 2, 5.0)


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ClientError, or ''."""
    if isinstance(exc, botocore.exceptions.ClientError):
        return exc.response.get("Error", {}).get("Code", "")
    return ""
