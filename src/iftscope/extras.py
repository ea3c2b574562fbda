"""Optional extras: which pip extra provides what, and a clear error naming it when it is missing.

iftscope's core installs without the scale-out tools; a recipe that asks for one of them (Parquet
copies, experiment trackers, Slurm through submitit) needs its extra, `pip install
"iftscope[parquet]"` and so on, or `iftscope[scale]` for all of them. The recipe validation
(study.validate) asks here before any work, so a missing package is one line naming the extra,
not an ImportError an hour into a study.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass


@dataclass(frozen=True)
class Feature:
    """Something a recipe may ask for: the modules it imports and the extra that installs them."""

    extra: str
    modules: tuple[str, ...]  # importable names; every one must be present
    what: str
    install: str = ""  # the pip command, when the extra does not install it

    @property
    def command(self) -> str:
        return self.install or (
            f'pip install "iftscope[{self.extra}]" (or "iftscope[scale]" for every scale-out extra)'
        )


# what a recipe can ask for -> the extra that provides it (declarative: one row per feature)
FEATURES: dict[str, Feature] = {
    "parquet": Feature("parquet", ("pyarrow",), "Parquet copies of the run's tables"),
    "slurm": Feature("slurm", ("submitit",), "the study's jobs through submitit"),
    "tensorboard": Feature("trackers", ("tensorboard",), "TensorBoard logging"),
    "mlflow": Feature("trackers", ("mlflow",), "MLflow logging"),
    "wandb": Feature("trackers", ("wandb",), "Weights & Biases logging", "pip install wandb"),
}


def has(*modules: str) -> bool:
    """Whether every module can be imported (found on the path; nothing is imported here)."""
    return all(importlib.util.find_spec(m) is not None for m in modules)


def missing(feature: str) -> str | None:
    """None when `feature` can run; else a one-line message naming the extra to install."""
    f = FEATURES[feature]
    absent = [m for m in f.modules if not has(m)]
    if not absent:
        return None
    return f"{f.what} needs {', '.join(absent)}, which is not installed: {f.command}"


def require(feature: str) -> None:
    """Raise ImportError naming the extra when `feature` cannot run."""
    message = missing(feature)
    if message is not None:
        raise ImportError(message)
