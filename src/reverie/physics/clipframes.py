"""Which clip frames and actions a model sees: the frameskip view shared by every surprise scorer.

    idx = model_frames(F, s)              # frames 0, s, 2s, ...
    acts = skip_actions(actions, s, T - 1)  # (N, T-1, A*s)

Kept apart from ``surprise.py`` so that scorers (``pixel_baseline.py``) and the suite can both use
it without importing each other.
"""

from __future__ import annotations

import numpy as np
from einops import rearrange


def model_frames(num_frames: int, frameskip: int) -> np.ndarray:
    """Clip frame indices a model with ``frameskip`` sees: 0, s, 2s, ..."""
    return np.arange(0, num_frames, frameskip)


def skip_actions(actions: np.ndarray, frameskip: int, steps: int) -> np.ndarray:
    """Raw actions (N, F-1, A) → model actions (N, steps, A*frameskip): the s raw actions
    between model frames j and j+1, concatenated (as ``SequenceDataset`` does)."""
    raw = actions[:, : steps * frameskip]  # (N, steps*s, A)
    return rearrange(raw, "n (t s) a -> n t (s a)", s=frameskip)
