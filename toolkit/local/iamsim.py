"""Two read-only calls ``invoke doctor`` makes, which moto 5.2.6 does not implement.

- ``iam:SimulatePrincipalPolicy``: the decision for each action and resource
  from the identity policies of a user (its inline and attached policies, and
  its groups') or a role, with the context keys the caller gives, as AWS's
  policy simulator makes it. Action, NotAction and Resource matching is moto's
  own (``moto.iam.access_control.IAMPolicyStatement``); conditions are
  evaluated here with AWS's rules, because moto's evaluation is for trust
  policies: it checks ``StringEquals`` only, ignores every other operator,
  and calls an Allow whose condition fails a Deny. Here, as on AWS, a
  condition whose key has no value in the context does not match (except
  ``Null``, ``...IfExists`` and ``ForAllValues:``), and the key is named in
  ``MissingContextValues``; an operator this module does not know never
  matches, so the simulation is never more forgiving than AWS.
  https://docs.aws.amazon.com/IAM/latest/APIReference/API_SimulatePrincipalPolicy.html
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
- ``ec2:GetEbsDefaultKmsKeyId``: the account's default EBS key in the region
  (``alias/aws/ebs`` until ModifyEbsDefaultKmsKeyId sets one).
  https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_GetEbsDefaultKmsKeyId.html

Checked against moto 5.2.6 (``tests/unit/doctor/test_iamsim.py`` fails when
moto grows either call or changes what these patches rely on).
"""

from __future__ import annotations

import fnmatch
from typing import Any

from toolkit.local.motopatches import replace

DEFAULT_EBS_KEY = "alias/aws/ebs"
STRING_OPS = {
    "StringEquals": lambda want, got: want == got,
    "StringNotEquals": lambda want, got: want != got,
    "StringEqualsIgnoreCase": lambda want, got: want.lower() == got.lower(),
    "StringLike": lambda want, got: fnmatch.fnmatchcase(got, want),
    "StringNotLike": lambda want, got: not fnmatch.fnmatchcase(got, want),
    "ArnEquals": lambda want, got: fnmatch.fnmatchcase(got, want),
    "ArnLike": lambda want, got: fnmatch.fnmatchcase(got, want),
    "Bool": lambda want, got: want.lower() == got.lower(),
}
NEGATED = ("StringNotEquals", "StringNotLike")


def install() -> None:
    """Add both calls to moto's IAM and EC2 responses (once, in the server's process)."""
    from moto.core.responses import ActionResult
    from moto.ec2.responses.elastic_block_store import ElasticBlockStore
    from moto.iam.responses import IamResponse

    def simulate_principal_policy(self):
        results = simulate(
            self.backend,
            self._get_param("PolicySourceArn"),
            self._get_param("ActionNames") or [],
            self._get_param("ResourceArns") or ["*"],
            self._get_param("ContextEntries") or [],
        )
        return ActionResult({"EvaluationResults": results, "IsTruncated": False})

    def get_ebs_default_kms_key_id(self):
        return ActionResult({"KmsKeyId": self.ec2_backend.default_kms_key_id or DEFAULT_EBS_KEY})

    replace(IamResponse, "simulate_principal_policy", simulate_principal_policy)
    replace(ElasticBlockStore, "get_ebs_default_kms_key_id", get_ebs_default_kms_key_id)


def simulate(
    backend: Any, source_arn: str, actions: list[str], resources: list[str], entries: list[dict]
) -> list[dict]:
    """SimulatePrincipalPolicy's EvaluationResults for a principal of ``backend`` (NoSuchEntity when it is not there)."""
    policies = policies_of(backend, source_arn)
    context = {e["ContextKeyName"].lower(): [str(v) for v in e.get("ContextKeyValues", [])] for e in entries}
    results = []
    for action in actions:
        for resource in resources:
            decision, matched, missing = decide(policies, action, resource, context)
            results.append(
                {
                    "EvalActionName": action,
                    "EvalResourceName": resource,
                    "EvalDecision": decision,
                    "MatchedStatements": [
                        {"SourcePolicyId": name, "SourcePolicyType": "IAM Policy"} for name in matched
                    ],
                    "MissingContextValues": sorted(missing),
                }
            )
    return results


