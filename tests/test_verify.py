"""Verifiable outputs (issue 17 item 4): every finished stage records checksums of what it wrote;
`iftscope verify` reports damage, and a rerun recomputes just the damaged stages (and what was
computed from them) to the clean run's results."""

import json
import shutil

import pytest
from test_study import _without_clocks

from iftscope.cli import main
from iftscope.outputs import MANIFEST, check, seal
from iftscope.study.runner import Study


@pytest.fixture
def clean(small_study):
    return small_study[1:]


def _verify(capsys, folder) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["verify", str(folder)])
    return code, capsys.readouterr().out


def test_damaged_outputs_are_reported_and_recomputed(clean, tmp_path, capsys):
    cfg, out, result = clean
    code, table = _verify(capsys, out)
    # world, probe, the base model's evaluation, groups, three jobs trained and evaluated, analysis
    assert code == 0 and "all 11 finished stage(s) intact" in table, table
    run = tmp_path / "run"
    shutil.copytree(out, run)
    truncated = run / "eval" / "H" / "answer" / "s0" / "metrics.json"
    truncated.write_text(truncated.read_text()[:40])
    records = run / "eval" / "I" / "answer" / "s0" / "records-unknown.jsonl"
    text = records.read_text()
    assert '"views": 1' in text
    records.write_text(text.replace('"views": 1', '"views": 2', 1))  # one record altered, same size
    adapter = next((run / "train" / "S" / "answer" / "s0" / "model").glob("*.safetensors"))
    adapter.unlink()
    code, table = _verify(capsys, run)
    lines = {line.split("  ")[0]: line for line in table.splitlines()}
    assert code == 1
    assert "damaged" in lines["eval H/answer/s0"] and "metrics.json" in lines["eval H/answer/s0"]
    assert "damaged" in lines["eval I/answer/s0"] and "records-unknown.jsonl (checksum differs)" in table
    assert "missing" in lines["train S/answer/s0"] and adapter.name in lines["train S/answer/s0"]
    assert "intact" in lines["train H/answer/s0"] and "intact" in lines["groups s0"]

    intact = {p: p.read_bytes() for p in (run / "train" / "H" / "answer" / "s0").rglob("*") if p.is_file()}
    again = Study(cfg, run, progress=False).run()
    said = capsys.readouterr().err
    recomputed = sorted(
        line.split(" is ")[0].split(str(run))[1] for line in said.splitlines() if "recomputing" in line
    )
    # just the damaged stages, and the evaluation of the retrained model (stale: its input changed),
    # with its reading by the base's probe (eval/<job>/probe: stale too, then its parent follows)
    assert recomputed == [
        "/eval/H/answer/s0",
        "/eval/I/answer/s0",
        "/eval/S/answer/s0",
        "/eval/S/answer/s0/probe",
        "/train/S/answer/s0",
    ], said
    assert {p: p.read_bytes() for p in intact} == intact  # an intact job is left as it was
    assert _without_clocks(again) == _without_clocks(result)
    assert json.loads((run / "analysis" / "summary.json").read_text())["table"] == result["table"]
    assert _verify(capsys, run)[0] == 0


def test_unsealed_stage_is_trusted_then_sealed_and_stale_inputs_are_reported(clean, tmp_path, capsys):
    cfg, out, _ = clean
    run = tmp_path / "run"
    shutil.copytree(out, run)
    (run / "eval" / "base" / MANIFEST).unlink()  # as an older iftscope, or a kill just before sealing
    code, table = _verify(capsys, run)
    assert code == 0 and "unsealed" in table
    # a stage recomputed with another result makes what was computed from it stale
    groups = run / "groups" / "s0"
    (groups / "summary.json").write_text((groups / "summary.json").read_text() + " ")
    seal(groups, [run / "probe"])
    assert str(check(run / "train" / "H" / "answer" / "s0", "train.json", [groups])) == (
        f"stale: {groups} (recomputed since this stage used it)"
    )
    code, table = _verify(capsys, run)
    assert (
        code == 1 and table.count("stale     groups/s0 (recomputed since") == 3
    )  # the jobs trained from them


def test_verify_refuses_what_is_not_a_run_folder(tmp_path, capsys):
    assert main(["verify", str(tmp_path / "nope")]) == 2
    assert "no such run folder" in capsys.readouterr().err
    assert main(["verify", str(tmp_path)]) == 2
    assert "not a run folder (no recipe.yaml)" in capsys.readouterr().err


def test_big_files_are_rehashed_only_when_changed_or_asked(tmp_path, monkeypatch):
    from iftscope import outputs

    (tmp_path / "done.json").write_text("{}")
    (tmp_path / "big.bin").write_bytes(b"x" * 100)
    seal(tmp_path)
    monkeypatch.setattr(outputs, "BIG", 10)  # big.bin counts as big now
    stat = (tmp_path / "big.bin").stat()
    with open(tmp_path / "big.bin", "r+b") as f:  # same size, same mtime: not rehashed
        f.write(b"y")
    import os

    os.utime(tmp_path / "big.bin", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert check(tmp_path, "done.json").state == "intact"
    assert str(check(tmp_path, "done.json", full=True)) == "damaged: big.bin (checksum differs)"
    (tmp_path / "big.bin").write_bytes(b"y" + b"x" * 99)  # a new mtime: rehashed
    assert check(tmp_path, "done.json").state == "damaged"
