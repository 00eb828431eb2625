"""What every play session shares, read-only: the world model, its decoder, the env to play in.

Loaded once per server (``create_app``), checked for the mismatches a person can make (a decoder
for another model, an env the model was not trained on, an env with no keyboard play), each
reported as a one-line ``ReverieError``.

    shared = load_play_model("runs/tworoom")      # then PlaySession(shared) per connection
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from reverie.io import ReverieError


@dataclass
class PlayModel:
    """What every session shares, read-only: the world model, its decoder, and their metadata."""

    model: Any  # WorldModel, eval mode
    decoder: Any  # Decoder, eval mode
    meta: dict[str, Any]  # the checkpoint's config.json
    decoder_info: dict[str, Any]  # decoder.json
    env_name: str  # the env sessions play in
    checkpoint: Path
    policy: Any = None  # GoalPolicy for the "policy" planner (None: CEM only)


def load_play_model(
    checkpoint: str | Path, env: str | None = None, policy: str | Path | None = None
) -> PlayModel:
    """Load and check a checkpoint, its decoder and the env to play in (one-line errors).

    ``policy``: a policy run for the page's "policy" planner; None takes CHECKPOINT/policy when
    it holds one trained for these weights (a stale one is skipped with a warning)."""
    from reverie.checkpoint import load_checkpoint
    from reverie.envs import env_class, resolve
    from reverie.models.decoder import load_decoder

    checkpoint = Path(checkpoint)
    model, meta = load_checkpoint(checkpoint)
    model.requires_grad_(False)
    decoder, decoder_info = load_decoder(checkpoint)
    if decoder.config.embed_dim != model.embed_dim:
        raise ReverieError(
            f"decoder in {checkpoint} decodes {decoder.config.embed_dim}-d embeddings, the model "
            f"makes {model.embed_dim}-d ones: re-run train-decoder"
        )
    name = env or meta.get("env")
    if not name:
        raise ReverieError(f"checkpoint {checkpoint} records no env: pass --env NAME")
    try:
        name = resolve(name)
        cls = env_class(name)
    except (ValueError, ImportError) as e:
        raise ReverieError(f"cannot play in env {name!r}: {e}") from None
    probe = cls(size=model.image_size)
    try:
        raw_dim = int(np.prod(probe.action_space.shape))
    finally:
        probe.close()
    if raw_dim * model.frameskip != model.action_dim:
        raise ReverieError(
            f"env {name} takes {raw_dim}-d actions ({raw_dim * model.frameskip}-d per model step "
            f"at frameskip {model.frameskip}), but the model in {checkpoint} takes "
            f"{model.action_dim}-d ones: play in the env it was trained on"
        )
    keymap = cls.keymap
    if keymap is None or any(len(v) != raw_dim for v in keymap.values()):
        raise ReverieError(f"env {name} has no keyboard mapping for play")
    return PlayModel(
        model, decoder, meta, decoder_info, name, checkpoint, _policy(checkpoint, meta, policy)
    )


def _policy(checkpoint: Path, meta: dict[str, Any], path: str | Path | None) -> Any:
    import logging

    from reverie.checkpoint import checkpoint_kind
    from reverie.policies import load_policy

    if path is not None:
        return load_policy(path, meta)[0]
    default = checkpoint / "policy"
    if checkpoint_kind(default) != "reverie-policy":
        return None
    try:
        return load_policy(default, meta)[0]
    except ReverieError as e:
        logging.getLogger("reverie.viewer").warning("policy planner off: %s", e)
        return None
