"""Doctor's checks: pure functions from ``Facts`` to one ``Check`` each (what is wrong, and what to do).

No check calls AWS or reads a file; ``facts.gather`` did. Each returns
``ok``, ``warn`` (worth knowing, breaks nothing by itself) or ``fail`` (a
bake or release will break). The network checks are in ``toolkit.doctor.network``.
"""

from __future__ import annotations

from dataclasses import dataclass

from toolkit.canary import sources
from toolkit.config import Analysis, JudgedMetric
from toolkit.doctor.facts import Facts
from toolkit.errors import ReleaseError
from toolkit.release import watch

OK, WARN, FAIL = "ok", "warn", "fail"
SHOWN = 4  # names listed in one line before "and N more"
# Packer 1.6.6's AWS SDK cannot read SSO profiles (hashicorp/packer#10525); Packer 1.7+ with the amazon
# plugin reads sso_start_url profiles, and sso-session ones since packer-plugin-amazon#415 (2023-09).
PACKER_SSO = (1, 7, 0)


@dataclass(frozen=True)
class Check:
    """One check's verdict: its name, ok/warn/fail, and one line saying what is wrong and what to do."""

    name: str
    status: str
    line: str

    def to_dict(self) -> dict:
        return {"name": self.name, "status": self.status, "line": self.line}


def listed(names: list[str]) -> str:
    """``a, b, c, d and 3 more``: a list short enough for one line."""
    shown = ", ".join(names[:SHOWN])
    return shown + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")


def identity(facts: Facts) -> Check:
    """Who calls (sts:GetCallerIdentity)."""
    if facts.identity is None:
        return Check(
            "identity",
            FAIL,
            f"{facts.errors.get('identity', 'no caller identity')}; set AWS_PROFILE (or run 'aws sso login')",
        )
    return Check("identity", OK, f"{facts.identity.arn} (account {facts.identity.account})")


def iam_rights(facts: Facts) -> Check:
    """Whether the caller's policies allow every action of ``invoke iam-policy --for all``, as the simulator says."""
    policy = f"'invoke iam-policy --for all --env {facts.env}'"
    if facts.rights is None:
        why = facts.errors.get("rights", "no caller identity")
        return Check("rights", WARN, f"cannot simulate the caller's rights ({why}); make sure it holds {policy}")
    denied = sorted({d.action for d in facts.rights if not d.allowed})
    actions = {d.action for d in facts.rights}
    who = facts.identity.principal if facts.identity else "the caller"
    if denied:
        return Check(
            "rights",
            FAIL,
            f"{who} may not call {len(denied)} of the {len(actions)} actions Rodeo calls: {listed(denied)}; attach {policy} to it",
        )
    return Check("rights", OK, f"{who} may call all {len(actions)} actions of {policy}")


def source_amis(facts: Facts) -> list[Check]:
    """Each base image's source AMI resolves in the region."""
    out = []
    for source in facts.sources:
        name = f"source-ami {source.image}"
        if f"source {source.image}" in facts.errors:
            out.append(
                Check(
                    name,
                    FAIL,
                    f"cannot look up images.{source.image}.source_ami: {facts.errors[f'source {source.image}']}",
                )
            )
        elif source.found is None:
            out.append(
                Check(
                    name,
                    FAIL,
                    f"images.{source.image}.source_ami: {source.wanted} in {facts.region}; fix it in rodeo.yml",
                )
            )
        else:
            out.append(Check(name, OK, f"images.{source.image}.source_ami is {source.found}"))
    return out


def packer_credentials(facts: Facts) -> Check:
    """Packer's version against the kind of credentials it gets (an SSO profile needs Packer 1.7+)."""
    packer = facts.packer
    if packer is None or packer.version is None:
        return Check(
            "packer",
            FAIL,
            f"{facts.errors.get('packer', 'packer is not installed')}; run 'make setup' (or apt-get install packer)",
        )
    version = ".".join(map(str, packer.version))
    if packer.static_keys:
        return Check("packer", OK, f"Packer {version} gets keys from the environment (AWS_ACCESS_KEY_ID)")
    if packer.sso_keys and packer.version < PACKER_SSO:
        return Check(
            "packer",
            FAIL,
            f"Packer {version} cannot use the SSO profile {packer.profile!r} ({', '.join(packer.sso_keys)} in {packer.config_file}; "
            f'hashicorp/packer#10525); export its keys first: eval "$(aws configure export-credentials --profile {packer.profile} '
            '--format env)", or install Packer 1.7+',
        )
    if "sso_session" in packer.sso_keys:
        return Check(
            "packer",
            WARN,
            f"Packer {version} reads the sso-session profile {packer.profile!r} only with an amazon plugin from 2023-09 on "
            "(packer-plugin-amazon#415); run 'packer plugins installed' to check",
        )
    return Check(
        "packer", OK, f"Packer {version} reads profile {packer.profile!r}" + (" (SSO)" if packer.sso_keys else "")
    )


