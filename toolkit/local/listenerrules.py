"""ELBv2 listener rules in the live stack's HAProxy: host-header and path-pattern conditions, forward actions.

An ALB evaluates a listener's rules in priority order (lowest first) and
acts on the first whose conditions all match; the default action takes the
rest (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/listener-update-rules.html).
Here each rule is a ``use_backend`` line before the listener's default one,
in the same order, guarded by one ACL per condition: ``host-header`` matches
the Host header's name (its port left out, case insensitive), ``path-pattern``
the request's path (case sensitive, without the query string); ``*`` matches
any characters and ``?`` one (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/rule-condition-types.html).
A condition with several values matches when one of them does. A rule's
forward action is a weight map like the default action's (one target group,
or a weighted ``ForwardConfig``), changed at runtime the same way.

The patterns live in files (``-f``), one per line, so no value has to survive
HAProxy's quoting rules. A rule with another condition (``http-header``,
``query-string``, ``http-request-method``, ``source-ip``) or another action
than ``forward`` is not served: it is left out, and the requests it would take
fall through to the next rule (the README's list of local-stack differences
says so).

Everything here is pure but ``write_patterns``; reading moto's rules is
``toolkit.local.motostate.rules_of``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

CONDITIONS = ("host-header", "path-pattern")  # the condition fields the stack serves


@dataclass(frozen=True)
class Rule:
    """A listener rule as HAProxy serves it: its conditions' values (empty: no such condition)."""

    name: str  # unique in its listener, safe in HAProxy names: r<priority>-<hash of its ARN>
    priority: int
    hosts: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()


def pattern(value: str) -> str:
    """An ALB condition value (``*`` any characters, ``?`` one) as an anchored regular expression."""
    return "^" + "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in value) + "$"


def values_of(condition: dict) -> tuple[str, ...]:
    """A host-header or path-pattern condition's values, in either of the API's forms (``Values`` or ``...Config``)."""
    config = condition.get("HostHeaderConfig") or condition.get("PathPatternConfig") or {}
    return tuple(str(v) for v in (config.get("Values") or condition.get("Values") or []))


def rule_of(name: str, priority: int, conditions: list[dict]) -> Rule | None:
    """The Rule for these conditions, or None when one of them is of a kind the stack does not serve."""
    hosts: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    for condition in conditions:
        field = condition.get("Field")
        if field == "host-header":
            hosts += values_of(condition)
        elif field == "path-pattern":
            paths += values_of(condition)
        else:
            return None
    if not hosts and not paths:
        return None
    return Rule(name, priority, hosts, paths)


def map_name(frontend: str, rule: Rule) -> str:
    """The weight map of ``rule`` of ``frontend`` (a file ``<run dir>/<name>.map``, like the default action's)."""
    return f"{frontend}-{rule.name}"


def _file(run_dir: Path, frontend: str, rule: Rule, kind: str) -> Path:
    return run_dir / f"{map_name(frontend, rule)}-{kind}.pat"


def render_rules(run_dir: Path, frontend: str, rules: tuple[Rule, ...], fallback: str) -> list[str]:
    """A frontend's lines for its rules, in priority order: an ACL per condition, then the rule's ``use_backend``.

    They go before the default action's lines (its stickiness included), as
    an ALB tries its rules before the default action. ``fallback`` is the
    backend that answers when the rule's target groups all have weight 0.
    """
    lines = []
    for rule in sorted(rules, key=lambda r: r.priority):
        acls = []
        if rule.hosts:
            where = _file(run_dir, frontend, rule, "host")
            lines.append(f"  acl {rule.name}-host req.hdr(host),field(1,:),lower -m reg -i -f {where}")
            acls.append(f"{rule.name}-host")
        if rule.paths:
            where = _file(run_dir, frontend, rule, "path")
            lines.append(f"  acl {rule.name}-path path -m reg -f {where}")
            acls.append(f"{rule.name}-path")
        weights = run_dir / f"{map_name(frontend, rule)}.map"
        lines.append(f"  use_backend %[rand(100),map_int({weights},{fallback})] if {' '.join(acls)}")
    return lines


def write_patterns(run_dir: Path, frontends: dict[str, tuple[Rule, ...]]) -> None:
    """Write every rule's pattern files (frontend name -> its rules) before HAProxy reads its config."""
    for frontend, rules in frontends.items():
        for rule in rules:
            for kind, values in (("host", rule.hosts), ("path", rule.paths)):
                if values:
                    path = _file(run_dir, frontend, rule, kind)
                    tmp = path.with_suffix(".tmp")
                    tmp.write_text("".join(pattern(v) + "\n" for v in values))
                    tmp.replace(path)
