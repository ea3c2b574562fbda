"""What a model *is*, for cache keys: a hash of its weight, config and tokenizer files.

A name or a path is not an identity (a folder can be retrained in place, a hub id moves with its
main branch); serving one model another model's cached scores is a known lm-evaluation-harness bug.
Hashing reads every weight file once per process, at disk speed.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

SCORING = "fp32-head"  # how scores are computed (models.head): a change invalidates cached scores
IDENTITY_FILES = ("*.safetensors", "*.bin", "config.json", "tokenizer*", "*.model", "adapter_config.json")


def _resolve(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if path.exists():
        return path
    from huggingface_hub import snapshot_download  # a hub id: its cached snapshot, offline

    return Path(snapshot_download(str(name_or_path), local_files_only=True))


@lru_cache(maxsize=16)
def _folder_hash(folder: str, stamp: tuple) -> str:
    digest = hashlib.sha256()
    for path in sorted({p for pattern in IDENTITY_FILES for p in Path(folder).glob(pattern)}):
        digest.update(path.name.encode() + b"\0")
        with open(path, "rb") as f:
            while chunk := f.read(1 << 24):
                digest.update(chunk)
    return digest.hexdigest()


def folder_identity(name_or_path: str | Path) -> str:
    folder = _resolve(name_or_path)
    files = sorted({p for pattern in IDENTITY_FILES for p in folder.glob(pattern)})
    if not files:
        raise FileNotFoundError(f"{folder}: no weight, config or tokenizer files to identify the model by")
    stamp = tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    return _folder_hash(str(folder.resolve()), stamp)


def model_identity(
    name_or_path: str | Path, adapter: str | Path | None = None, dtype: str = "float32", add_bos: bool = True
) -> str:
    """Weights, tokenizer and adapter contents, plus what changes the numbers: dtype, BOS and the
    way logits are computed (SCORING)."""
    parts = [
        folder_identity(name_or_path),
        folder_identity(adapter) if adapter else "-",
        dtype,
        str(add_bos),
        SCORING,
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]
