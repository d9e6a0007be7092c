"""A picture of one release: its data in, one self-contained HTML page out (pure).

``render(Picture)`` draws four charts on one time axis, by hand in inline
SVG (no script, no style sheet or font to fetch): each slot's weight, its
requests per second, its 5xx per bucket, and the median (solid) and 99th
percentile (dashed) of its response times. Every event of the release
(weights set, gates passed, the canary analysis's verdicts, a failure) is a
numbered line across the charts and a row of the table under them; each
judged window is shaded. The page carries its own data as JSON
(``<script type="application/json" id="rodeo-release">``, not run by
anything), so a test or a tool reads back exactly what was drawn.
"""

from __future__ import annotations

import dataclasses
import html
import json
import math
from dataclasses import dataclass
from datetime import datetime, timezone

from toolkit.canary.buckets import Bucket

WIDTH, LEFT, RIGHT, HEIGHT, TOP, BOTTOM = 960, 64, 28, 150, 20, 22
SLOT_COLORS = {"blue": "#1f63c6", "green": "#2b9a3e"}
OTHER_COLORS = ("#8c564b", "#9467bd", "#17becf")
MARK_COLORS = {"weights": "#777777", "gate": "#444444", "pass": "#6a3d9a", "failed": "#d62728", "done": "#000000"}
WARN_COLOR = "#e08a00"  # a verdict that is neither pass nor fail
TICKS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)


@dataclass(frozen=True)
class SlotSeries:
    """One slot's traffic in the picture."""

    slot: str
    role: str  # "new" (the slot the run moved traffic to) or "old"
    ami: str | None
    buckets: tuple[Bucket, ...]

    @property
    def requests(self) -> int:
        return sum(b.requests for b in self.buckets)

    @property
    def errors(self) -> int:
        return sum(b.errors for b in self.buckets)


@dataclass(frozen=True)
class Mark:
    """An event drawn across the charts: ``kind`` weights, gate, judge, failed or done."""

    at: float  # epoch seconds
    kind: str
    text: str
    verdict: str = ""  # a judge mark's: pass, marginal, insufficient, fail
    span: tuple[float, float] | None = None  # a judge mark's window (epoch seconds)

    @property
    def color(self) -> str:
        if self.kind == "judge":
            return {"pass": MARK_COLORS["pass"], "fail": MARK_COLORS["failed"]}.get(self.verdict, WARN_COLOR)
        return MARK_COLORS.get(self.kind, "#444444")


@dataclass(frozen=True)
class Picture:
    """Everything one release's page shows."""

    title: str  # "web/production v7: release of ami-1 (app 1.2.0, config v3)"
    outcome: str  # "released in 41s", "rolled back after 23s: <why>"
    start: float  # the span drawn (epoch seconds)
    end: float
    width: int  # bucket seconds
    slots: tuple[SlotSeries, ...]
    weights: tuple[tuple[float, dict[str, int]], ...]  # each change: when, weight per slot from then on
    marks: tuple[Mark, ...]
    notes: tuple[str, ...] = ()  # what the page cannot show (late logs, no logs)
    rendered_at: float = 0.0

    def to_dict(self) -> dict:
        """Plain data: what the page embeds as JSON."""
        return dataclasses.asdict(self)


def render(p: Picture) -> str:
    """The page: title, outcome, notes, the four charts and the table of events, with ``p``'s data embedded."""
    charts = [
        _chart(p, "weight (%)", _weight_lines(p), 100.0, "%", numbered=True),
        _chart(p, f"requests/s (per {p.width} s)", _traffic_lines(p, lambda b: b.rate), None, "/s"),
        _chart(p, f"5xx per {p.width} s", _error_bars(p), None, ""),
        _chart(p, "response time, ms (p50 solid, p99 dashed)", _latency_lines(p), None, " ms", axis=True),
    ]
    data = json.dumps(p.to_dict(), sort_keys=True).replace("<", "\\u003c")  # no text can end the script element
    return (
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
        f"<title>{_e(p.title)}</title><style>{STYLE}</style></head><body>\n"
        f"<h1>{_e(p.title)}</h1>\n<p class=outcome>{_e(p.outcome)}</p>\n"
        + "".join(f"<p class=note>{_e(n)}</p>\n" for n in p.notes)
        + _facts(p)
        + "\n".join(charts)
        + _events(p)
        + f'\n<script type="application/json" id="rodeo-release">{data}</script>\n</body></html>\n'
    )


