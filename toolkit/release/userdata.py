"""What an instance is told at launch: EC2 user data, a small JSON document.

Every launch template version a release makes carries it, so the image's
agents (the config loader, the log shipper) learn which app and environment
they serve from the metadata service, on AWS and on the local stack alike::

    {"rodeo": {"app": "web", "env": "production"}}

Nothing secret goes here: user data is readable by anyone who may describe
the launch template, and by every process on the instance.
"""

from __future__ import annotations

import base64
import json

from toolkit.config import Config


def document(config: Config, **more: object) -> dict:
    """The user data of ``config``'s instances (``more``: further keys under ``rodeo``).

    In a region of a release in waves other than ``region:``, ``config_region``
    names ``region:``: the config loader reads the config vars there.
    """
    away = {"config_region": config.config_region} if config.config_region != config.region else {}
    return {"rodeo": {"app": config.app, "env": config.env, **away, **more}}


def encode(doc: dict) -> str:
    """Base64 of the document's canonical JSON, as ``LaunchTemplateData.UserData`` takes it."""
    return base64.b64encode(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).decode()


def decode(data: str | None) -> dict | None:
    """The document in base64 user data, or None when there is none or it is not Rodeo's."""
    if not data:
        return None
    try:
        doc = json.loads(base64.b64decode(data))
    except ValueError:
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("rodeo"), dict) else None
