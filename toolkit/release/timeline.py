"""What a release did when: the events its picture marks (``toolkit.release.report``).

``rollout`` marks, as the run goes: the weights it set (and the weights before
its first change), each gate that passed (the new slot healthy, the smoke
check, each step's watch) or failed, the rollback, the end. The canary
analysis's verdicts are in the ledger entry already (``analysis``, each with
its window), so they are not marked twice. The events go into the ledger
entry (``timeline``) when the run ends, so ``invoke releases --report vN``
can draw the release again later.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

WEIGHTS, GATE, FAILED, DONE = "weights", "gate", "failed", "done"


@dataclass(frozen=True)
class Event:
    """One moment of a release: ``kind`` is weights, gate, failed or done."""

    at: float  # epoch seconds
    kind: str
    text: str
    weights: dict[str, int] | None = None  # kind weights: the listener's weight per slot from then on

    def to_dict(self) -> dict:
        """Plain data (no weights key when there are none)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass
class Timeline:
    """The events of one run, in the order they happened."""

    events: list[Event] = field(default_factory=list)

    def mark(self, kind: str, text: str, weights: dict[str, int] | None = None, at: float | None = None) -> None:
        """Add an event now (or ``at``, epoch seconds)."""
        self.events.append(Event(time.time() if at is None else at, kind, text, dict(weights) if weights else None))

    def weights(self, weights: dict[str, int], at: float | None = None) -> None:
        """The listener's weights changed to ``weights``."""
        said = ", ".join(f"{slot} {weight}%" for slot, weight in sorted(weights.items(), key=lambda kv: -kv[1]))
        self.mark(WEIGHTS, f"weights: {said}", weights, at)

    def to_list(self) -> list[dict]:
        """The events as plain data, for the ledger entry."""
        return [e.to_dict() for e in self.events]


def events_of(data: list[dict] | None) -> list[Event]:
    """The events a ledger entry holds (an entry from before timelines: none)."""
    return [Event(float(d["at"]), d["kind"], d.get("text", ""), d.get("weights")) for d in data or ()]
