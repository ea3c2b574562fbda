import json

import pytest

from iftscope.runs import atomic_dir, atomic_write_json, fingerprint, read_json


def test_atomic_write_json_replaces_and_leaves_no_temp(tmp_path):
    path = tmp_path / "a" / "x.json"
    atomic_write_json(path, {"b": 1, "a": [1, 2]})
    atomic_write_json(path, {"c": "é"})
    assert read_json(path) == {"c": "é"}
    assert [p.name for p in path.parent.iterdir()] == ["x.json"]


def test_atomic_dir_is_all_or_nothing(tmp_path):
    target = tmp_path / "model"
    with atomic_dir(target) as tmp:
        (tmp / "w.bin").write_text("1")
    assert (target / "w.bin").read_text() == "1"
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "w.bin").write_text("half")
        raise RuntimeError("crash while writing")
    assert (target / "w.bin").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_fingerprint_ignores_key_order_not_values():
    assert fingerprint({"a": 1, "b": 2}) == fingerprint(json.loads('{"b": 2, "a": 1}'))
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})