def alarm_timing(facts: Facts) -> Check:
    """Each release alarm can fire within one step's watch (``toolkit.release.watch``: the rule a release enforces)."""
    rel = facts.release
    if rel is None or not rel.alarms:
        return Check("alarms", OK, "no release alarms to check")
    if "alarms" in facts.errors:
        return Check("alarms", FAIL, f"cannot read the release alarms: {facts.errors['alarms']}")
    found = {a.name for a in facts.alarms}
    missing = [n for n in rel.alarms if n not in found]
    if missing:
        return Check(
            "alarms",
            FAIL,
            f"alarm(s) {listed(missing)} do not exist in {facts.region}; create them or fix release.alarms",
        )
    try:
        watch.check(rel.pause_seconds, list(facts.alarms))
    except ReleaseError as exc:
        return Check("alarms", FAIL, f"{exc.message}; {exc.hint}")
    return Check(
        "alarms", OK, f"{len(rel.alarms)} alarm(s) can fire within release.pause_seconds ({rel.pause_seconds} s)"
    )


def analysis(facts: Facts) -> Check:
    """The canary analysis can read its data, and a step lasts long enough on AWS for that data to arrive."""
    rel = facts.release
    settings = rel.analysis if rel is not None else None
    if settings is None or not settings.enabled:
        return Check("analysis", OK, "canary analysis is off (release.analysis.enabled)")
    where = ""
    if any(m in ("latency", "errors") for m in settings.metrics):
        if "access_logs" in facts.errors or facts.access_logs is None:
            return Check(
                "analysis", FAIL, f"cannot read the load balancer's attributes: {facts.errors.get('access_logs')}"
            )
        if not facts.access_logs.enabled:
            return Check(
                "analysis",
                FAIL,
                "release.analysis judges steps on the load balancer's access logs, and they are off; turn on "
                "access_logs.s3 (a bucket ELB may write to) or set release.analysis.enabled: false",
            )
        where = f" from s3://{facts.access_logs.bucket}/{facts.access_logs.prefix.strip('/')}"
    short = {name: need for name, need in sources.need_seconds(settings).items() if rel.pause_seconds < need}
    if short:
        first = max(short, key=short.get)
        return Check(
            "analysis",
            WARN,
            f"release.pause_seconds {rel.pause_seconds} is shorter than judging {listed(sorted(short))} needs on AWS "
            f"({short[first]}s for {first}: {_why(settings, first)}): such steps are judged on too little data, which "
            f"goes on by on_insufficient ({settings.on_insufficient}); raise pause_seconds or wait_seconds",
        )
    return Check("analysis", OK, f"each step of {rel.pause_seconds}s can be judged{where}")


def _why(settings: Analysis, name: str) -> str:
    if name in ("latency", "errors"):
        return f"access logs arrive in {sources.ACCESS_LOG_INTERVAL // 60}-minute files, written after their 5 minutes"
    metric = next(m for m in settings.metrics if isinstance(m, JudgedMetric) and m.name == name)
    late = ", and a minute to arrive" if metric.period >= 60 else ""
    return f"{settings.min_samples} datapoints of {metric.period}s{late}"


def stickiness(facts: Facts) -> Check:
    """The listener's target group stickiness (which overrides weights) against the old slot's drain."""
    rel = facts.release
    listener = _listener(facts)
    if rel is None or listener is None or not listener.stickiness_seconds:
        return Check("stickiness", OK, "no target group stickiness on the release listener")
    drain = min((g.drain_seconds for g in facts.target_groups), default=300)
    if rel.keep_old_slot_warm or listener.stickiness_seconds <= drain:
        return Check(
            "stickiness", OK, f"stickiness of {listener.stickiness_seconds} s ends before the old slot scales down"
        )
    return Check(
        "stickiness",
        FAIL,
        f"listener :{listener.port} keeps a client on a slot for {listener.stickiness_seconds} s (target group stickiness), "
        f"longer than the old slot's {drain} s drain before it scales to 0: stuck clients get 503s; lower the duration "
        f"to {drain} s or set release.keep_old_slot_warm: true",
    )


