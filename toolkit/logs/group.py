"""The log group of an environment: ``/rodeo/<app>/<env>``, made and kept by ``invoke setup``.

The instances' shipper names the same group from its user data and makes
only its own stream in it; the group and its retention (``logs.retention_days``
in rodeo.yml) are Rodeo's, set here. Both steps are safe to repeat.
"""

from __future__ import annotations

from typing import Any

import botocore.exceptions

from toolkit.aws import error_code
from toolkit.config import Config


def name(config: Config) -> str:
    """The log group of ``config``'s app and environment (the shipper's ``group_name``)."""
    return f"/rodeo/{config.app}/{config.env}"


def ensure(config: Config, aws: Any) -> bool:
    """Create the log group when absent and set its retention; True when it was created."""
    logs, group = aws.client("logs"), name(config)
    created = True
    try:
        logs.create_log_group(logGroupName=group)
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) != "ResourceAlreadyExistsException":
            raise
        created = False
    logs.put_retention_policy(logGroupName=group, retentionInDays=config.logs.retention_days)
    return created
