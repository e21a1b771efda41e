"""Transparency figures: what hashcheck did, per month, per list and per customer (`hashcheck stats`).

From the stack's own records, nothing else: the FingerprintTable (every object scanned, its status,
its tenant) and the CaseTable (every match or hold, its lists, its decision, whether it was reported).
Per month: objects scanned and how they ended; per list and month: cases matched, quarantined, held for
review, released as false positives, confirmed and reported; per tenant: the same from the customer's
side. Counts only, never a hash or a key. `plot` draws the monthly figures as a PNG for a transparency
report, with Pillow (no plotting library in the layer).

A record holds an object version's latest status, so a month counts what the objects scanned in it
became; both tables are read with a paginated Scan (a tool for operators, never on the scan path).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hashcheck.status import CaseStatus, Decision, Verdict

OBJECT_FIGURES = ("scanned", "clean", "quarantined", "review", "unscannable", "opaque", "error", "released")
CASE_FIGURES = ("matched", "quarantined", "held", "released", "confirmed", "reported")


@dataclass
class Figures:
    since: str | None = None
    months: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    lists: dict[str, dict[str, Counter]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(Counter)))
    tenants: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))

    def to_dict(self) -> dict:
        return {
            "since": self.since,
            "months": {m: _only(c, OBJECT_FIGURES) for m, c in sorted(self.months.items())},
            "lists": {
                name: {m: _only(c, CASE_FIGURES) for m, c in sorted(per_month.items())}
                for name, per_month in sorted(self.lists.items())
            },
            "tenants": {t: dict(sorted(c.items())) for t, c in sorted(self.tenants.items())},
        }


def figures(
    records: Iterable[Mapping[str, Any]], cases: Iterable[Mapping[str, Any]], since: str | None = None
) -> Figures:
    """The figures of the object records and cases from `since` (an ISO date) on."""
    out = Figures(since)
    for record in records:
        when = str(record.get("scanned_at") or "")
        if since and when < since:
            continue
        status = str(record.get("status"))
        out.months[when[:7]].update(["scanned", status])
        if record.get("tenant"):
            out.tenants[str(record["tenant"])].update(["scanned", status])
    for case in cases:
        when = str(case.get("detected_at") or "")
        if since and when < since:
            continue
        outcomes = _case_outcomes(case)
        for list_id in case.get("lists") or []:
            out.lists[str(list_id)][when[:7]].update(["matched", *outcomes])
        if case.get("tenant"):
            out.tenants[str(case["tenant"])].update(f"case_{o}" for o in ["matched", *outcomes])
    return out


def _case_outcomes(case: Mapping[str, Any]) -> list[str]:
    status, decision = case.get("status"), case.get("decision")
    outcomes = []
    if status in (CaseStatus.QUARANTINED, CaseStatus.BLOCKED):
        outcomes.append("quarantined")
    if case.get("verdict") == Verdict.REVIEW and status == CaseStatus.OPEN and not decision:
        outcomes.append("held")
    if decision == Decision.RELEASED:
        outcomes.append("released")
    if decision == Decision.CONFIRMED:
        outcomes.append("confirmed")
    if case.get("reported_at"):
        outcomes.append("reported")
    return outcomes


def _only(counts: Counter, names: tuple[str, ...]) -> dict[str, int]:
    return {name: counts.get(name, 0) for name in names}


def as_text(figures: Figures) -> str:
    lines = [f"since {figures.since}" if figures.since else "all time", "", "objects per month"]
    lines.append(_row("month", OBJECT_FIGURES))
    lines += [_row(m, [c.get(n, 0) for n in OBJECT_FIGURES]) for m, c in sorted(figures.months.items())]
    lines += ["", "cases per list and month", _row("list / month", CASE_FIGURES)]
    for name, per_month in sorted(figures.lists.items()):
        lines += [_row(f"{name} {m}", [c.get(n, 0) for n in CASE_FIGURES]) for m, c in sorted(per_month.items())]
    tenant_figures = ("scanned", "quarantined", "review", "unscannable", "case_released")
    lines += ["", "per tenant", _row("tenant", tenant_figures)]
    lines += [_row(t, [c.get(n, 0) for n in tenant_figures]) for t, c in sorted(figures.tenants.items())]
    return "\n".join(lines)


def _row(first: str, values: Iterable[Any]) -> str:
    return f"{first[:40]:<40}" + "".join(f"{str(v).replace('case_', ''):>12}" for v in values)


# --- the plot ---------------------------------------------------------------------------------------

WIDTH, HEIGHT, MARGIN = 960, 560, 64
COLOURS = {"quarantined": (200, 60, 50), "held": (230, 160, 40), "released": (70, 140, 200), "reported": (90, 90, 90)}


def plot(figures: Figures, path: str, title: str = "hashcheck: objects scanned and actions per month") -> None:
    """Two panels: objects scanned per month; quarantined, held, released and reported per month."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=14)
    draw.text((MARGIN, 16), title, fill="black", font=font)
    months = sorted(set(figures.months) | {m for per in figures.lists.values() for m in per})
    actions: dict[str, Counter] = defaultdict(Counter)
    for per_month in figures.lists.values():
        for month, counts in per_month.items():
            actions[month].update({k: counts.get(k, 0) for k in COLOURS})
    half = (HEIGHT - 2 * MARGIN) // 2
    scanned = {m: {"scanned": figures.months[m].get("scanned", 0)} for m in months}
    _panel(draw, font, months, scanned, {"scanned": (60, 120, 80)}, MARGIN, MARGIN + half - 20, "objects scanned")
    by_action = {m: dict(actions[m]) for m in months}
    _panel(draw, font, months, by_action, COLOURS, MARGIN + half + 20, HEIGHT - MARGIN, "cases")
    image.save(path, "PNG")


def _panel(draw, font, months, values, colours, top, bottom, label) -> None:
    left, right = MARGIN + 40, WIDTH - MARGIN - 150  # the legend to the right of the bars
    draw.text((MARGIN - 40, top - 18), label, fill="black", font=font)
    draw.line([(left, bottom), (right, bottom)], fill="black")
    peak = max([v for m in months for v in values[m].values()] + [1])
    draw.text((left - 40, top), f"{peak:,}", fill="black", font=font)
    slot = min((right - left) / max(len(months), 1), 160)  # a few months: narrow bars, not a wall
    bar = slot * 0.8 / len(colours)
    for i, month in enumerate(months):
        x = left + i * slot + slot * 0.1
        for j, (name, colour) in enumerate(colours.items()):
            height = (bottom - top) * values[month].get(name, 0) / peak
            draw.rectangle([x + j * bar, bottom - height, x + (j + 1) * bar - 2, bottom], fill=colour)
        draw.text((x, bottom + 4), month, fill="black", font=font)
    for j, (name, colour) in enumerate(colours.items()):
        draw.rectangle([right + 30, top + j * 18, right + 42, top + j * 18 + 12], fill=colour)
        draw.text((right + 48, top + j * 18 - 2), name, fill="black", font=font)
