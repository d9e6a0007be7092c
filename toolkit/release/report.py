"""The picture of every release and rollback: its ledger entry and the load balancer's access logs, drawn as one HTML file.

Where: ``<state>/releases/<app>/<env>/v<N>.html`` (``<state>``: the
environment's ``state_dir``, ``.rodeo`` or ``RODEO_STATE_DIR``), next to
nothing else of the release: the ledger itself is the app's DynamoDB table.
``rollout`` writes it when a run ends, released or rolled back; ``again``
(``invoke releases --report vN``) draws it again from the ledger and the logs
as they are now; ``latest`` is the newest (``invoke status`` names it).

What: the span from the run's start to its end, per slot (the run's new and
old slot) in buckets of a few seconds (``toolkit.canary.buckets``): requests
per second, 5xx, p50 and p99 response time, read from the access logs
through the canary analysis's own source (``toolkit.canary.sources``); the
listener's weights and the run's events from its ledger entry (``timeline``,
marked by ``rollout``), and each judged step's verdict and window
(``analysis``). ``gather`` reads, ``toolkit.release.picture.render`` draws.

On AWS an access log reaches S3 5 to 10 minutes after its requests: a page
drawn when the run ends lacks its last minutes, and says so.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.aws import AWS_ERRORS, explain
from toolkit.canary import sources
from toolkit.canary.buckets import bucketed, width_for
from toolkit.canary.samples import Series
from toolkit.config import Config
from toolkit.errors import ReleaseError
from toolkit.release import history, judging, ledger, slots
from toolkit.release.picture import Mark, Picture, SlotSeries, render
from toolkit.release.timeline import WEIGHTS, events_of
from toolkit.ui import Reporter

LATE = sources.ACCESS_LOG_NEED  # seconds after a request when AWS has surely delivered its access log line


@dataclass(frozen=True)
class Report:
    """A page written: which release, where, what it counted; ``to_dict`` is ``--json``."""

    number: int
    path: str
    requests: dict[str, int]  # per slot, over the page's span
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def lines(self) -> list[str]:
        counted = ", ".join(f"{slot} {n}" for slot, n in self.requests.items())
        return [f"v{self.number}: {self.path} (requests {counted})", *(f"  {n}" for n in self.notes)]


def folder(state_dir: Path, config: Config) -> Path:
    """Where the pages of ``config``'s environment go."""
    return Path(state_dir) / "releases" / config.app / config.env


def write(config: Config, aws: Any, env: slots.Env, entry: dict, now: float | None = None) -> Report | None:
    """Draw the release of ``entry`` (a ledger entry) into its page; None when ``aws`` keeps no state folder."""
    state_dir = getattr(aws, "state_dir", None)
    if state_dir is None or not entry.get("number"):
        return None
    picture = gather(config, aws, env, entry, time.time() if now is None else now)
    path = folder(state_dir, config) / f"v{entry['number']}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".html.partial")
    partial.write_text(render(picture))
    partial.replace(path)  # a reader never sees half a page
    return Report(entry["number"], str(path), {s.slot: s.requests for s in picture.slots}, picture.notes)


def draw(config: Config, aws: Any, env: slots.Env, entry: dict, reporter: Reporter) -> str | None:
    """``write`` as a run ends: the page's path, or None; a page that cannot be drawn is a warning, never an error."""
    try:
        written = write(config, aws, env, entry)
    except Exception as exc:  # the run's own outcome matters more than its picture
        explained = explain(exc)
        reporter.warn(
            f"the release's picture was not drawn: {explained.message if explained else exc}; "
            f"'invoke releases --report v{entry.get('number')}' tries again"
        )
        return None
    return written.path if written else None


def again(config: Config, aws: Any, number: int | None = None) -> Report:
    """``invoke releases --report [vN]``: draw release N (default: the newest) again, from the ledger and the logs now."""
    entries = ledger.every(config, aws)
    numbered = [e for e in entries if e.get("number")]
    entry = next((e for e in numbered if number is None or e["number"] == number), None)
    if entry is None:
        listed = ", ".join(f"v{e['number']}" for e in numbered[:12]) or "none yet"
        raise ReleaseError(
            f"no release v{number} is recorded" if number else "no release is recorded yet",
            f"releases that can be drawn: {listed} ('invoke releases' lists them)",
        )
    written = write(config, aws, slots.resolve(config, aws), entry)
    if written is None:
        raise ReleaseError("this environment keeps no state folder to write the page to", "run it through 'invoke'")
    return written


