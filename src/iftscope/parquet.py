"""Parquet copies of the run folder's tables (runs.csv, per-question records) for pandas, polars
and DuckDB users: the same columns as the CSV/JSONL they copy, written atomically with pyarrow.

The CSV and JSONL stay the run's own record; a Parquet file is a typed copy made next to it
(runfolder.parquet_twin names it). pyarrow comes with the `[parquet]` extra; the recipe key
`parquet` says what happens without it: null (the default) skips with a one-line note, true is
refused by the recipe validation before any work (see iftscope.extras); false writes nothing.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from iftscope.extras import missing
from iftscope.runfolder import parquet_twin
from iftscope.runs import read_jsonl


def parquet_enabled(wanted: bool | None) -> bool:
    """Whether to write Parquet: `wanted` None (auto) when pyarrow is installed, else saying so on
    stderr; True: required (ImportError naming the extra without it); False: never."""
    if wanted is False:
        return False
    problem = missing("parquet")
    if problem is None:
        return True
    if wanted:
        raise ImportError(f"parquet: true: {problem}")
    print(f"iftscope: Parquet copies skipped ({problem})", file=sys.stderr)
    return False


def _column(values: list[Any]):
    """One column as pyarrow infers it; a column mixing kinds (a number and a text) as JSON text."""
    import pyarrow as pa

    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else json.dumps(v, ensure_ascii=False) for v in values])


def write_parquet(path: str | Path, rows: Sequence[dict[str, Any]]) -> Path:
    """`rows` as a Parquet table at `path`, atomically: columns in first-seen key order (a key a
    row lacks is null there), written to a temporary sibling and renamed into place."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    table = pa.table({k: _column([row.get(k) for row in rows]) for k in columns})
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def jsonl_twins(files: Iterable[Path]) -> list[Path]:
    """A Parquet copy next to each JSONL file that has none newer than it (records are written
    once, so a rerun of the analysis converts only what is new). Returns the files written."""
    out = []
    for src in files:
        twin = parquet_twin(src)
        if not src.exists() or (twin.exists() and twin.stat().st_mtime >= src.stat().st_mtime):
            continue
        out.append(write_parquet(twin, read_jsonl(src)))
    return out
