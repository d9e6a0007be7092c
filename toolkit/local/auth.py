"""IAM on the local stack: moto refuses a request its caller's policies do not allow, as AWS does.

``enforce()`` runs in the moto server's process before it serves anything
(``toolkit.local.motoserver``). It turns moto's authorization on from the
first request (``INITIAL_NO_AUTH_ACTION_COUNT`` 0: every request is signed
by a known principal, its signature checked, its action allowed by one of
the principal's policies and denied by none) and makes the stack's admin:
the IAM user ``ADMIN_USER`` with an allow-everything inline policy, whose
access key is ``LOCAL_CREDENTIALS`` (what Rodeo uses on the
local stack unless told otherwise). Other principals are made through the
API like on AWS: users with ``invoke iam-policy`` policies, and the
instances' roles, whose credentials the metadata service hands out
(``toolkit.local.imds.role_credentials``).

What moto 5.2 checks, and the two fixes made here:

- the action: ``<prefix>:<Operation>``, where moto takes the prefix from the
  request's signing scope. CloudWatch signs as ``monitoring``, while IAM
  calls its actions ``cloudwatch:*``; moto would refuse every CloudWatch
  call a policy allows, so the prefix is mapped (``IAM_PREFIX``); and for S3
  moto names the action after the operation, so one whose IAM action differs
  is mapped too (``IAM_ACTION``: ListObjectsV2 is authorized as s3:ListBucket);
- the resource: only IAM (calls naming a role), STS (AssumeRole), SQS and S3 requests name one; for every
  other service moto checks against ``"*"``, which no ARN in a statement
  matches, so a least-privilege policy would be refused everything it scopes.
  Here such a request is checked on its action alone: the statement's
  resources are not evaluated (moto does not know the request's), as the
  README's list of differences says;
- conditions are not evaluated (moto passes no request context), and
  actions AWS authorizes beside the called one (``ec2:CreateTags`` for tags
  at creation, ``iam:PassRole``, ``ec2:RunInstances`` through a launch
  template, KMS for encrypted volumes) are not checked.
  ``tests/unit/test_iam.py`` and the recorded calls of
  ``tests/integration/test_iam.py`` hold those parts of the policy.
"""

from __future__ import annotations

import json

from toolkit.local.motopatches import replace

ADMIN_USER = "rodeo-local-admin"
# The admin's key: what Rodeo signs with on the local stack (toolkit.local.environment), keeping a developer's real
# credentials out of it. moto reads 20-character key ids.
LOCAL_CREDENTIALS = {"aws_access_key_id": "AKIARODEOLOCALADMIN1", "aws_secret_access_key": "rodeo-local"}
ADMIN_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
# Signing name -> IAM action prefix, where they differ (botocore's endpointPrefix for CloudWatch is "monitoring").
IAM_PREFIX = {"monitoring": "cloudwatch"}
# Operations IAM authorizes as another action, where moto names the action after the operation: ListObjectsV2 needs
# s3:ListBucket (the S3 API reference's "Permissions"); moto 5.2.6 asks for s3:ListObjectsV2, which no policy has.
IAM_ACTION = {"s3:ListObjectsV2": "s3:ListBucket"}


def enforce() -> None:
    """Authorize every request from now on, and make the admin principal (call before the server starts)."""
    from moto import settings

    _iam_action_prefixes()
    _unknown_resource_checks_action_only()
    _access_denied_in_the_protocol()
    _instance_profiles_from_launch_templates()
    make_admin()
    replace(settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)