def listener_actions(facts: Facts) -> Check:
    """The release listener exists, forwards to both slots, and what else it does (authenticate-*) is noted."""
    rel = facts.release
    if rel is None or facts.load_balancer is None:
        return (
            Check("listener", OK, "no release load balancer to check")
            if rel is None
            else no_load_balancer(facts, "listener")
        )
    listener = _listener(facts)
    if listener is None:
        ports = ", ".join(str(listener.port) for listener in facts.listeners) or "none"
        return Check(
            "listener",
            FAIL,
            f"load balancer {facts.load_balancer} has no listener on :{rel.listener_port} (ports: {ports}); "
            "create it in your infrastructure code",
        )
    if rel.load_balancer_type == "classic":
        return Check(
            "listener", OK, f"Classic ELB listener :{listener.port}: a release attaches each slot's group in turn"
        )
    absent = [g.name for g in facts.target_groups if g.arn not in listener.forwards_to]
    if absent or "forward" not in listener.actions:
        return Check(
            "listener",
            FAIL,
            f"listener :{listener.port} does not forward to {listed(absent) or 'the slots'}; give its default action a "
            "weighted forward to both slot target groups (blue 100, green 0)",
        )
    others = [a for a in listener.actions if a != "forward"]
    if others:
        return Check(
            "listener",
            WARN,
            f"listener :{listener.port} runs {', '.join(others)} before its forward: each weight change must send "
            "it again (ModifyListener replaces the whole action list)",
        )
    return Check("listener", OK, f"listener :{listener.port} forwards to both slots")


def smoke_port(facts: Facts) -> Check:
    """The smoke check's test listener port is free on the load balancer."""
    rel = facts.release
    if rel is None or rel.smoke_check is None:
        return Check("smoke-port", OK, "no smoke check configured")
    if facts.load_balancer is None:
        return no_load_balancer(facts, "smoke-port")
    port = rel.smoke_check.port
    if any(listener.port == port for listener in facts.listeners):
        return Check(
            "smoke-port",
            FAIL,
            f"load balancer {facts.load_balancer} already has a listener on :{port}, which the smoke check "
            "would replace; give release.smoke_check.port a free port",
        )
    return Check("smoke-port", OK, f":{port} is free for the smoke check's test listener")


def table(facts: Facts) -> Check:
    """The lock and ledger table exists, or 'invoke setup' will make it."""
    if facts.table_exists is None:
        return Check("table", FAIL, f"cannot read DynamoDB table {facts.table}: {facts.errors.get('table', 'unknown')}")
    if facts.table_exists:
        return Check("table", OK, f"DynamoDB table {facts.table} (lock and ledger) exists")
    return Check(
        "table", OK, f"DynamoDB table {facts.table} does not exist yet; 'invoke setup --env {facts.env}' makes it"
    )


def ebs_key(facts: Facts) -> Check:
    """The account's default EBS key, and when it is customer-managed the KMS rights EC2 uses on the caller's behalf."""
    ebs = facts.ebs
    if ebs is None:
        return Check("ebs-key", WARN, f"cannot read the default EBS key: {facts.errors.get('ebs', 'unknown')}")
    used = facts.encrypt_boot or ebs.by_default
    if not ebs.customer_managed or not used:
        return Check(
            "ebs-key",
            OK,
            f"default EBS key {ebs.key}"
            + (" (AWS managed)" if not ebs.customer_managed else " (not used: no encryption)"),
        )
    denied = sorted({d.action for d in ebs.key_rights if not d.allowed})
    if not ebs.key_rights:
        return Check(
            "ebs-key",
            WARN,
            f"default EBS key {ebs.key} is customer-managed and the caller's rights on it cannot be simulated; it needs "
            "kms:CreateGrant, kms:Decrypt, kms:DescribeKey through EC2",
        )
    if denied:
        return Check(
            "ebs-key",
            FAIL,
            f"default EBS key {ebs.key} is customer-managed and the caller may not {', '.join(denied)} on it (through EC2): "
            "CopyImage and RunInstances of encrypted volumes fail; grant them in its key policy or the caller's policy",
        )
    return Check(
        "ebs-key",
        OK,
        f"default EBS key {ebs.key} is customer-managed; the caller's policies allow CreateGrant, Decrypt, DescribeKey "
        "(its key policy must too)",
    )


def _listener(facts: Facts):
    if facts.release is None:
        return None
    return next((listener for listener in facts.listeners if listener.port == facts.release.listener_port), None)


def no_load_balancer(facts: Facts, name: str) -> Check:
    """A check that cannot run because the release's load balancer was not found (or not readable)."""
    why = facts.errors.get("load_balancer", "the load balancer was not found")
    return Check(name, FAIL, f"{why}; create it in your infrastructure code or fix release.load_balancer")
