"""The instance metadata service of the live local stack (IMDSv1 and v2).

Inside each instance's network namespace, ``169.254.169.254:80`` is a
forwarder to a unix socket that a ``MetadataServer`` of this process serves
for that instance alone, so it knows who asks. ``answer`` (pure) says what
EC2's metadata service would: ``PUT /latest/api/token`` gives a session
token (``X-aws-ec2-metadata-token-ttl-seconds``, 1 to 21600), and with
``HttpTokens=required`` every GET needs one; ``meta-data/`` has the
instance's identity, placement, network and, when its instance profile has a
role, that role's temporary credentials (``role_credentials``: moto's STS
assumes the role, so the instance can do exactly what the role's policies
allow), ``user-data`` what RunInstances or the launch template gave,
``dynamic/instance-identity/document`` the identity document.
"""

from __future__ import annotations

import json
import re
import secrets
import socketserver
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Callable

ADDRESS = "169.254.169.254"
TOKEN_HEADER = "x-aws-ec2-metadata-token"
TTL_HEADER = "x-aws-ec2-metadata-token-ttl-seconds"
MAX_TTL = 21600
CREDENTIAL_HOURS = 6
# EC2 makes new role credentials available at least five minutes before the old expire; here, with an hour left.
RENEW_SECONDS = 3600


@dataclass(frozen=True)
class Identity:
    """What the metadata service knows about one instance."""

    instance_id: str
    image_id: str
    instance_type: str
    region: str
    zone: str
    account: str
    private_ip: str
    role: str
    user_data: bytes | None = None
    tokens_required: bool = False
    key_name: str = ""  # the key pair RunInstances named, if any
    public_key: str = ""  # its public key (OpenSSH format)


@dataclass
class Tokens:
    """IMDSv2 session tokens of one instance: token -> expiry (epoch seconds)."""

    expiry: dict[str, float] = field(default_factory=dict)

    def issue(self, ttl: int, now: float) -> str:
        token = secrets.token_urlsafe(32)
        self.expiry = {t: e for t, e in self.expiry.items() if e > now}
        self.expiry[token] = now + ttl
        return token

    def valid(self, token: str | None, now: float) -> bool:
        return token is not None and self.expiry.get(token, 0) > now


def answer(
    method: str, path: str, headers: dict, who: Identity, tokens: Tokens, now: float, credentials: dict | None = None
) -> tuple[int, str, bytes]:
    """``(status, content type, body)`` for one request (``headers`` with lower-case names).

    ``credentials`` are the instance role's (``AccessKeyId``, ``SecretAccessKey``, ``Token``, ``Expiration``);
    without them there is no ``iam/`` folder, as on an instance without an instance profile.
    """
    if method == "PUT":
        if path != "/latest/api/token":
            return 405, "text/plain", b"Method Not Allowed"
        try:
            ttl = int(headers.get(TTL_HEADER, ""))
        except ValueError:
            return 400, "text/plain", b"Missing or invalid ttl header"
        if not 1 <= ttl <= MAX_TTL:
            return 400, "text/plain", b"Invalid ttl"
        return 200, "text/plain", tokens.issue(ttl, now).encode()
    if method != "GET":
        return 405, "text/plain", b"Method Not Allowed"
    token = headers.get(TOKEN_HEADER)
    if (token is not None or who.tokens_required) and not tokens.valid(token, now):
        return 401, "text/plain", b"Unauthorized"
    found = _lookup(path, who, now, credentials)
    if found is None:
        return 404, "text/plain", b"Not Found"
    kind = "application/json" if found[:1] == b"{" else "text/plain"
    return 200, kind, found


def _lookup(path: str, who: Identity, now: float, credentials: dict | None) -> bytes | None:
    path = latest(path.split("?", 1)[0])
    if path in ("/latest/user-data", "/latest/user-data/"):
        return who.user_data
    if path == "/latest/dynamic/instance-identity/document":
        return json.dumps(_document(who), indent=2).encode()
    # The folders above it (cloud-init, told it runs on AWS, crawls them). EC2 also lists pkcs7, signature and
    # rsa2048 here: signatures this service cannot make, so it lists only the document.
    if path.rstrip("/") == "/latest/dynamic":
        return b"instance-identity/"
    if path.rstrip("/") == "/latest/dynamic/instance-identity":
        return b"document"
    if not path.startswith("/latest/meta-data"):
        return b"dynamic\nmeta-data\nuser-data" if path in ("/latest", "/latest/") else None
    tree = _tree(who, now, credentials)
    tree.update(public_keys(who))
    node: object = tree
    for part in [p for p in path[len("/latest/meta-data") :].split("/") if p]:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    if path.rstrip("/").endswith("/meta-data/public-keys") and isinstance(node, dict):
        return "\n".join(f"{index}={who.key_name}" for index in node).encode()
    if isinstance(node, dict):  # a folder: its entries, sub-folders with a slash
        return "\n".join(k + ("/" if isinstance(v, dict) else "") for k, v in node.items()).encode()
    return node.encode() if isinstance(node, str) else node


def latest(path: str) -> str:
    """``path`` with a dated API version (``/2009-04-04/meta-data/...``, as cloud-init asks) read as ``/latest/``.

    EC2 serves every API version it lists at ``/``; this service has one tree for all of them.
    https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-data-retrieval.html
    """
    head, _, rest = path.lstrip("/").partition("/")
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", head):
        return "/latest/" + rest if rest or path.endswith("/") else "/latest"
    return path


