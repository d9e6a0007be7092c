"""The smoke check: requests to the new slot through a test listener, before it takes any traffic.

As CodeDeploy's test listener does, the load balancer gets a second listener
(``smoke_check.port``) whose forward action sends everything to the new slot's
target group; Rodeo makes it, sends ``smoke_check.requests`` GETs of
``smoke_check.path`` through it, and deletes it. A listener made for this
check alone can only route to the new slot: re-pointing a standing one would
race the change (an answer from the old slot could pass the check). Every answer must be 2xx, or the release
rolls back before any weight moves. The listener carries the tag
``rodeo:smoke-check``: a killed run's is deleted by the next one, a
listener without it on that port is refused, never deleted. It works from anywhere the load balancer
answers (no route into the instances' VPC is needed): the environment's
``listener_url`` says where (on the live local stack a HAProxy frontend on a
loopback port, which appears a moment after the listener is made).
"""

from __future__ import annotations

import functools
import time
import urllib.error
import urllib.request
from typing import Any, Callable

from toolkit.config import Release
from toolkit.errors import ReleaseError
from toolkit.release import slots
from toolkit.ui import Reporter

TAG = "rodeo:smoke-check"  # on the test listener Rodeo makes: the only listeners it ever deletes
ROUTE_TIMEOUT = 30.0  # a new listener (or its new target) takes a moment before it answers


class SmokeFailed(Exception):
    """The new slot answered the smoke check badly; the message says how."""


def check(env: slots.Env, aws: Any, rel: Release, slot: str, reporter: Reporter) -> str:
    """Point the test listener at ``slot``'s target group and GET the check's path through it; SmokeFailed on a non-2xx."""
    smoke = rel.smoke_check
    if smoke is None:
        return "not configured"
    with reporter.step(
        f"smoke check: {smoke.requests} x GET {smoke.path} through test listener :{smoke.port} (only {slot})"
    ) as box:
        listener = open_test_listener(env, aws, rel, slot)
        try:
            where = functools.partial(aws.listener_url, rel.load_balancer, smoke.port)
            codes = [_get(where, smoke.path, smoke.timeout_seconds, first=(i == 0)) for i in range(smoke.requests)]
        finally:
            aws.client("elbv2").delete_listener(ListenerArn=listener)
        bad = [c for c in codes if not 200 <= c < 300]
        if bad:
            raise SmokeFailed(
                f"smoke check {smoke.path} through the test listener answered {bad[0]} ({len(bad)} of {len(codes)} bad)"
            )
        box["result"] = f"smoke check passed: {len(codes)}/{len(codes)} answered 2xx"
    return f"passed {len(codes)}"


def open_test_listener(env: slots.Env, aws: Any, rel: Release, slot: str) -> str:
    """A fresh test listener sending all of its traffic to ``slot``'s target group, tagged ``rodeo:smoke-check``; its ARN.

    One a killed run left behind (it carries the tag) is deleted first: it may
    route to another slot. A listener on the port without the tag is someone
    else's: SmokeFailed, and it is left alone.
    """
    elbv2 = aws.client("elbv2")
    foreign = []
    for listener, ours in _on_port(env, aws, rel.smoke_check.port):
        if ours:
            elbv2.delete_listener(ListenerArn=listener)
        else:
            foreign.append(listener)
    if foreign:
        raise SmokeFailed(
            f"port {rel.smoke_check.port} got a listener Rodeo did not make ({foreign[0]}): it was left alone"
        )
    action = [
        {
            "Type": "forward",
            "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": env.target_groups[slot], "Weight": 1}]},
        }
    ]
    made = elbv2.create_listener(
        LoadBalancerArn=_balancer(env),
        Protocol="HTTP",
        Port=rel.smoke_check.port,
        DefaultActions=action,
        Tags=[{"Key": TAG, "Value": slot}],
    )
    return made["Listeners"][0]["ListenerArn"]


def check_port(env: slots.Env, aws: Any, rel: Release) -> None:
    """ReleaseError when the smoke check's port has a listener Rodeo did not make (before a release changes anything).

    Rodeo deletes only the listeners it tagged ``rodeo:smoke-check``; a
    listener of the team's own infrastructure on that port is never touched.
    """
    if rel.smoke_check is None:
        return
    foreign = [listener for listener, ours in _on_port(env, aws, rel.smoke_check.port) if not ours]
    if foreign:
        raise ReleaseError(
            f"release.smoke_check.port {rel.smoke_check.port}: the load balancer {rel.load_balancer} already has a listener "
            f"there that Rodeo did not make ({foreign[0]})",
            "give smoke_check a port no listener uses (Rodeo makes and deletes its own test listener there), or remove that listener",
        )


def _on_port(env: slots.Env, aws: Any, port: int) -> list[tuple[str, bool]]:
    """``(ARN, made by Rodeo)`` of each listener of the load balancer on ``port``."""
    elbv2 = aws.client("elbv2")
    arns = [
        item["ListenerArn"]
        for item in elbv2.describe_listeners(LoadBalancerArn=_balancer(env))["Listeners"]
        if item["Port"] == port
    ]
    if not arns:
        return []
    tags = {
        d["ResourceArn"]: {t["Key"] for t in d.get("Tags", [])}
        for d in elbv2.describe_tags(ResourceArns=arns)["TagDescriptions"]
    }
    return [(arn, TAG in tags.get(arn, set())) for arn in arns]


def _balancer(env: slots.Env) -> str:
    return env.listener_arn.replace(":listener/", ":loadbalancer/").rsplit("/", 1)[0]


def _get(where: Callable[[], str | None], path: str, timeout: float, first: bool) -> int:
    """The status of one GET; the first one waits (bounded) for the listener to exist and answer at all."""
    deadline = time.monotonic() + (ROUTE_TIMEOUT if first else 0)
    while True:
        base = where()
        url = f"{base}{path}"
        try:
            if base is None:
                raise urllib.error.URLError("the test listener is not there yet")
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                return resp.status
        except urllib.error.HTTPError as exc:
            if not (
                first and exc.code == 503 and time.monotonic() < deadline
            ):  # no server up yet behind a new listener
                return exc.code
        except (urllib.error.URLError, OSError) as exc:
            if time.monotonic() >= deadline:
                raise SmokeFailed(f"smoke check {url} got no answer: {getattr(exc, 'reason', exc)}") from None
        time.sleep(0.5)
