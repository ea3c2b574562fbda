import pytest

from iftscope.types import Question


def test_question_letters_and_text():
    q = Question("q1", "2+2?", ["3", "4", "5"], 1)
    assert q.choices == ("3", "4", "5")
    assert q.answer_letter == "B" and q.answer_text == "4"
    assert q.to_json() == {"id": "q1", "question": "2+2?", "choices": ["3", "4", "5"], "answer": 1}


def test_question_rejects_answer_outside_choices():
    with pytest.raises(ValueError, match="not an index"):
        Question("q1", "2+2?", ("3", "4"), 2)


def test_question_is_frozen():
    q = Question("q1", "2+2?", ("3", "4"), 1)
    with pytest.raises(AttributeError):
        q.answer = 0
