"""What doctor asks IAM's policy simulator, and of whom.

The questions come from ``toolkit.iam``: for each statement of ``invoke
iam-policy --for all``, its actions against a resource of the kind it names
(``key-pair/rodeo-*`` becomes ``key-pair/rodeo-doctor`` in the caller's
account), with the context keys its conditions test set to the values
Rodeo's own calls carry (``aws:RequestedRegion`` = the environment's region,
``ec2:CreateAction`` = ``ImportKeyPair``...). So "allowed" for every question
means the caller's policies cover what Rodeo does, however they are written.
https://docs.aws.amazon.com/IAM/latest/APIReference/API_SimulatePrincipalPolicy.html
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from toolkit import iam
from toolkit.config import Config

SAMPLE = "doctor"  # stands for a name or id a wildcard in a resource ARN allows
# Wildcard actions of Rodeo's policy, as the actions they cover (the simulator takes action names).
EXPANDED = {
    "kms:GenerateDataKey*": ("kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext"),
    "kms:ReEncrypt*": ("kms:ReEncryptFrom", "kms:ReEncryptTo"),
}
EBS_KEY_ACTIONS = ("kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey")


@dataclass(frozen=True)
class Question:
    """One SimulatePrincipalPolicy call: these actions on these resources, with this context."""

    actions: tuple[str, ...]
    resources: tuple[str, ...]
    context: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (key, values)


@dataclass(frozen=True)
class Decision:
    """The simulator's answer for one action on one resource."""

    action: str
    resource: str
    decision: str  # allowed, explicitDeny or implicitDeny
    missing: tuple[str, ...] = ()  # context keys the decision needed and did not get

    @property
    def allowed(self) -> bool:
        return self.decision == "allowed"


def simulated_principal(caller_arn: str) -> tuple[str, str] | None:
    """What the simulator takes for a caller: ``("user", arn)`` or ``("role", name)`` (the role's ARN,
    with its path, needs iam:GetRole), or None for a caller it cannot simulate (the root user, a
    federated user, a caller that is no IAM principal)."""
    parts = caller_arn.split(":", 5)
    if len(parts) < 6:
        return None
    service, resource = parts[2], parts[5]
    if service == "iam" and resource.startswith("user/"):
        return ("user", caller_arn)
    if service == "iam" and resource.startswith("role/"):
        return ("role", resource.rsplit("/", 1)[-1])
    if service == "sts" and resource.startswith("assumed-role/"):
        return ("role", resource.split("/")[1])
    return None


def questions(config: Config, account: str) -> list[Question]:
    """One question per distinct (resources, context) of ``iam-policy --for all``'s statements."""
    merged: dict[tuple, list[str]] = {}
    for grant in iam.grants(config, iam.PURPOSES):
        resources = tuple(concrete_arn(r, config.region, account) for r in grant.resources)
        key = (resources, context_of(grant.condition, config.region))
        merged.setdefault(key, [])
        for action in grant.actions:
            for name in EXPANDED.get(action, (action,)):
                if name not in merged[key]:
                    merged[key].append(name)
    return [Question(tuple(actions), resources, context) for (resources, context), actions in merged.items()]


def ebs_key_question(key_arn: str, region: str) -> Question:
    """What EC2 needs of a customer-managed default EBS key for CopyImage and RunInstances, asked through EC2."""
    context = (
        ("aws:RequestedRegion", (region,)),
        ("kms:GrantIsForAWSResource", ("true",)),
        ("kms:ViaService", (f"ec2.{region}.amazonaws.com",)),
    )
    return Question(EBS_KEY_ACTIONS, (key_arn,), context)


def concrete_arn(arn: str, region: str, account: str) -> str:
    """A resource ARN of Rodeo's policy as one resource it stands for: the region, the account, a sample name."""
    if arn == "*":
        return arn
    parts = arn.split(":", 5)
    if len(parts) < 6:
        return arn
    if parts[3] == "*":
        parts[3] = region
    if parts[4] == "*":
        parts[4] = account
    parts[5] = parts[5].replace("*", SAMPLE)
    return ":".join(parts)


def context_of(condition: dict, region: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Context keys that make a statement's conditions hold, as Rodeo's own calls do; always the region."""
    found: dict[str, tuple[str, ...]] = {"aws:RequestedRegion": (region,)}
    for operator, keys in condition.items():
        for key, values in keys.items():
            values = values if isinstance(values, list) else [values]
            if operator == "Null":
                if str(values[0]).lower() == "false":
                    found[key] = (SAMPLE,)  # the key must be present: any value
            elif operator.startswith(("ForAllValues:", "ForAnyValue:")):
                found[key] = tuple(str(v) for v in values)
            else:
                found[key] = (str(values[0]),)
    return tuple(sorted(found.items()))


def ask(iam_client: Any, principal_arn: str, asked: list[Question]) -> tuple[Decision, ...]:
    """Ask the simulator each question about ``principal_arn``; every decision, in order."""
    out: list[Decision] = []
    for question in asked:
        entries = [
            {
                "ContextKeyName": key,
                "ContextKeyValues": list(values),
                "ContextKeyType": "stringList" if len(values) > 1 else "string",
            }
            for key, values in question.context
        ]
        kwargs = {"PolicySourceArn": principal_arn, "ActionNames": list(question.actions), "ContextEntries": entries}
        if question.resources != ("*",):
            kwargs["ResourceArns"] = list(question.resources)
        for page in iam_client.get_paginator("simulate_principal_policy").paginate(**kwargs):
            for result in page["EvaluationResults"]:
                out.append(
                    Decision(
                        result["EvalActionName"],
                        result.get("EvalResourceName", "*"),
                        result["EvalDecision"],
                        tuple(result.get("MissingContextValues", [])),
                    )
                )
    return tuple(out)
