"""Load multiple-choice questions from JSONL, MMLU-style CSV, or a `datasets` folder.

`read_questions` never raises on bad rows: it returns what it could read plus every problem,
which is what `iftscope data check` reports. `load_questions` is the strict front door the
stages use: any error stops the load with a message naming file, line and field.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

from iftscope.data.problems import DataValidationError, Problem
from iftscope.data.records import Where, row_to_question
from iftscope.types import Question

SPLIT_NAMES = {"train", "dev", "val", "validation", "test", "auxiliary_train"}
# How a file is read (not to be confused with probe.formats, the prompt formats): "auto" tells by the path.
FILE_READERS = ("auto", "jsonl", "csv", "hf")


def default_domain(path: Path) -> str:
    """xiezhi/history/test.jsonl -> history; mmlu/anatomy_test.csv -> anatomy."""
    stem = path.stem
    if stem in SPLIT_NAMES:
        return path.parent.name
    return re.sub(r"_(train|dev|val|validation|test)$", "", stem)


def detect_reader(path: Path) -> str:
    """The FILE_READERS entry that reads this path, told by its suffix (a folder: a saved dataset)."""
    if path.is_dir():
        if any((path / n).exists() for n in ("dataset_info.json", "state.json", "dataset_dict.json")):
            return "hf"
        raise ValueError(f"{path}: a folder, but not a dataset saved with `datasets.save_to_disk`")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        return "jsonl"
    if suffix in (".csv", ".tsv"):
        return "csv"
    raise ValueError(f"{path}: cannot tell the format from the suffix {suffix!r}; expected .jsonl or .csv")


def _decoded_lines(path: Path, problems: list[Problem]) -> list[tuple[int, str]]:
    """Lines of a file as text; lines with bytes that are not UTF-8 become problems."""
    out = []
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    for i, raw in enumerate(data.split(b"\n"), start=1):
        try:
            out.append((i, raw.decode("utf-8").rstrip("\r")))
        except UnicodeDecodeError as e:
            problems.append(
                Problem(
                    str(path),
                    i,
                    None,
                    f"bytes that are not UTF-8 at column {e.start + 1} "
                    f"(byte 0x{raw[e.start]:02x}); re-save the file as UTF-8",
                )
            )
    return out


def _jsonl_rows(path: Path, problems: list[Problem]) -> list[tuple[int, dict[str, Any]]]:
    rows = []
    for line_no, text in _decoded_lines(path, problems):
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            problems.append(Problem(str(path), line_no, None, f"malformed JSON: {e.msg} at column {e.colno}"))
            continue
        if not isinstance(obj, dict):
            problems.append(
                Problem(str(path), line_no, None, f"expected a JSON object, got {type(obj).__name__}")
            )
            continue
        rows.append((line_no, obj))
    return rows


def _csv_rows(path: Path, problems: list[Problem]) -> list[tuple[int, dict[str, Any]]]:
    lines = _decoded_lines(path, problems)
    if problems:
        return []
    text = "\n".join(t for _, t in lines)
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    rows, header = [], None
    for record in _records(reader, path, problems):
        line_no = reader.line_num
        if not record or not any(c.strip() for c in record):
            continue
        if header is None and not rows and record[0].strip().lower() == "question":
            header = [c.strip() for c in record]
            continue
        if header is not None:
            if len(record) != len(header):
                problems.append(
                    Problem(
                        str(path),
                        line_no,
                        None,
                        f"expected {len(header)} columns as in the header, got {len(record)}",
                    )
                )
                continue
            rows.append((line_no, dict(zip(header, record, strict=True))))
        elif len(record) < 4:
            problems.append(
                Problem(
                    str(path),
                    line_no,
                    None,
                    "expected columns: question, at least 2 "
                    f"options, answer letter; got {len(record)} columns",
                )
            )
        else:
            options = record[1:-1]
            row = {"question": record[0], "answer": record[-1]}
            row.update({chr(ord("A") + i): o for i, o in enumerate(options)})
            rows.append((line_no, row))
    return rows


def _records(reader, path: Path, problems: list[Problem]):
    """The reader's records until one is not valid CSV (a stray carriage return in an unquoted
    field, ...): that one becomes a problem naming its line, and reading stops."""
    try:
        yield from reader
    except csv.Error as e:
        problems.append(Problem(str(path), reader.line_num, None, f"not valid CSV: {e}"))


def _hf_rows(path: Path, split: str | None, columns: dict[str, str] | None, problems: list[Problem]):
    import datasets

    ds = datasets.load_from_disk(str(path))
    if isinstance(ds, datasets.DatasetDict):
        if split is None:
            if len(ds) != 1:
                raise ValueError(f"{path}: a DatasetDict with splits {sorted(ds)}; choose one with split=...")
            split = next(iter(ds))
        if split not in ds:
            raise ValueError(f"{path}: no split {split!r}; it has {sorted(ds)}")
        ds = ds[split]
    mapping = {"question": "question", "choices": "choices", "answer": "answer", **(columns or {})}
    missing = [c for c in mapping.values() if c not in ds.column_names and c != mapping.get("choices")]
    for field, col in mapping.items():
        if col in missing:
            problems.append(
                Problem(
                    str(path),
                    None,
                    field,
                    f"column {col!r} not in the dataset (columns: {ds.column_names}); "
                    f"map it with columns={{'{field}': 'your_column'}}",
                )
            )
    if missing:
        return []
    renamed = {col: field for field, col in mapping.items()}
    return [(i, {renamed.get(k, k): v for k, v in row.items()}) for i, row in enumerate(ds, start=1)]


def read_questions(
    path: str | Path,
    reader: str = "auto",
    domain: str | None = None,
    split: str | None = None,
    columns: dict[str, str] | None = None,
) -> tuple[list[Question], list[Problem]]:
    """Read a file leniently: the valid questions and every problem (errors and warnings)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    reader = detect_reader(path) if reader == "auto" else reader
    if reader not in FILE_READERS:
        raise ValueError(f"unknown format {reader!r}; expected one of {FILE_READERS}")
    problems: list[Problem] = []
    if reader == "jsonl":
        rows = _jsonl_rows(path, problems)
    elif reader == "csv":
        rows = _csv_rows(path, problems)
    else:
        rows = _hf_rows(path, split, columns, problems)
    dom = domain or default_domain(path)
    questions: list[Question] = []
    seen_ids: dict[str, int] = {}
    seen_text: dict[str, int] = {}
    for line_no, row in rows:
        where = Where(str(path), line_no)
        qid = str(row.get("id", f"{dom}-{line_no}"))
        if qid in seen_ids:
            problems.append(where.problem("id", f"duplicate id {qid!r} (first on line {seen_ids[qid]})"))
        else:
            seen_ids[qid] = line_no
        q, row_problems = row_to_question(row, where, default_id=qid, default_domain=dom)
        problems += row_problems
        if q is None or seen_ids[qid] != line_no:
            continue
        key = normalise_text(q.question)
        if key in seen_text:
            problems.append(
                where.problem("question", f"same question text as line {seen_text[key]}", "warning")
            )
        else:
            seen_text[key] = line_no
        questions.append(q)
    problems.sort(key=lambda p: (p.line or 0, p.severity != "error"))
    return questions, problems


def load_questions(
    path: str | Path,
    reader: str = "auto",
    domain: str | None = None,
    split: str | None = None,
    columns: dict[str, str] | None = None,
) -> list[Question]:
    """Load a file strictly; raise DataValidationError naming every error found."""
    questions, problems = read_questions(path, reader, domain, split, columns)
    if any(p.severity == "error" for p in problems):
        raise DataValidationError(problems)
    return questions


def normalise_text(text: str) -> str:
    """Key for spotting the same question twice: case, spacing and punctuation ignored."""
    return re.sub(r"[\W_]+", " ", text.lower()).strip()
