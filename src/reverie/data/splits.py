"""The dataset a trained run learned from, and its train / held-out split, for the things trained
on top of a frozen world model (the decoder, policies): they see the same held-out episodes.

    data = run_dataset(checkpoint, None, meta)        # meta: the world model's config.json
    train_ids, val_ids, source = run_split(data, meta)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reverie.io import ReverieError


def run_dataset(checkpoint: Path, data: Path | None, meta: dict[str, Any]) -> Path:
    """``data`` when given, else the dataset path the checkpoint records (one-line errors)."""
    if data is not None:
        path = Path(data)
    else:
        recorded = (meta.get("data") or {}).get("path")
        if not recorded:
            raise ReverieError(f"checkpoint {checkpoint} records no dataset path: pass --data DIR")
        path = Path(recorded)
    if not path.is_dir():
        raise ReverieError(f"dataset of {checkpoint} not found: {path} (pass --data DIR)")
    return path


def run_split(data: Path, meta: dict[str, Any]) -> tuple[list[int], list[int] | None, str]:
    """(train episode ids, held-out ids or None for a frame split, where the split came from):
    the episodes the world model held out when the dataset has them, else the last 10%."""
    from reverie.data.format import load_manifest

    ids = sorted(e for shard in load_manifest(data)["shards"] for e in shard["episodes"])
    val = [e for e in (meta.get("data") or {}).get("val_episodes") or [] if e in set(ids)]
    if val and len(val) < len(ids):
        return [e for e in ids if e not in set(val)], val, "episodes the world model held out"
    if len(ids) >= 2:
        n_val = max(1, round(0.1 * len(ids)))
        return ids[:-n_val], ids[-n_val:], "last 10% of episodes"
    return ids, None, "last 10% of frames of the only episode"
