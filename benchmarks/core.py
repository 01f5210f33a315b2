"""What every benchmark part returns: figures (median, min, max of several runs) and tables."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Config:
    smoke: bool = False
    runs: int = 5  # repetitions behind each figure (parts may use fewer for long replays)
    cost_users: int | None = None  # the cost replays' users, when not the model's 1,000
    # The cost part's shapes besides the reference (None: all of them), and
    # how many processes replay them (None: one per core).
    cost_shapes: tuple[str, ...] | None = None
    jobs: int | None = None


@dataclass
class Figure:
    key: str  # stable id in results.json, e.g. "cost.usd_per_million_events"
    label: str
    unit: str
    samples: list[float]
    goal: float | None = None
    goal_op: str = "<="  # "<=" or ">="
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def low(self) -> float:
        return min(self.samples)

    @property
    def high(self) -> float:
        return max(self.samples)

    @property
    def met(self) -> bool | None:
        if self.goal is None:
            return None
        return self.median <= self.goal if self.goal_op == "<=" else self.median >= self.goal

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "unit": self.unit,
            "median": self.median,
            "min": self.low,
            "max": self.high,
            "runs": len(self.samples),
            "samples": self.samples,
            "goal": None if self.goal is None else f"{self.goal_op} {self.goal:g}",
            "met": self.met,
            "note": self.note,
        }


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[Any]]

    def as_dict(self) -> dict[str, Any]:
        return {"title": self.title, "headers": self.headers, "rows": self.rows}


@dataclass
class PartResult:
    part: str
    title: str
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)
    # A part's conclusions in a form other tools read (the scale part's ceilings).
    summary: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        found = {
            "title": self.title,
            "parameters": self.parameters,
            "figures": {f.key: f.as_dict() for f in self.figures},
            "tables": [t.as_dict() for t in self.tables],
            "notes": self.notes,
        }
        if self.summary:
            found["summary"] = self.summary
        return found


def fmt(value: float) -> str:
    """A figure for a table: 3 significant digits, no scientific notation for usual sizes."""
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 1:
        return f"{value:.3g}" if magnitude < 100 else f"{value:.0f}"
    return f"{value:.3g}"


def render(table: Table) -> str:
    cells = [[str(c) for c in table.headers]] + [[str(c) for c in row] for row in table.rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(table.headers))]
    lines = [table.title]
    for n, row in enumerate(cells):
        lines.append(
            "  ".join(
                c.rjust(w) if i else c.ljust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
