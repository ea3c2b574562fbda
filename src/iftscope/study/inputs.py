"""What a study reads before any stage: the base model, the questions, the demonstration pool and
the test sets, from the micro-world (built or reused here) or from the recipe's own data."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from iftscope.data import load_questions
from iftscope.runfolder import RunFolder
from iftscope.runs import atomic_write_jsonl
from iftscope.stages.model import ModelSpec
from iftscope.study.config import StudyConfig
from iftscope.types import Question


@dataclass(frozen=True)
class StudyInputs:
    base: ModelSpec  # the base model every group is fine-tuned from
    questions: list[Question]  # what the probe reads and the groups are drawn from
    pool: list[Question]  # demonstrations for k-shot formats
    sets: dict[str, list[Question]]  # test-set name -> questions
    data_files: tuple[str, ...] = ()  # as the recipe names them (the world's: relative to the run)
    label: str = ""  # the base model as the recipe names it
    truth_dir: Path | None = None  # the micro-world folder (ground truth), None on real data
    main_set: str = field(init=False)

    def __post_init__(self) -> None:
        main = "known-heldout" if "known-heldout" in self.sets else next(iter(self.sets))
        object.__setattr__(self, "main_set", main)


def micro_world_sets(questions: Sequence[Question]) -> dict[str, list[Question]]:
    """Held-out known people, never-pretrained people, and the attribute kept out of all IFT (none
    when the world keeps none out: an empty set would only give NaN rows)."""
    m = [(q, q.metadata) for q in questions]
    sets = {
        "known-heldout": [q for q, x in m if x["split"] == "known_test" and not x["held_out_attribute"]],
        "unknown": [q for q, x in m if x["split"] == "unknown_test" and not x["held_out_attribute"]],
        "heldout-attribute": [q for q, x in m if x["known"] and x["held_out_attribute"]],
    }
    return {name: qs for name, qs in sets.items() if qs}


def prepare_inputs(cfg: StudyConfig, run: RunFolder, progress: bool = True) -> StudyInputs:
    """Build (or reuse) the micro-world, or read the recipe's files; the test sets as run are
    stored under tests/ for the report and for provenance."""
    where = {"dtype": cfg.dtype, "device": cfg.device}
    if cfg.data.model is None:
        from iftscope.microworld.stage import build_world
        from iftscope.study.conditions import world_config

        build_world(run.world, world_config(cfg), progress=progress)
        questions = load_questions(run.world_questions)
        base = ModelSpec(str(run.world_model), **where)
        files = (str(run.world_questions.relative_to(run.root)),)
        sets, truth, label = (
            micro_world_sets(questions),
            run.world,
            str(run.world_model.relative_to(run.root)),
        )
    else:
        questions = [q for p in cfg.data.ift for q in load_questions(p)]
        base = ModelSpec(cfg.data.model, **where)
        sets = {name: load_questions(p) for name, p in cfg.data.tests.items()}
        files, truth, label = tuple(cfg.data.ift), None, cfg.data.model
    pool = [q for p in cfg.data.pool for q in load_questions(p)] or questions
    for name, qs in sets.items():
        if not run.test_set(name).exists():
            atomic_write_jsonl(run.test_set(name), (q.to_json() for q in qs))
    return StudyInputs(base, questions, pool, sets, files, label, truth)
