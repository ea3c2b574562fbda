"""`iftscope data check`: what is in these files, and what is wrong with them."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

from iftscope.data.loaders import detect_reader, normalise_text, read_questions
from iftscope.data.problems import Problem
from iftscope.types import LETTERS, Question


@dataclass
class FileReport:
    path: str
    questions: list[Question]
    problems: list[Problem]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]


@dataclass
class CheckReport:
    files: list[FileReport]
    overlaps: list[tuple[str, str, int]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(f.errors for f in self.files)


def expand_paths(paths: list[str | Path]) -> list[Path]:
    """Files as given; a plain folder stands for the .jsonl/.csv files under it."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            try:
                detect_reader(p)
                out.append(p)
                continue
            except ValueError:
                pass
            found = sorted(x for x in p.rglob("*") if x.suffix.lower() in (".jsonl", ".csv", ".tsv"))
            if not found:
                raise FileNotFoundError(f"{p}: a folder with no .jsonl or .csv files")
            out.extend(found)
        else:
            out.append(p)
    return out


def check_files(paths: list[str | Path]) -> CheckReport:
    files = []
    for path in expand_paths(paths):
        questions, problems = read_questions(path)
        files.append(FileReport(str(path), questions, problems))
    report = CheckReport(files)
    keys = {f.path: {normalise_text(q.question) for q in f.questions} for f in files}
    for a, b in combinations(files, 2):
        n = len(keys[a.path] & keys[b.path])
        if n:
            report.overlaps.append((a.path, b.path, n))
    return report


def _letter_line(questions: list[Question]) -> str:
    counts = Counter(q.answer for q in questions)
    n = max(len(questions), 1)
    width = max((len(q.choices) for q in questions), default=4)
    return "  ".join(f"{LETTERS[i]} {100 * counts[i] / n:4.1f}%" for i in range(width))


def format_report(report: CheckReport, max_problems: int = 20) -> str:
    lines = []
    for f in report.files:
        lines.append(
            f"{f.path}: {len(f.questions)} questions, {len(f.errors)} errors, {len(f.warnings)} warnings"
        )
        for p in (f.errors + f.warnings)[:max_problems]:
            lines.append(f"  {p}")
        hidden = len(f.problems) - max_problems
        if hidden > 0:
            lines.append(f"  ... and {hidden} more problems")
    everything = [q for f in report.files for q in f.questions]
    lines.append("")
    lines.append(f"Total: {len(everything)} valid questions in {len(report.files)} files")
    domains = Counter(q.domain or "(none)" for q in everything)
    lines.append("Per domain: " + ", ".join(f"{d} {n}" for d, n in sorted(domains.items())))
    n_options = Counter(len(q.choices) for q in everything)
    lines.append("Options per question: " + ", ".join(f"{k}: {v}" for k, v in sorted(n_options.items())))
    lines.append("Gold answer letters: " + _letter_line(everything))
    dup_opts = sum(1 for f in report.files for p in f.warnings if p.field == "choices")
    dup_q = sum(1 for f in report.files for p in f.warnings if p.field == "question")
    lines.append(
        f"Duplicates within files: {dup_opts} questions with repeated option texts, "
        f"{dup_q} repeated question texts"
    )
    if report.overlaps:
        lines.append("Overlap between files (same question text):")
        for a, b, n in report.overlaps:
            lines.append(f"  {a} & {b}: {n}")
    else:
        lines.append("Overlap between files: none")
    n_err = sum(len(f.errors) for f in report.files)
    lines.append(f"Result: {'OK' if report.ok else f'FAILED with {n_err} errors'}")
    return "\n".join(lines)
