"""The child side of `accelerate launch -m iftscope.study.child RUN_FOLDER SEED GROUP STYLE`:
one job's training on every process, rebuilt from the run folder's resolved recipe alone."""

from __future__ import annotations

import sys
from pathlib import Path

from iftscope.runfolder import Job, RunFolder
from iftscope.study.inputs import prepare_inputs
from iftscope.study.jobs import train_job
from iftscope.study.recipe import load_recipe


def main(argv: list[str]) -> None:
    from transformers.utils import logging as hf_logging

    run = RunFolder(Path(argv[0]))
    job = Job(int(argv[1]), argv[2], argv[3])
    cfg, _ = load_recipe(run.recipe)
    hf_logging.disable_progress_bar()
    train_job(cfg, run, prepare_inputs(cfg, run, progress=False), job)


if __name__ == "__main__":
    main(sys.argv[1:])