def make_admin(account: str | None = None) -> None:
    """The admin user whose access key is ``LOCAL_CREDENTIALS``, in ``account`` (moto's default), unless it exists."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.iam.models import iam_backends

    backend = iam_backends[account or DEFAULT_ACCOUNT_ID]["aws"]
    if ADMIN_USER in backend.users:
        return
    backend.create_user("us-east-1", ADMIN_USER)
    backend.put_user_policy(ADMIN_USER, "rodeo-local-admin", json.dumps(ADMIN_POLICY))
    key = backend.create_access_key(ADMIN_USER)
    # A fixed key, so a developer's real credentials never reach the local stack, and every client of it agrees.
    del backend.access_keys[key.physical_resource_id]
    key.access_key_id, key.secret_access_key = (
        LOCAL_CREDENTIALS["aws_access_key_id"],
        LOCAL_CREDENTIALS["aws_secret_access_key"],
    )
    backend.access_keys[key.physical_resource_id] = key


def _iam_action_prefixes() -> None:
    from moto.iam.access_control import IAMRequestBase

    original = IAMRequestBase.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self._action = iam_action(self._action)

    replace(IAMRequestBase, "__init__", init)


def iam_action(action: str) -> str:
    """The IAM action AWS authorizes for what moto calls ``action`` (``monitoring:PutMetricData``, ``s3:ListObjectsV2``)."""
    prefix, _, operation = action.partition(":")
    named = f"{IAM_PREFIX.get(prefix, prefix)}:{operation}"
    return IAM_ACTION.get(named, named)


def _unknown_resource_checks_action_only() -> None:
    from moto.iam.access_control import IAMPolicyStatement

    original = IAMPolicyStatement._check_element_matches

    def matches(self, element, value):
        if element == "Resource" and value == "*":
            return True  # moto does not know this request's resource
        return original(self, element, value)

    replace(IAMPolicyStatement, "_check_element_matches", matches)


def _access_denied_in_the_protocol() -> None:
    """AccessDenied in the body format of the request's protocol (moto answers XML to all, which JSON clients read as "403")."""
    from moto.core import cbor
    from moto.core.exceptions import AccessDeniedError, JsonRESTError
    from moto.iam.access_control import IAMRequest
    from xmltodict import unparse

    original = IAMRequest._raise_access_denied

    def raise_access_denied(self):
        kind = self._headers.get("Content-Type", "")
        message = f"User: {self._access_key.arn} is not authorized to perform: {self._action}"
        if "json" in kind:
            raise JsonRESTError("AccessDeniedException", message)
        if "cbor" in kind:
            error = AccessDeniedError(user_arn=self._access_key.arn, action=self._action)
            error.description = cbor.dumps({"__type": "AccessDenied", "message": message})
            raise error
        if self._service == "ec2":  # EC2's own code and <Response> document (SDKs other than botocore's read only that)
            error = AccessDeniedError(user_arn=self._access_key.arn, action=self._action)
            error.error_type = "UnauthorizedOperation"
            error.description = unparse(
                {
                    "Response": {
                        "Errors": {
                            "Error": {
                                "Code": "UnauthorizedOperation",
                                "Message": f"You are not authorized to perform this operation. {message}",
                            }
                        },
                        "RequestID": "rodeo-local",
                    }
                },
                full_document=True,
            )
            raise error
        original(self)

    replace(IAMRequest, "_raise_access_denied", raise_access_denied)


def _instance_profiles_from_launch_templates() -> None:
    """An instance launched from a launch template (an Auto Scaling group's too) has the template's instance
    profile, as on EC2, so the metadata service serves that role's credentials. moto 5.2 associates a profile
    only when RunInstances names one itself. (A profile that does not exist is left out here; EC2 refuses the launch.)"""
    from moto.ec2.models.instances import InstanceBackend
    from moto.iam.exceptions import NotFoundException

    original = InstanceBackend.run_instances

    def run_instances(self, image_id, count, user_data, security_group_names, **kwargs):
        reservation = original(self, image_id, count, user_data, security_group_names, **kwargs)
        template = kwargs.get("launch_template")
        profile = (self._get_template_from_args(template).data.get("IamInstanceProfile") or {}) if template else {}
        if profile.get("Name") or profile.get("Arn"):
            for inst in reservation.instances:
                if inst.id not in self.iam_instance_profile_associations:
                    try:
                        self.associate_iam_instance_profile(inst.id, profile.get("Name"), profile.get("Arn"))
                    except NotFoundException:
                        pass
        return reservation

    replace(InstanceBackend, "run_instances", run_instances)
