"""``invoke verify --ami``: run an image's testinfra tests on an instance booted from an existing AMI.

``verify_ami`` looks the AMI up (its image from the ``rodeo:image`` tag unless
named), boots one throw-away host of it through the environment's connector
(``toolkit.hosts``: a sandbox on the local stack, a temporary instance on
AWS), runs the image's tests over SSH with the bake's own test step
(``toolkit.bake.image_tests.run``) and records the verdict on the AMI and its
snapshots (``rodeo:verified`` = ``true``/``false``, ``rodeo:verified-at``).

The run's folder ``<state>/verify/<check-id>/`` keeps the report
(``verify.xml``, ``verify.json``); the key and the host are removed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import secrets
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit import lineage
from toolkit.bake import image_tests
from toolkit.config import Config
from toolkit.errors import ImageError, VerifyError
from toolkit.hosts import Hosts
from toolkit.ui import Reporter


@dataclass(frozen=True)
class VerifyResult:
    """The verdict of one ``invoke verify --ami``."""

    ami: str
    image: str
    verified: bool
    tests: int
    failures: int
    report: str
    verified_at: str
    duration_s: float

    def to_dict(self) -> dict:
        """The result as ``--json`` prints it."""
        return dataclasses.asdict(self)

    def lines(self) -> list[str]:
        """The result as a person reads it."""
        verdict = "verified" if self.verified else "FAILED verification"
        return [
            f"\n{self.ami} ({self.image}) {verdict}: {self.tests - self.failures}/{self.tests} tests passed",
            f"  tagged rodeo:verified={str(self.verified).lower()} at {self.verified_at}",
            f"  report: {self.report}",
        ]


def verify_ami(
    config: Config,
    aws: Any,
    hosts: Hosts,
    ami: str,
    image: str | None = None,
    junit: Path | None = None,
    state_dir: Path = Path(".rodeo"),
    reporter: Reporter | None = None,
) -> VerifyResult:
    """Boot ``ami``, run its image's tests on it, tag the verdict, and return the result.

    Failing tests raise VerifyError carrying the result (``verified: false``),
    after the AMI is tagged. A missing AMI is an ImageError and nothing is created.
    """
    reporter = reporter or Reporter()
    started = time.monotonic()
    found = lineage.find_ami(aws, ami)
    if found is None:
        raise ImageError(f"{ami} does not exist in {aws.region}", "check the id and the environment (--env)")
    name = image_of(config, found, image)
    now = dt.datetime.now(dt.timezone.utc)
    check_id = f"{name}-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
    out_dir = Path(state_dir) / "verify" / check_id
    junit = Path(junit) if junit else out_dir / "verify.xml"
    reporter.info(f"verifying {ami} ({name}) as {check_id}")
    failure: VerifyError | None = None
    with hosts.test_host(config, found, name, out_dir, reporter) as host:
        reporter.info(f"→ run {config.image(name).tests} on {host.url}")
        junit.unlink(missing_ok=True)  # a stale report must not stand in for this run's
        try:
            report = image_tests.run(config, name, host, out_dir, junit, stdout=_test_output(reporter))
            reporter.ok(f"{report['tests']} tests passed")
        except VerifyError as exc:
            failure = exc
            reporter.warn("tests failed: the AMI will be tagged rodeo:verified=false")
    verified_at = record_verdict(aws, found, failure is None)
    result = _result(ami, name, failure is None, out_dir, junit, verified_at, time.monotonic() - started)
    if failure is not None:
        raise VerifyError(
            f"{ami} failed verification: {failure.message}",
            f"fix the playbook and bake again, or fix the test; report: {junit}",
            result=result,
        )
    return result


def image_of(config: Config, found: dict, image: str | None) -> str:
    """The image whose tests apply: ``image`` when given, else the AMI's ``rodeo:image`` tag."""
    name = image or found["tags"].get("rodeo:image")
    if not name:
        raise ImageError(f"{found['ImageId']} has no rodeo:image tag", "name its image with --image NAME")
    config.image(name)  # ConfigError listing the valid names
    return name


def record_verdict(aws: Any, found: dict, verified: bool) -> str:
    """Tag the AMI and its snapshots ``rodeo:verified`` and ``rodeo:verified-at``; return that time."""
    at = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    snapshots = [
        m["Ebs"]["SnapshotId"] for m in found.get("BlockDeviceMappings", []) if m.get("Ebs", {}).get("SnapshotId")
    ]
    tags = [
        {"Key": "rodeo:verified", "Value": "true" if verified else "false"},
        {"Key": "rodeo:verified-at", "Value": at},
    ]
    aws.client("ec2").create_tags(Resources=[found["ImageId"], *snapshots], Tags=tags)
    return at


def _result(ami: str, image: str, verified: bool, out_dir: Path, junit: Path, at: str, took: float) -> VerifyResult:
    try:
        report = json.loads((out_dir / "verify.json").read_text())
    except (OSError, ValueError):
        report = {}
    return VerifyResult(
        ami=ami,
        image=image,
        verified=verified,
        tests=report.get("tests", 0),
        failures=report.get("failures", 0) + report.get("errors", 0),
        report=str(junit),
        verified_at=at,
        duration_s=round(took, 2),
    )


def _test_output(reporter: Reporter) -> Any:
    """Where pytest's own lines go: with the progress (stderr in --json mode), or nowhere when quiet."""
    if reporter.quiet:
        return subprocess.DEVNULL
    stream = reporter.console.file
    try:
        stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    stream.flush()
    return stream
