"""``reverie data inspect DIR``: counts, shapes, action statistics, checksums and a contact sheet.

reverie data inspect runs/tworoom-data      # prints a summary, writes DIR/contact_sheet.png
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from reverie.data.format import load_manifest, read_shard, verify_shards


def contact_sheet(frames: np.ndarray, columns: int = 8, scale: int = 2) -> Image.Image:
    """Tile ``frames`` (N, Hi, Wi, 3) into one image, ``columns`` wide, upscaled ``scale``×."""
    n, h, w, _ = frames.shape
    rows = -(-n // columns)
    sheet = np.full((rows * (h + 2), columns * (w + 2), 3), 255, np.uint8)
    for i, frame in enumerate(frames):
        r, c = divmod(i, columns)
        sheet[r * (h + 2) + 1 : r * (h + 2) + 1 + h, c * (w + 2) + 1 : c * (w + 2) + 1 + w] = frame
    return Image.fromarray(sheet).resize(
        (sheet.shape[1] * scale, sheet.shape[0] * scale), Image.NEAREST
    )


def inspect_dataset(
    root: str | Path, sheet: Path | None = None, samples: int = 32, seed: int = 0
) -> dict[str, Any]:
    """Verify checksums, compute statistics, save a contact sheet; returns the report dict."""
    root = Path(root)
    manifest = load_manifest(root)
    verify_shards(root, manifest)  # raises naming the first bad shard
    actions, lengths, firsts = [], [], []
    rng = np.random.default_rng(seed)
    picks: list[np.ndarray] = []
    for shard in manifest["shards"]:
        for ep in read_shard(root / shard["file"]).values():
            actions.append(ep["actions"])
            lengths.append(len(ep["actions"]))
            firsts.append(ep["obs"].shape)
            picks.append(ep["obs"][rng.integers(len(ep["obs"]))])
    acts = np.concatenate(actions) if actions else np.zeros((0, 1))
    frames = np.stack(picks)[rng.permutation(len(picks))[:samples]] if picks else None
    sheet = sheet or root / "contact_sheet.png"
    if frames is not None:
        contact_sheet(frames).save(sheet)
    return {
        "dir": str(root),
        "env": manifest["env"],
        "episodes": len(lengths),
        "frames": int(sum(lengths) + len(lengths)),
        "steps_per_episode": [int(min(lengths, default=0)), int(max(lengths, default=0))],
        "obs_shape": list(firsts[0][1:]) if firsts else None,
        "action_dim": int(acts.shape[1]),
        "action_mean": acts.mean(0).round(4).tolist() if len(acts) else None,
        "action_std": acts.std(0).round(4).tolist() if len(acts) else None,
        "action_min": acts.min(0).round(4).tolist() if len(acts) else None,
        "action_max": acts.max(0).round(4).tolist() if len(acts) else None,
        "shards": len(manifest["shards"]),
        "checksums": "ok",
        "contact_sheet": str(sheet),
        "settings": manifest.get("settings"),
    }
