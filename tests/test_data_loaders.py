import json

import pytest
from conftest import SHARED_DATA, write

from iftscope.data import DataValidationError, load_questions
from iftscope.data.loaders import default_domain, detect_reader, read_questions

GOOD = {
    "id": 1,
    "question": "Capital of France?",
    "choices": ["Paris", "Rome", "Oslo", "Bern"],
    "answer": 0,
    "explanation": "Paris is.",
}


def jsonl(tmp_path, rows, name="test.jsonl"):
    return write(tmp_path / name, "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))


def only_error(tmp_path, rows):
    _, problems = read_questions(jsonl(tmp_path, rows))
    errors = [p for p in problems if p.severity == "error"]
    assert len(errors) == 1, errors
    return errors[0]


def test_paper_format_round_trip(tmp_path):
    qs = load_questions(jsonl(tmp_path, [GOOD, {**GOOD, "id": 2, "answer": 3, "raw": {"x": 1}}]))
    assert [q.answer for q in qs] == [0, 3]
    assert qs[0].id == "1" and qs[0].explanation == "Paris is." and qs[0].domain == tmp_path.name
    assert qs[1].metadata == {"raw": {"x": 1}}


def test_letter_answers_and_option_columns(tmp_path):
    rows = [
        {"question": "q1", "choices": ["a", "b", "c", "d"], "answer": "C"},
        {"question": "q2", "A": "a", "B": "b", "C": "c", "D": "d", "answer": "b", "subject": "law"},
    ]
    qs = load_questions(jsonl(tmp_path, rows))
    assert [q.answer for q in qs] == [2, 1]
    assert qs[1].choices == ("a", "b", "c", "d") and qs[1].domain == "law"


@pytest.mark.parametrize(
    "row, field, words",
    [
        ('{"question": "x", "choices": ["a", "b"], "answer": 0', None, "malformed JSON"),
        ({"question": "x", "choices": ["a", "b"]}, "answer", "missing"),
        ({"choices": ["a", "b"], "answer": 0}, "question", "missing"),
        ({"question": "x", "choices": ["a", "b"], "answer": 2}, "answer", "out of range"),
        ({"question": "x", "choices": ["a", "b"], "answer": 1.0}, "answer", "got float"),
        ({"question": "x", "choices": ["a", "b"], "answer": True}, "answer", "got True"),
        ({"question": "x", "choices": ["a", "b"], "answer": "E"}, "answer", "out of range"),
        ({"question": "x", "choices": ["a"], "answer": 0}, "choices", "at least 2"),
        ({"question": "  ", "choices": ["a", "b"], "answer": 0}, "question", "empty"),
        ({"question": "x", "choices": ["a", ""], "answer": 0}, "choices[1]", "empty"),
        ({"question": "x", "choices": "a b", "answer": 0}, "choices", "expected a list"),
        ("[1, 2]", None, "expected a JSON object"),
    ],
)
def test_bad_rows_are_named_precisely(tmp_path, row, field, words):
    err = only_error(tmp_path, [GOOD, row])
    assert err.line == 2 and err.field == field and words in err.message
    assert str(err).startswith(f"{tmp_path / 'test.jsonl'}:2: error:")


def test_duplicate_ids_are_errors(tmp_path):
    err = only_error(tmp_path, [GOOD, {**GOOD, "question": "other"}])
    assert err.field == "id" and "first on line 1" in err.message


def test_non_utf8_bytes(tmp_path):
    path = write(tmp_path / "bad.jsonl", json.dumps(GOOD).encode() + b'\n{"question": "caf\xe9"}\n')
    with pytest.raises(DataValidationError) as e:
        load_questions(path)
    assert f"{path}:2: error: bytes that are not UTF-8 at column 18 (byte 0xe9)" in str(e.value)


def test_duplicates_are_warnings_not_errors(tmp_path):
    rows = [GOOD, {**GOOD, "id": 2}, {**GOOD, "id": 3, "question": "q", "choices": ["a", "a ", "b"]}]
    qs, problems = read_questions(jsonl(tmp_path, rows))
    assert len(qs) == 3
    assert {(p.line, p.field, p.severity) for p in problems} == {
        (2, "question", "warning"),
        (3, "choices", "warning"),
    }


def test_mmlu_csv_without_and_with_header(tmp_path):
    plain = write(tmp_path / "anatomy_test.csv", 'What is "x"?,a,b,c,d,B\nSecond,e,f,g,h,D\n')
    qs = load_questions(plain)
    assert [q.answer for q in qs] == [1, 3] and qs[0].question == 'What is "x"?'
    assert qs[0].domain == "anatomy" and qs[0].id == "anatomy-1"
    header = write(tmp_path / "h.csv", "question,A,B,C,answer,id\nq,a,b,c,C,x7\n")
    (q,) = load_questions(header)
    assert q.choices == ("a", "b", "c") and q.answer == 2 and q.id == "x7"


def test_csv_wrong_column_count(tmp_path):
    path = write(tmp_path / "h.csv", "question,A,B,answer\nq,a,b,A\nq2,a,B\n")
    _, problems = read_questions(path)
    assert [(p.line, p.message) for p in problems] == [(3, "expected 4 columns as in the header, got 3")]


def test_hf_dataset_with_column_mapping(tmp_path):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict(
        {
            "prompt": ["q1", "q2"],
            "options": [["a", "b"], ["c", "d"]],
            "label": [1, 0],
            "subject": ["law", "law"],
        }
    )
    datasets.DatasetDict({"test": ds}).save_to_disk(str(tmp_path / "ds"))
    qs = load_questions(
        tmp_path / "ds", columns={"question": "prompt", "choices": "options", "answer": "label"}
    )
    assert [(q.question, q.answer, q.domain) for q in qs] == [("q1", 1, "law"), ("q2", 0, "law")]
    with pytest.raises(DataValidationError, match="column 'question' not in the dataset"):
        load_questions(tmp_path / "ds")
    datasets.DatasetDict({"test": ds, "dev": ds}).save_to_disk(str(tmp_path / "two"))
    with pytest.raises(ValueError, match="choose one with split"):
        load_questions(tmp_path / "two")
    cols = {"question": "prompt", "choices": "options", "answer": "label"}
    assert len(load_questions(tmp_path / "two", split="dev", columns=cols)) == 2


def test_the_file_reader_is_told_by_the_suffix_or_named(tmp_path):
    readers = [detect_reader(tmp_path / n) for n in ("a.JSONL", "b.ndjson", "c.tsv", "d.csv")]
    assert readers == ["jsonl", "jsonl", "csv", "csv"]
    with pytest.raises(ValueError, match=r"cannot tell the format from the suffix '\.txt'"):
        detect_reader(tmp_path / "e.txt")
    text = write(tmp_path / "rows.txt", json.dumps(GOOD) + "\n")
    (q,) = load_questions(text, reader="jsonl")  # named: the suffix is not consulted
    assert q.question == "Capital of France?"
    with pytest.raises(ValueError, match=r"unknown format 'xml'; expected one of \('auto', 'jsonl'"):
        read_questions(text, "xml")


def test_default_domain(tmp_path):
    assert default_domain(tmp_path / "history" / "test.jsonl") == "history"
    assert default_domain(tmp_path / "high_school_physics_dev.csv") == "high_school_physics"


@pytest.mark.skipif(not SHARED_DATA.exists(), reason="shared/data not beside the checkout")
def test_real_xiezhi_files_load():
    qs = load_questions(SHARED_DATA / "xiezhi" / "engineering" / "test.jsonl")
    assert len(qs) == 250 and all(len(q.choices) == 4 for q in qs)
    assert {q.domain for q in qs} == {"engineering"} and "raw" in qs[0].metadata
