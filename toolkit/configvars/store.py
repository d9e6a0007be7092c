"""Config vars in AWS: SSM parameters (the values) and config version records (DynamoDB).

A key's value is the SSM parameter ``/rodeo/<app>/<env>/<KEY>``, written with
``PutParameter`` (``Overwrite``: each write is a new parameter version that SSM
keeps, up to its last 100). Config version N is the item
``pk=<env>#config``, ``sk=v<N, 8 digits>`` of the app's table ``rodeo-<app>``
(the release lock's and ledger's), holding the parameter version of each
key. Versions are made with a conditional put, so two changes racing for the
same number cannot both have it. Values are read only to list them, or to
leave a key alone that is set to what it holds; a secret is decrypted only
when asked (``config.list --show-secrets``).

SSM refuses to change an existing parameter's type (``HierarchyTypeMismatchException``),
so a key turned from plain to secret (or back) is written to
``/rodeo/<app>/<env>/<secret|plain>/<KEY>`` instead, and its config version
records that name: no parameter is deleted, so every older config version
(a rollback's) still names parameter versions that hold what they held.
"""

from __future__ import annotations

import json
from typing import Any

import botocore.exceptions

from toolkit.aws import error_code
from toolkit.config import Config
from toolkit.configvars.versions import EMPTY, ConfigVersion, Var, parameter_name, parameter_of, type_parameter_name
from toolkit.errors import AwsError, ReleaseError
from toolkit.secrets import redact
from toolkit.table import missing_table, table_name

BATCH = 10  # GetParameters takes at most 10 names a call


def _pk(config: Config) -> dict:
    return {"S": f"{config.env}#config"}


def _sk(number: int) -> dict:
    return {"S": f"v{number:08d}"}


def newest(config: Config, aws: Any) -> ConfigVersion:
    """The environment's newest config version (``EMPTY``, number 0, before the first change or without the table)."""
    try:
        items = aws.client("dynamodb", config.config_region).query(
            TableName=table_name(config),
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": _pk(config)},
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        )["Items"]
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":  # no table yet ('invoke setup' makes it): no config either
            return EMPTY
        raise
    return ConfigVersion.from_dict(json.loads(items[0]["data"]["S"])) if items else EMPTY


def get(config: Config, aws: Any, number: int) -> ConfigVersion:
    """Config version ``number``; ReleaseError when it is not recorded."""
    if number == 0:
        return EMPTY
    try:
        item = (
            aws.client("dynamodb", config.config_region)
            .get_item(TableName=table_name(config), Key={"pk": _pk(config), "sk": _sk(number)}, ConsistentRead=True)
            .get("Item")
        )
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            raise missing_table(config) from None
        raise
    if item is None:
        raise ReleaseError(
            f"config version {number} of {config.app}/{config.env} is not recorded in {table_name(config)}",
            "see 'invoke config.list'; a release takes the newest config version",
        )
    return ConfigVersion.from_dict(json.loads(item["data"]["S"]))


def record(config: Config, aws: Any, version: ConfigVersion) -> bool:
    """Write ``version`` unless its number exists; False when another change took that number first."""
    item = {"pk": _pk(config), "sk": _sk(version.number), "data": {"S": json.dumps(version.to_dict(), sort_keys=True)}}
    try:
        aws.client("dynamodb", config.config_region).put_item(
            TableName=table_name(config), Item=item, ConditionExpression="attribute_not_exists(pk)"
        )
        return True
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            raise missing_table(config) from None
        if error_code(exc) != "ConditionalCheckFailedException":
            raise
    # A retried put whose first attempt took effect (its answer lost) fails its own condition: that is ours.
    return get(config, aws, version.number) == version


