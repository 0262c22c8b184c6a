"""Result rows, the printed table and the JSON file."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass
class Row:
    item: str
    measurement: str
    value: str
    target: str = "-"
    ratio: str = "-"
    passed: bool | None = None  # None: informational, no target

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "FAIL", None: "info"}[self.passed]


def ratio_row(item: str, measurement: str, value: float, reference: float, limit: float | None,
              unit: str = "s") -> Row:
    ratio = value / reference if reference > 0 else float("inf")
    return Row(item, measurement, f"{value:.3f} {unit} vs {reference:.3f} {unit}",
               f"<= {limit:g}x" if limit is not None else "-", f"{ratio:.2f}x",
               None if limit is None else ratio <= limit)


def limit_row(item: str, measurement: str, value: float, limit: float | None, unit: str,
              fmt: str = ".3f") -> Row:
    ratio = f"{value / limit:.2f} of target" if limit else "-"
    return Row(item, measurement, f"{value:{fmt}} {unit}",
               f"<= {limit:g} {unit}" if limit is not None else "-", ratio,
               None if limit is None else value <= limit)


def format_table(rows: list[Row]) -> str:
    headers = ("#", "measurement", "value", "target", "ratio", "result")
    cells = [(r.item, r.measurement, r.value, r.target, r.ratio, r.verdict) for r in rows]
    widths = [max(len(str(c[i])) for c in [headers, *cells]) for i in range(len(headers))]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)), line]
    out += ["  ".join(str(c).ljust(w) for c, w in zip(cell, widths, strict=True))
            for cell in cells]
    return "\n".join(out)


def format_markdown(rows: list[Row]) -> str:
    out = ["| # | measurement | value | target | ratio | result |", "|---|---|---|---|---|---|"]
    out += [f"| {r.item} | {r.measurement} | {r.value} | {r.target} | {r.ratio} | {r.verdict} |"
            for r in rows]
    return "\n".join(out)


def write_json(path: Path, meta: dict[str, Any], rows: list[Row],
               details: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"meta": meta, "rows": [{**asdict(r), "result": r.verdict} for r in rows],
               "details": details}
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
