"""iftscope: does instruction fine-tuning teach knowledge, or only self-align the model?

The Python API (docs/api.md): `run_study`, `load_run`, `analyse_run`, and the stages one by one,
`probe_model`, `build_groups`, `train_model`, `evaluate_model`, with their typed configs. They are
imported on first use, so `import iftscope` stays cheap.
"""

from __future__ import annotations

from typing import Any

from iftscope.version import __version__

_API = (
    "CacheConfig", "Curve", "Job", "ModelSpec", "ProbeOutcome", "RunFolder", "StudyConfig", "StudyResult",
    "analyse_run", "build_groups", "evaluate_model", "load_recipe", "load_run", "probe_model",
    "read_records", "run_study", "train_model",
)  # fmt: skip

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        from iftscope import api

        return getattr(api, name)
    raise AttributeError(f"module 'iftscope' has no attribute {name!r}")