def data_of(page: str) -> dict:
    """The data a page embeds (what ``Picture.to_dict`` gave ``render``)."""
    head = '<script type="application/json" id="rodeo-release">'
    body = page.split(head, 1)[1].split("</script>", 1)[0]
    return json.loads(body)


STYLE = (
    "body{font:14px system-ui,sans-serif;margin:24px;color:#222}h1{font-size:20px;margin:0 0 4px}"
    ".outcome{margin:0 0 8px}.note{background:#fff4d6;padding:4px 8px;margin:4px 0}"
    "table{border-collapse:collapse;margin:8px 0}td,th{padding:2px 10px 2px 0;text-align:left;vertical-align:top}"
    "svg{display:block;margin:6px 0}text{font:11px system-ui,sans-serif;fill:#444}"
)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _x(p: Picture, at: float) -> float:
    span = max(p.end - p.start, 1e-9)
    return round(LEFT + (min(max(at, p.start), p.end) - p.start) / span * (WIDTH - LEFT - RIGHT), 1)


def _y(value: float, top: float) -> float:
    return round(TOP + (1 - value / top) * (HEIGHT - TOP - BOTTOM), 1)


def nice(value: float) -> float:
    """The smallest of 1, 2, 5 times a power of ten that is at least ``value`` (1 for nothing)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= value * (1 - 1e-12))


def _color(p: Picture, slot: str) -> str:
    names = [s.slot for s in p.slots]
    return SLOT_COLORS.get(slot) or OTHER_COLORS[names.index(slot) % len(OTHER_COLORS) if slot in names else 0]


# Each series function returns [(slot, [(at, value or None), ...], dashed)], or drawn SVG for bars.
def _traffic_lines(p: Picture, value) -> list:
    return [(s.slot, [(b.start + b.width / 2, value(b)) for b in s.buckets], False) for s in p.slots]


def _latency_lines(p: Picture) -> list:
    out = []
    for s in p.slots:
        for q, dashed in (("p50", False), ("p99", True)):
            values = [getattr(b, q) for b in s.buckets]
            points = [(b.start + b.width / 2, None if v is None else v * 1000) for b, v in zip(s.buckets, values)]
            out.append((s.slot, points, dashed))
    return out


def _weight_lines(p: Picture) -> list:
    """Step lines: each slot's weight held from one change to the next, until the end."""
    out = []
    for slot in [s.slot for s in p.slots]:
        points: list[tuple[float, float | None]] = []
        for i, (at, weights) in enumerate(p.weights):
            if i:
                points.append((at, points[-1][1]))
            points.append((at, float(weights.get(slot, 0))))
        if points:
            points.append((p.end, points[-1][1]))
        out.append((slot, points, False))
    return out


def _error_bars(p: Picture) -> list:
    return [(s.slot, [(b.start, b.width, b.errors) for b in s.buckets], "bars") for s in p.slots]


def _chart(
    p: Picture, label: str, series: list, top: float | None, unit: str, axis: bool = False, numbered: bool = False
) -> str:
    """One chart: its grid, the judged windows, each series, the marks (``numbered``: with their numbers)."""
    values = [v for _, points, kind in series for point in points for v in point[-1:] if v is not None]
    top = top or nice(max(values, default=0.0))
    parts = [
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{_e(label)}">'
    ]
    parts += _spans(p) + _grid(p, top, unit, axis)
    for index, (slot, points, kind) in enumerate(series):
        if kind == "bars":
            parts += _bars(p, slot, points, top, index, len(series))
        else:
            parts += _polylines(
                slot, [(_x(p, at), None if v is None else _y(v, top)) for at, v in points], kind, _color(p, slot)
            )
    parts += _mark_lines(p, numbered)
    parts.append(f'<text x="{LEFT}" y="{TOP - 7}">{_e(label)}</text></svg>')
    return "".join(parts)


def _polylines(slot: str, points: list, dashed: bool, color: str) -> list[str]:
    """One polyline per run of points with a value (a bucket without one breaks the line); a lone point, a dot."""
    runs, run = [], []
    for x, y in points + [(None, None)]:
        if y is None:
            if run:
                runs.append(run)
            run = []
        else:
            run.append((x, y))
    dash = ' stroke-dasharray="4 3"' if dashed else ""
    return [
        f'<polyline class="{_e(slot)}" fill="none" stroke="{color}" stroke-width="1.5"{dash} '
        f'points="{" ".join(f"{x},{y}" for x, y in r)}"/>'
        if len(r) > 1
        else f'<circle class="{_e(slot)}" cx="{r[0][0]}" cy="{r[0][1]}" r="{1.5 if dashed else 2}" fill="{color}"/>'
        for r in runs
    ]