def policies_of(backend: Any, arn: str) -> list[tuple[str, dict]]:
    """(name, document) of every identity policy of the user or role ``arn``, its groups' too."""
    from moto.iam.access_control import IAMPolicy
    from moto.iam.exceptions import InvalidInput

    kind, _, name = arn.split(":", 5)[-1].partition("/")
    name = name.rsplit("/", 1)[-1]
    found: list[tuple[str, Any]] = []
    if kind == "user":
        backend.get_user(name)  # NoSuchEntity for an unknown user
        found += [(p, backend.get_user_policy(name, p)) for p in backend.list_user_policies(name)]
        found += [(p.name, p) for p in backend.list_attached_user_policies(name)[0]]
        for group in backend.get_groups_for_user(name):
            found += [(p, backend.get_group_policy(group.name, p)) for p in backend.list_group_policies(group.name)]
            found += [(p.name, p) for p in backend.list_attached_group_policies(group.name)[0]]
    elif kind == "role":
        backend.get_role(name)
        found += [(p, backend.get_role_policy(name, p)[1]) for p in backend.list_role_policies(name)]
        found += [(p.name, p) for p in backend.list_attached_role_policies(name)[0]]
    else:
        raise InvalidInput(f"{arn} is not a user or a role ARN")
    return [(policy_name, IAMPolicy(policy)._policy_json) for policy_name, policy in found]


def decide(
    policies: list[tuple[str, dict]], action: str, resource: str, context: dict[str, list[str]]
) -> tuple[str, list[str], set[str]]:
    """(``allowed``/``explicitDeny``/``implicitDeny``, names of the policies that decided it, context keys missing)."""
    from moto.iam.access_control import IAMPolicyStatement, PermissionResult

    allowed_by: list[str] = []
    denied_by: list[str] = []
    missing: set[str] = set()
    for name, document in policies:
        statements = document.get("Statement", [])
        for statement in statements if isinstance(statements, list) else [statements]:
            bare = {k: v for k, v in statement.items() if k != "Condition"}
            applies = IAMPolicyStatement(bare).is_action_permitted(action, resource)
            if applies == PermissionResult.NEUTRAL:
                continue
            if not conditions_hold(statement.get("Condition", {}), context, missing):
                continue
            (allowed_by if applies == PermissionResult.PERMITTED else denied_by).append(name)
    if denied_by:
        return "explicitDeny", denied_by, missing
    return ("allowed", allowed_by, set()) if allowed_by else ("implicitDeny", [], missing)


def conditions_hold(conditions: dict, context: dict[str, list[str]], missing: set[str]) -> bool:
    """True when every condition of a statement holds for ``context``; adds the keys it lacked to ``missing``."""
    for operator, keys in conditions.items():
        for key, wanted in keys.items():
            wanted = [
                str(w).lower() if isinstance(w, bool) else str(w)
                for w in (wanted if isinstance(wanted, list) else [wanted])
            ]
            if not condition_holds(operator, wanted, context.get(key.lower())):
                if context.get(key.lower()) is None:
                    missing.add(key)
                return False
    return True


def condition_holds(operator: str, wanted: list[str], values: list[str] | None) -> bool:
    """One condition operator on one key, with AWS's rules for a key absent from the request (``values`` None)."""
    qualifier, _, op = operator.rpartition(":")
    if_exists = op.endswith("IfExists")
    op = op.removesuffix("IfExists")
    if op == "Null":
        return (values is None) == (wanted[0].lower() == "true")
    if values is None:
        return if_exists or qualifier == "ForAllValues"
    test = STRING_OPS.get(op)
    if test is None:
        return False  # an operator not simulated here: no match, never a more forgiving answer
    negated = op in NEGATED

    def matches(value: str) -> bool:
        return all(test(w, value) for w in wanted) if negated else any(test(w, value) for w in wanted)

    if qualifier == "ForAllValues":
        return all(matches(v) for v in values)
    return any(matches(v) for v in values)