def put_values(config: Config, aws: Any, values: dict[str, str], put: dict[str, bool]) -> dict[str, int | Var]:
    """Write each key of ``put`` (key -> secret) with its value in ``values``; key -> the new parameter version
    (a ``Var`` naming the parameter when the key's usual one holds the other type: see the module's docstring).

    A refusal from AWS is one AwsError with the value redacted from AWS's own message.
    """
    versions: dict[str, int | Var] = {}
    for key in sorted(put):
        usual = parameter_name(config.app, config.env, key)
        try:
            versions[key] = _put(config, aws, key, usual, values[key], put[key])
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) != "HierarchyTypeMismatchException":
                raise _refused(key, usual, values[key], exc) from None
            other = type_parameter_name(config.app, config.env, key, put[key])
            try:
                versions[key] = Var(_put(config, aws, key, other, values[key], put[key]), put[key], other)
            except botocore.exceptions.ClientError as again:
                raise _refused(key, other, values[key], again) from None
    return versions


def _put(config: Config, aws: Any, key: str, name: str, value: str, secret: bool) -> int:
    answer = aws.client("ssm", config.config_region).put_parameter(
        Name=name, Value=value, Type="SecureString" if secret else "String", Overwrite=True, Tier="Standard"
    )
    return int(answer["Version"])


def _refused(key: str, name: str, value: str, exc: botocore.exceptions.ClientError) -> AwsError:
    err = exc.response.get("Error", {})
    message = redact(f"{err.get('Code', 'Error')}: {err.get('Message', '')}", {key: value})
    return AwsError(
        f"AWS refused to store config key {key} ({name}): {message}",
        "fix the cause above and run the command again (keys stored before it are in SSM, in no config version yet)",
    )


def values(
    config: Config, aws: Any, version: ConfigVersion, keys: list[str] | None = None, decrypt: bool = False
) -> dict[str, str]:
    """The values ``version`` holds for ``keys`` (default: all); a secret only with ``decrypt``.

    ReleaseError naming the first parameter version SSM no longer has.
    """
    wanted = [
        k
        for k in (version.vars if keys is None else keys)
        if k in version.vars and (decrypt or not version.vars[k].secret)
    ]
    found = _fetch(config, aws, version, wanted, decrypt)
    return {k: v for k, v in found.items() if v is not None}


def require(config: Config, aws: Any, version: ConfigVersion) -> None:
    """ReleaseError naming the parameter versions of ``version`` SSM no longer holds (it keeps a parameter's last 100)."""
    _fetch(config, aws, version, sorted(version.vars), decrypt=False)


def _missing(config: Config, version: ConfigVersion, keys: list[str]) -> ReleaseError:
    refs = ", ".join(
        f"{parameter_of(config.app, config.env, k, version.vars[k])}:{version.vars[k].version}" for k in keys
    )
    return ReleaseError(
        f"config version {version.number} names parameter versions SSM no longer has: {refs}",
        "set those keys again ('invoke config.set'): a new config version holds their new parameter versions",
    )


def _fetch(config: Config, aws: Any, version: ConfigVersion, keys: list[str], decrypt: bool) -> dict[str, str | None]:
    """key -> value (None for a secret read without ``decrypt``), by name and parameter version, 10 a call."""
    ssm = aws.client("ssm", config.config_region)
    by_ref = {f"{parameter_of(config.app, config.env, k, version.vars[k])}:{version.vars[k].version}": k for k in keys}
    refs = sorted(by_ref)
    out: dict[str, str | None] = {}
    gone: list[str] = []
    for start in range(0, len(refs), BATCH):
        answer = ssm.get_parameters(Names=refs[start : start + BATCH], WithDecryption=decrypt)
        gone += [by_ref[r] for r in answer.get("InvalidParameters", []) if r in by_ref]
        for p in answer["Parameters"]:
            key = p["Name"].rsplit("/", 1)[-1].split(":")[0]
            plain = decrypt or p.get("Type") != "SecureString"
            out[key] = p["Value"] if plain else None
    if gone:
        raise _missing(config, version, sorted(gone))
    return out