def _bars(p: Picture, slot: str, buckets: list, top: float, index: int, count: int) -> list[str]:
    out = []
    for start, width, errors in buckets:
        if errors:
            x0, x1 = _x(p, start), _x(p, start + width)
            w = max((x1 - x0) / count, 1.0)
            y = _y(errors, top)
            out.append(
                f'<rect class="{_e(slot)}" x="{round(x0 + index * w, 1)}" y="{y}" width="{round(w, 1)}" '
                f'height="{round(HEIGHT - BOTTOM - y, 1)}" fill="{_color(p, slot)}"/>'
            )
    return out


def _grid(p: Picture, top: float, unit: str, axis: bool) -> list[str]:
    base = HEIGHT - BOTTOM
    out = [f'<line x1="{LEFT}" y1="{base}" x2="{WIDTH - RIGHT}" y2="{base}" stroke="#999"/>']
    for value in (top / 2, top):
        y = _y(value, top)
        out.append(f'<line x1="{LEFT}" y1="{y}" x2="{WIDTH - RIGHT}" y2="{y}" stroke="#e4e4e4"/>')
        out.append(f'<text x="{LEFT - 4}" y="{y + 4}" text-anchor="end">{value:g}{_e(unit)}</text>')
    out.append(f'<text x="{LEFT - 4}" y="{base + 4}" text-anchor="end">0</text>')
    step = next((t for t in TICKS if (p.end - p.start) / t <= 12), TICKS[-1])
    at = 0
    while at <= p.end - p.start:
        x = _x(p, p.start + at)
        out.append(f'<line x1="{x}" y1="{TOP}" x2="{x}" y2="{base}" stroke="#f0f0f0"/>')
        if axis:
            out.append(f'<text x="{x}" y="{base + 15}" text-anchor="middle">+{at}s</text>')
        at += step
    return out


def _spans(p: Picture) -> list[str]:
    out = []
    for m in p.marks:
        if m.span:
            x0, x1 = _x(p, m.span[0]), _x(p, m.span[1])
            out.append(
                f'<rect x="{x0}" y="{TOP}" width="{round(x1 - x0, 1)}" height="{HEIGHT - TOP - BOTTOM}" '
                f'fill="{m.color}" fill-opacity="0.07"/>'
            )
    return out


def _mark_lines(p: Picture, numbered: bool) -> list[str]:
    """A dashed line per mark; ``numbered``: its number beside it, on one of three rows (marks close in time)."""
    out = []
    for number, m in enumerate(p.marks, 1):
        x = _x(p, m.at)
        out.append(
            f'<line x1="{x}" y1="{TOP}" x2="{x}" y2="{HEIGHT - BOTTOM}" stroke="{m.color}" stroke-dasharray="2 2"/>'
        )
        if numbered:
            y = TOP + 10 + ((number - 1) % 3) * 11
            out.append(f'<text x="{x + 2}" y="{y}" style="fill:{m.color}">{number}</text>')
    return out


def _when(p: Picture, at: float) -> str:
    return f"+{at - p.start:.1f}s ({datetime.fromtimestamp(at, timezone.utc):%H:%M:%S} UTC)"


def _facts(p: Picture) -> str:
    rows = [
        ("span", f"{_stamp(p.start)} to {_stamp(p.end)} ({p.end - p.start:.0f} s), buckets of {p.width} s"),
        *(
            (
                f"{s.slot} ({s.role})",
                f"{s.ami or 'no AMI'}: {s.requests} requests, {s.errors} 5xx",
            )
            for s in p.slots
        ),
        ("rendered", _stamp(p.rendered_at) if p.rendered_at else "-"),
    ]
    legend = " ".join(f'<span style="color:{_color(p, s.slot)}">&#9632; {_e(s.slot)}</span>' for s in p.slots)
    return (
        "<table>"
        + "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
        + f"<tr><th>slots</th><td>{legend}</td></tr></table>\n"
    )


def _events(p: Picture) -> str:
    rows = "".join(
        f'<tr><td style="color:{m.color}">{n}</td><td>{_e(_when(p, m.at))}</td><td>{_e(m.kind)}</td><td>{_e(m.text)}</td></tr>'
        for n, m in enumerate(p.marks, 1)
    )
    return f"\n<table><tr><th>#</th><th>when</th><th>what</th><th></th></tr>{rows}</table>"


def _stamp(at: float) -> str:
    return datetime.fromtimestamp(at, timezone.utc).isoformat(timespec="seconds")
