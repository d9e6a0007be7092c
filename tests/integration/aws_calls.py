"""Record the IAM actions Rodeo's AWS calls need, through botocore's event hooks.

``Recorder.patch(monkeypatch)`` wraps ``toolkit.aws.Aws.client`` so
that every client Rodeo makes gets a ``before-parameter-build`` hook (once
per client); session.py itself is untouched. A call made while a phase is
open (``with recorder.phase("release"):``) is recorded as the IAM action it
needs, with its region; calls outside any phase (seeding the local stack,
the test's own look-ups) are not. Waiters and paginators go through the same
hook. Dependent actions that AWS checks on top of the call itself (tags at
creation, launching from a launch template) are added from the parameters.
"""

from __future__ import annotations

import contextlib
import functools
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from toolkit.aws import Aws
from toolkit.local.auth import IAM_ACTION

# botocore service name -> IAM action prefix, where they differ.
IAM_PREFIX = {"elbv2": "elasticloadbalancing", "elb": "elasticloadbalancing", "monitoring": "cloudwatch"}
HOOK_ID = "rodeo-iam-recorder"


def iam_action(service: str, operation: str) -> str:
    """``elbv2``, ``ModifyListener`` -> ``elasticloadbalancing:ModifyListener``; an operation IAM authorizes as
    another action, as that one (``s3``, ``ListObjectsV2`` -> ``s3:ListBucket``: ``toolkit.local.auth.IAM_ACTION``)."""
    action = f"{IAM_PREFIX.get(service, service)}:{operation}"
    return IAM_ACTION.get(action, action)


def dependent(service: str, operation: str, params: dict) -> list[str]:
    """Actions AWS authorizes in addition to the call's own, given its parameters."""
    out = []
    if service == "ec2" and params.get("TagSpecifications"):
        out.append("ec2:CreateTags")  # tag-on-create is authorized as CreateTags
    if service == "autoscaling" and operation in ("CreateAutoScalingGroup", "UpdateAutoScalingGroup"):
        if params.get("LaunchTemplate") or params.get("MixedInstancesPolicy"):
            out.append("ec2:RunInstances")  # Auto Scaling checks the caller may launch from the template
        if operation == "CreateAutoScalingGroup" and params.get("Tags"):
            out.append("autoscaling:CreateOrUpdateTags")
    if service == "elbv2" and operation.startswith("Create") and params.get("Tags"):
        out.append("elasticloadbalancing:AddTags")  # tags at creation are authorized as AddTags
    if service == "dynamodb" and operation == "CreateTable" and params.get("Tags"):
        out.append("dynamodb:TagResource")
    return out


class Recorder:
    """Actions called per phase: ``calls[phase]`` is a set of ``(action, region)``."""

    def __init__(self) -> None:
        self.calls: dict[str, set[tuple[str, str]]] = defaultdict(set)
        self.current: str | None = None

    def patch(self, monkeypatch: Any) -> None:
        original = Aws.client

        def client(aws: Aws, service: str, region: str | None = None) -> Any:
            made = original(aws, service, region)
            self.attach(made)
            return made

        monkeypatch.setattr(Aws, "client", client)

    def attach(self, client: Any) -> None:
        handler = functools.partial(self._seen, client.meta.service_model.service_name, client.meta.region_name)
        client.meta.events.register("before-parameter-build", handler, unique_id=HOOK_ID)  # once per client

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        previous, self.current = self.current, name
        try:
            yield
        finally:
            self.current = previous

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        with self.phase(None):  # type: ignore[arg-type]
            yield

    def actions(self, phase: str) -> set[str]:
        return {a for a, _ in self.calls[phase]}

    def regions(self, phase: str) -> set[str]:
        return {r for _, r in self.calls[phase]}

    def _seen(self, service: str, region: str, params: dict, model: Any, **_: Any) -> None:
        if self.current is None:
            return
        for action in [iam_action(service, model.name), *dependent(service, model.name, params)]:
            self.calls[self.current].add((action, region))