def _tree(who: Identity, now: float, credentials: dict | None) -> dict:
    tree = {
        "ami-id": who.image_id,
        "hostname": f"ip-{who.private_ip.replace('.', '-')}.ec2.internal",
        "iam": _iam(who, now, credentials),
        "instance-id": who.instance_id,
        "instance-type": who.instance_type,
        "local-hostname": f"ip-{who.private_ip.replace('.', '-')}.ec2.internal",
        "local-ipv4": who.private_ip,
        "placement": {"availability-zone": who.zone, "region": who.region},
    }
    if tree["iam"] is None:
        del tree["iam"]
    return tree


def _iam(who: Identity, now: float, credentials: dict | None) -> dict | None:
    if credentials is None:
        return None
    updated = datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    served = {"Code": "Success", "LastUpdated": updated, "Type": "AWS-HMAC", **credentials}
    return {
        "info": json.dumps(
            {
                "Code": "Success",
                "LastUpdated": updated,
                "InstanceProfileArn": f"arn:aws:iam::{who.account}:instance-profile/{who.role}",
            }
        ),
        "security-credentials": {who.role: json.dumps(served, indent=2)},
    }


_issued: dict[tuple[str, str], dict] = {}
_issued_lock = threading.Lock()


def role_credentials(who: Identity, now: float) -> dict | None:
    """Temporary credentials of ``who``'s role from moto's STS (an AssumeRole, as EC2 makes for an instance
    profile), the same ones until an hour before they expire; None when no IAM role has that name."""
    from toolkit.local.motostate import LOCK

    with _issued_lock:  # held and fresh: answered without waiting for moto's lock (a slow request may hold it)
        held = _issued.get((who.instance_id, who.role))
        if held is not None and held["expires"] - now >= RENEW_SECONDS:
            return _answer(held)
    with LOCK:  # moto's IAM and STS, between two requests
        return _role_credentials(who, now)


def _role_credentials(who: Identity, now: float) -> dict | None:
    from moto.iam.exceptions import NotFoundException
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    try:
        role = iam_backends[who.account]["aws"].get_role(who.role)
    except NotFoundException:
        return None
    key = (who.instance_id, who.role)
    with _issued_lock:
        held = _issued.get(key)
        if held is None or held["expires"] - now < RENEW_SECONDS:
            assumed = sts_backends[who.account]["aws"].assume_role(
                region_name=who.region,
                role_session_name=who.instance_id,
                role_arn=role.arn,
                policy=None,
                duration=CREDENTIAL_HOURS * 3600,
                external_id=None,
            )
            held = _issued[key] = {
                "expires": now + CREDENTIAL_HOURS * 3600,
                "AccessKeyId": assumed.access_key_id,
                "SecretAccessKey": assumed.secret_access_key,
                "Token": assumed.session_token,
            }
        return _answer(held)


def _answer(held: dict) -> dict:
    return {
        "AccessKeyId": held["AccessKeyId"],
        "SecretAccessKey": held["SecretAccessKey"],
        "Token": held["Token"],
        "Expiration": datetime.fromtimestamp(held["expires"], timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def public_keys(who: Identity) -> dict:
    """``meta-data/public-keys`` as EC2 has it: the key pair's key with its name as the comment, or nothing.

    EC2 lists the folder as ``0=<key name>``; ``public-keys/0/openssh-key``
    is the key's type and body followed by the key pair's name (whatever
    comment the key was made with). cloud-init writes that line into the
    default user's ``authorized_keys`` and, behind ``disable_root``, root's.
    https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-data-categories.html
    """
    fields = who.public_key.split()
    if not who.key_name or len(fields) < 2:
        return {}
    return {"public-keys": {"0": {"openssh-key": f"{fields[0]} {fields[1]} {who.key_name}"}}}


def _document(who: Identity) -> dict:
    return {
        "accountId": who.account,
        "architecture": "x86_64",
        "availabilityZone": who.zone,
        "imageId": who.image_id,
        "instanceId": who.instance_id,
        "instanceType": who.instance_type,
        "privateIp": who.private_ip,
        "region": who.region,
        "version": "2017-09-30",
    }


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    identity: Callable[[], Identity]
    credentials: Callable[[Identity, float], dict | None]
    tokens: Tokens


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "EC2ws"
    protocol_version = "HTTP/1.1"

    def address_string(self) -> str:  # a unix socket has no client address
        return "instance"

    def log_message(self, format, *args) -> None:
        pass

    def _reply(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(min(length, 65536))
        headers = {k.lower(): v for k, v in self.headers.items()}
        who, now = self.server.identity(), time.time()
        role = self.server.credentials(who, now) if latest(self.path).startswith("/latest/meta-data") else None
        status, kind, body = answer(method, self.path, headers, who, self.server.tokens, now, role)
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        if method == "PUT" and status == 200:
            self.send_header(TTL_HEADER, headers.get(TTL_HEADER, ""))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._reply("GET")

    def do_PUT(self) -> None:
        self._reply("PUT")


class MetadataServer:
    """One instance's metadata service on unix socket ``sock`` (a thread of this process); its role's
    credentials from ``credentials`` (default: ``role_credentials``, from moto in this process)."""

    def __init__(
        self,
        sock: Path,
        identity: Callable[[], Identity],
        credentials: Callable[[Identity, float], dict | None] = role_credentials,
    ) -> None:
        sock.unlink(missing_ok=True)
        self.sock = sock
        self.server = _Server(str(sock), _Handler)
        self.server.identity, self.server.credentials, self.server.tokens = identity, credentials, Tokens()
        sock.chmod(0o600)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.5}, name=f"imds-{sock.stem}", daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.sock.unlink(missing_ok=True)