def latest(config: Config, state_dir: Path | None) -> str | None:
    """The page of the newest release drawn in ``state_dir``, or None."""
    if state_dir is None:
        return None
    pages = [(int(p.stem[1:]), p) for p in folder(state_dir, config).glob("v*.html") if p.stem[1:].isdigit()]
    return str(max(pages)[1]) if pages else None


def gather(config: Config, aws: Any, env: slots.Env, entry: dict, now: float) -> Picture:
    """What the page of ``entry`` shows: its span, each slot's buckets, weights, events and verdicts."""
    start, end = span(entry, now)
    found, notes = _requests(aws, env, [entry["new_slot"], entry["old_slot"]], start, end)
    return picture_of(f"{config.app}/{config.env}", entry, found, now, tuple(notes))


def span(entry: dict, now: float) -> tuple[float, float]:
    """The span a page draws: from the run's start to its end (to ``now`` while it runs)."""
    return ledger.epoch(entry["started_at"]), ledger.epoch(entry["ended_at"]) if entry.get("ended_at") else now


def picture_of(where: str, entry: dict, found: dict[str, Series], now: float, notes: tuple[str, ...] = ()) -> Picture:
    """The picture of ``entry`` (a ledger entry) with each slot's requests ``found``, drawn at ``now`` (pure)."""
    start, end = span(entry, now)
    roles = {entry["new_slot"]: ("new", entry.get("to_ami")), entry["old_slot"]: ("old", entry.get("from_ami"))}
    width = width_for(end - start)
    series = tuple(
        SlotSeries(slot, role, ami, tuple(bucketed(found.get(slot, Series()).requests, start, end, width)))
        for slot, (role, ami) in roles.items()
    )
    events = events_of(entry.get("timeline"))
    marks = sorted([Mark(e.at, e.kind, e.text) for e in events] + _verdicts(entry), key=lambda m: m.at)
    if now - end < LATE:
        notes += (
            f"Drawn {now - end:.0f} s after the run ended. On AWS the load balancer delivers its access logs 5 to "
            f"10 minutes after the requests, so the last minutes may be missing here: 'invoke releases --report "
            f"v{entry['number']}' draws this page again from the logs.",
        )
    run = history.run_of(entry)
    return Picture(
        title=f"{where} {run.name}: {run.kind} of {run.ami} (config v{run.config_version})",
        outcome=run.line(),
        start=start,
        end=end,
        width=width,
        slots=series,
        weights=tuple((e.at, e.weights) for e in events if e.kind == WEIGHTS and e.weights),
        marks=tuple(marks),
        notes=notes,
        rendered_at=now,
    )


def _requests(aws: Any, env: slots.Env, wanted: list[str], start: float, end: float) -> tuple[dict, list[str]]:
    """Each slot's requests of [start, end] from the access logs, and a note when they cannot be read."""
    if env.classic:
        return {}, [
            "No traffic drawn: a Classic ELB's access logs do not say which slot served a request (weights and "
            "gates are drawn)."
        ]
    try:
        source = sources.access_logs(aws, judging.load_balancer_arn(env.listener_arn))
        return source.read({slot: env.target_groups[slot] for slot in wanted}, start, end), []
    except ReleaseError:  # the access logs are off
        return {}, [
            "No traffic drawn: the load balancer's access logs are off (turn them on in your infrastructure code: "
            "access_logs.s3.enabled, see the README's 'Canary analysis')."
        ]
    except AWS_ERRORS as exc:
        return {}, [f"No traffic drawn: the access logs could not be read ({exc})."]


def _verdicts(entry: dict) -> list[Mark]:
    """A mark per judged step: at the judgement, its window shaded, the deciding metrics' lines."""
    out = []
    for record in entry.get("analysis") or ():
        deciding = [m for m in record.get("metrics", []) if m.get("verdict") == record["verdict"]]
        said = "; ".join(m.get("reason", "") for m in deciding)
        text = f"canary analysis at {record['weight']}%: {record['verdict']}, {record['decision']}" + (
            f": {said}" if said else ""
        )
        judged = (ledger.epoch(record["start"]), ledger.epoch(record["end"]))
        out.append(Mark(judged[1], "judge", text, record["verdict"], judged))
    return out
