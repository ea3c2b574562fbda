"""What is wrong with a data file, said precisely: file, line, field, what was expected."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    path: str
    line: int | None  # 1-based line (JSONL/CSV) or row index (datasets); None: whole file
    field: str | None
    message: str
    severity: str = "error"  # "error" or "warning"

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        what = f"field '{self.field}': " if self.field else ""
        return f"{where}: {self.severity}: {what}{self.message}"


class DataValidationError(ValueError):
    """Raised when a file has errors; carries every problem found (errors first)."""

    def __init__(self, problems: list[Problem], shown: int = 10):
        self.problems = problems
        errors = [p for p in problems if p.severity == "error"]
        lines = [str(p) for p in errors[:shown]]
        if len(errors) > shown:
            lines.append(f"... and {len(errors) - shown} more errors")
        super().__init__("\n".join(lines))
