"""Property-based tests of the loaders and `data check` (hypothesis): arbitrary bytes, JSON and CSV
never end in a traceback, only in questions and problems; valid questions round-trip."""

import json
import string
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from iftscope.data.check import check_files
from iftscope.data.loaders import load_questions, read_questions
from iftscope.types import Question

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=12,
)
fields = st.fixed_dictionaries(
    {},
    optional={"id": json_values, "question": json_values, "choices": json_values, "answer": json_values,
              "explanation": json_values, "domain": json_values},
)  # fmt: skip


def _read(suffix: str, data: bytes):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"x{suffix}"
        path.write_bytes(data)
        questions, problems = read_questions(path)
        report = check_files([path])  # data check reads the same file without raising
        assert report.files and report.ok == (not any(p.severity == "error" for p in problems))
        return questions, problems


@SETTINGS
@given(st.binary(max_size=400), st.sampled_from([".jsonl", ".csv"]))
@example(b"\r\x00", ".csv")  # found by hypothesis: a stray carriage return raised csv.Error
def test_arbitrary_bytes_never_raise(data, suffix):
    questions, problems = _read(suffix, data)
    assert all(isinstance(q, Question) for q in questions)
    assert all(p.severity in ("error", "warning") for p in problems)


@SETTINGS
@given(st.lists(fields | json_values, max_size=6))
def test_arbitrary_json_rows_never_raise(rows):
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    questions, problems = _read(".jsonl", data)
    for q in questions:  # whatever was accepted is a valid question
        assert 0 <= q.answer < len(q.choices) and q.question.strip()


@SETTINGS
@given(
    st.lists(st.lists(st.text(alphabet=string.printable, max_size=12), min_size=0, max_size=7), max_size=6)
)
def test_arbitrary_csv_never_raises(rows):
    import csv
    import io

    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    _read(".csv", buf.getvalue().encode())


words = st.text(alphabet=string.ascii_letters + " ", min_size=1, max_size=20).filter(lambda t: t.strip())


@st.composite
def questions(draw):
    n = draw(st.integers(2, 6))
    choices = draw(st.lists(words, min_size=n, max_size=n, unique_by=lambda t: t.strip().lower()))
    return {"question": draw(words), "choices": choices, "answer": draw(st.integers(0, n - 1))}


@SETTINGS
@given(
    st.lists(questions(), min_size=1, max_size=5, unique_by=lambda q: " ".join(q["question"].lower().split()))
)
def test_valid_questions_round_trip_through_jsonl(rows):
    rows = [{"id": f"q{i}", **r} for i, r in enumerate(rows)]
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "x.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        loaded = load_questions(path)
        again = Path(d) / "y.jsonl"
        again.write_text("".join(json.dumps(q.to_json()) + "\n" for q in loaded))
        assert load_questions(again) == loaded
    assert [(q.id, q.question, list(q.choices), q.answer) for q in loaded] == [
        (r["id"], r["question"], r["choices"], r["answer"]) for r in rows
    ]  # the text exactly as written
