"""The one place Rodeo makes AWS clients.

Clients get adaptive retries, the environment's region, and the endpoint:
the local stack's moto server for ``stack: local``, otherwise whatever botocore
finds itself (``AWS_ENDPOINT_URL``, ``AWS_PROFILE``, ``AWS_REGION``, SSO,
instance roles). ``explain`` turns botocore's failures into one-line errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import botocore.config
import botocore.exceptions
import botocore.session

from toolkit.errors import AwsError, RodeoError

RETRIES = {"mode": "adaptive", "max_attempts": 10}
# moto accepts any credentials; these keep a developer's real ones out of it.
LOCAL_CREDENTIALS = {"aws_access_key_id": "rodeo-local", "aws_secret_access_key": "rodeo-local"}


@dataclass
class Aws:
    """Clients for one environment, made on first use and cached."""

    region: str
    endpoint: str | None = None
    profile: str | None = None
    local: bool = False
    _session: Any = field(default=None, repr=False)
    _clients: dict = field(default_factory=dict, repr=False)

    def client(self, service: str, region: str | None = None) -> Any:
        """A botocore client for ``service`` in ``region`` (default: the environment's).

        botocore's own session, not boto3's: the same clients, without loading
        boto3's resources and s3transfer (0.1-0.2 s of every command's start).
        """
        region = region or self.region
        key = (service, region)
        if key not in self._clients:
            if self._session is None:
                self._session = botocore.session.Session(profile=None if self.local else self.profile)
            creds = LOCAL_CREDENTIALS if self.local else {}
            cfg = botocore.config.Config(retries=RETRIES, connect_timeout=5, read_timeout=60)
            self._clients[key] = self._session.create_client(service, region_name=region, endpoint_url=self.endpoint, config=cfg, **creds)
        return self._clients[key]

    def env(self) -> dict[str, str]:
        """Environment variables that point a child process (Packer) at the same account."""
        out = {"AWS_REGION": self.region, "AWS_DEFAULT_REGION": self.region}
        if self.local:
            out.update(AWS_ACCESS_KEY_ID=LOCAL_CREDENTIALS["aws_access_key_id"], AWS_SECRET_ACCESS_KEY=LOCAL_CREDENTIALS["aws_secret_access_key"])
        if self.endpoint:
            out["AWS_ENDPOINT_URL"] = self.endpoint
        if self.profile and not self.local:
            out["AWS_PROFILE"] = self.profile
        return out


def for_config(config: Any, endpoint: str | None = None) -> Aws:
    """Clients for ``config``'s environment.

    ``endpoint`` is the local stack's URL (its fixed credentials come with
    it); without it, boto3 finds the account itself, ``AWS_ENDPOINT_URL`` included.
    """
    return Aws(region=config.region, endpoint=endpoint, profile=config.profile, local=endpoint is not None)


def explain(exc: BaseException) -> RodeoError | None:
    """A one-line RodeoError for a botocore failure, or None if it is not one."""
    e = botocore.exceptions
    if isinstance(exc, (e.NoCredentialsError, e.PartialCredentialsError)):
        return AwsError("no AWS credentials found", "set AWS_PROFILE (or run 'aws sso login'), or use --env local")
    if isinstance(exc, e.ProfileNotFound):
        return AwsError(str(exc), "check AWS_PROFILE or 'profile:' in rodeo.yml against ~/.aws/config")
    if isinstance(exc, (e.EndpointConnectionError, e.ConnectTimeoutError, e.ConnectionClosedError)):
        return AwsError(f"AWS is unreachable: {exc}", "check the network, AWS_ENDPOINT_URL, or run 'invoke local.up' for the local stack")
    if isinstance(exc, e.TokenRetrievalError) or isinstance(exc, e.SSOError):
        return AwsError(f"AWS login expired: {exc}", "run 'aws sso login' and try again")
    if isinstance(exc, e.ClientError):
        err = exc.response.get("Error", {})
        code, msg = err.get("Code", "Error"), err.get("Message", "")
        op = getattr(exc, "operation_name", "an AWS call")
        if code in ("UnauthorizedOperation", "AccessDenied", "AccessDeniedException", "UnrecognizedClientException", "InvalidClientTokenId"):
            return AwsError(f"AWS refused {op}: {code}", "the credentials lack this permission; grant it to the role or pick another AWS_PROFILE")
        return AwsError(f"AWS {op} failed: {code}: {msg}", "fix the cause above and run the command again")
    if isinstance(exc, e.BotoCoreError):
        return AwsError(f"AWS call failed: {exc}", "run again with --debug for details")
    return None


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ClientError, or ''."""
    if isinstance(exc, botocore.exceptions.ClientError):
        return exc.response.get("Error", {}).get("Code", "")
    return ""
