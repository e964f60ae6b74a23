"""Result rows (dataclasses) as people read them (markdown) and as machines do (CSV)."""
from __future__ import annotations

import csv
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any


def _cell(name: str, value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if name.endswith("_ms") else f"{value:.4f}"
    return str(value)


def markdown_table(rows: list[Any]) -> str:
    """A markdown table of dataclass rows, a column per field (latencies, ``*_ms``, to 3 decimals)."""
    header = [field.name for field in fields(rows[0])]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(name, value) for name, value in asdict(row).items()) + " |" for row in rows]
    return "\n".join(lines)


def write_csv(path: Path, rows: list[Any]) -> None:
    """The rows as a CSV file with a header line."""
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[field.name for field in fields(rows[0])])
        writer.writeheader()
        writer.writerows(asdict(row) for row in rows)
