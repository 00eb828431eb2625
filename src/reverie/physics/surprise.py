"""Surprise scoring of possible/impossible clip pairs: pairwise accuracy, IntPhys-style errors.

    reverie physics eval --checkpoint runs/tabletop --clips runs/physics-clips [--out FILE.json]

    from reverie.physics.surprise import ScoreConfig, score_clips
    result = score_clips(ScoreConfig(checkpoint=Path("runs/tabletop"),
                                     clips=Path("runs/physics-clips")))
    result["pairwise_accuracy"], result["by_category"]["gravity"]["pairwise_accuracy"]

Surprise of frame t+1 = the world model's teacher-forced latent prediction error
``mean_d (predict(z_{t-k+1..t}, a_t) - encode(o_{t+1}))_d²``: the model sees the real frames up to
t and the action taken after t (zeros for passive clips) and is scored on the frame that came.
A model trained with frameskip s sees every s-th frame, its actions the s raw actions between
them concatenated (clips are 10 frames/s and a fall lasts 3 frames: train physics models with
``--frameskip 1``; the cpu preset's default of 5 suits planning, not this). A clip's score is
the max (and, reported beside it, the mean) surprise over the frames from the violation frame on:
frames before it are identical in both clips of a pair.

Metrics (all from the max score unless named ``*_mean``):

- ``pairwise_accuracy``: the fraction of pairs whose impossible clip scores strictly higher
  (ties count as wrong, so a scorer that ignores the frames gets 0, not 50%).
- ``relative_error``: IntPhys's relative error with our matched *pairs* in place of its
  quadruplets: the fraction of pairs ranked wrong (= 1 - pairwise_accuracy).
- ``absolute_error``: IntPhys's absolute error, 1 - AUC of telling impossible from possible clips
  by their scores over *all* clips of a category (one threshold for every scene; ties count half).

The JSON also holds Wilson 95% intervals, per-variant accuracies and every pair's two scores; a PNG
beside it plots the surprise curves of one pair per category. ``--model untrained`` scores the
checkpoint's architecture with fresh random weights, i.e. as training starts it (its predictor
begins as copy-last, so this is a change detector in random features; the suite is balanced so
that it sits near chance overall, see ``reverie.physics.clips``); a checkpoint written
by ``reverie.physics.pixel_baseline`` is scored the same way with pixel MSE as its surprise.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from einops import rearrange

from reverie.io import ReverieError, atomic_path, atomic_write_json
from reverie.physics.clipframes import model_frames, skip_actions
from reverie.physics.clips import ClipSet, load_clips
from reverie.stats import wilson

#: frames uint8 (N, F, Hi, Wi, 3), raw actions float32 (N, F-1, A) → surprise (N, F), NaN where a
#: frame is not predicted (frame 0, and frames between a frameskipping model's frames).
Scorer = Callable[[np.ndarray, np.ndarray], np.ndarray]
MODELS = ("trained", "untrained")


@dataclass(frozen=True)
class ScoreConfig:
    """Which model scores which clips, and where the result goes."""

    checkpoint: Path
    """Run directory of a world model (or of a pixel baseline)."""
    clips: Path
    """Clip directory written by ``reverie physics generate``."""
    out: Path | None = None
    """Result JSON (a PNG of surprise curves is written beside it); default
    CHECKPOINT/physics[_untrained].json."""
    model: str = "trained"
    """trained | untrained (the checkpoint's architecture with fresh random weights: chance)."""
    seed: int = 0
    """Seed of the untrained model's weights."""
    batch_size: int = 16
    """Clips per forward pass."""
    device: str = "cpu"
    """cpu | cuda."""
    plot: bool = True
    """Write the PNG of surprise curves."""
    threads: int | None = None
    """torch CPU threads while scoring (None: torch's default; 1 is steadier on a busy machine)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "checkpoint", Path(self.checkpoint))
        object.__setattr__(self, "clips", Path(self.clips))
        if self.out is not None:
            object.__setattr__(self, "out", Path(self.out))
        if self.model not in MODELS:
            raise ValueError(f"--model must be one of {', '.join(MODELS)}, got {self.model!r}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {self.threads}")
        if self.batch_size < 1:
            raise ValueError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"--device must be cpu or cuda, got {self.device!r}")

    @property
    def out_path(self) -> Path:
        suffix = "" if self.model == "trained" else f"_{self.model}"
        return self.out or self.checkpoint / f"physics{suffix}.json"


# ------------------------------------------------------------------------------------ scorers
def latent_surprise(model: Any, batch_size: int = 16) -> Scorer:
    """Scorer of a ``WorldModel``: teacher-forced latent prediction error per frame."""
    from reverie.models.world_model import teacher_forcing_pairs

    model.eval()
    device = next(model.parameters()).device

    @torch.no_grad()
    def score(frames: np.ndarray, actions: np.ndarray) -> np.ndarray:
        N, F = frames.shape[:2]
        s = model.frameskip
        idx = model_frames(F, s)
        T = len(idx)
        if T < 2:
            raise ValueError(f"clips of {F} frames are too short for frameskip {s}")
        if actions.shape[-1] * s != model.action_dim:
            raise ValueError(
                f"clip actions have size {actions.shape[-1]}; the model takes {model.action_dim} "
                f"(= raw size x frameskip {s}): was it trained on another env?"
            )
        if frames.shape[2] != model.image_size:
            raise ValueError(
                f"clips are {frames.shape[2]} px, the model was trained on {model.image_size} px: "
                "regenerate the clips with --size"
            )
        out = np.full((N, F), np.nan, np.float32)
        acts = skip_actions(actions, s, T - 1)  # (N, T-1, A')
        for lo in range(0, N, batch_size):
            obs = torch.from_numpy(frames[lo : lo + batch_size][:, idx])  # (B, T, Hi, Wi, 3)
            obs = rearrange(obs, "b t h w c -> b t c h w").to(device)
            B = obs.shape[0]
            z = model.encode(obs).float()  # (B, T, D)
            a = torch.from_numpy(acts[lo : lo + batch_size]).float().to(device)  # (B, T-1, A')
            z_hist, act, target = teacher_forcing_pairs(z, a, model.history)
            err = ((model.predict(z_hist, act).float() - target) ** 2).mean(-1)  # (B(T-1),)
            out[lo : lo + B, idx[1:]] = rearrange(err, "(b t) -> b t", b=B).cpu().numpy()
        return out

    return score


def clip_scores(
    surprise: np.ndarray, violation_frames: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Max and mean surprise (N,) over each clip's frames from its violation frame on."""
    F = surprise.shape[1]
    window = np.arange(F)[None] >= violation_frames[:, None]  # (N, F)
    masked = np.where(window, surprise, np.nan)
    if np.any(np.all(np.isnan(masked), axis=1)):
        raise ValueError("a clip has no scored frame at or after its violation frame")
    return np.nanmax(masked, axis=1), np.nanmean(masked, axis=1)


# ------------------------------------------------------------------------------------ metrics
def pairwise_accuracy(score_possible: np.ndarray, score_impossible: np.ndarray) -> float:
    """Fraction of pairs with impossible strictly above possible (ties are wrong)."""
    return float(np.mean(np.asarray(score_impossible) > np.asarray(score_possible)))


def auc(score_possible: np.ndarray, score_impossible: np.ndarray) -> float:
    """P(a random impossible clip outscores a random possible one), ties counting half."""
    p = np.asarray(score_possible, np.float64)[:, None]
    i = np.asarray(score_impossible, np.float64)[None, :]
    return float(np.mean((i > p) + 0.5 * (i == p)))


def _group_metrics(
    s_pos: np.ndarray, s_imp: np.ndarray, m_pos: np.ndarray, m_imp: np.ndarray
) -> dict[str, Any]:
    acc = pairwise_accuracy(s_pos, s_imp)
    area = auc(s_pos, s_imp)
    return {
        "pairwise_accuracy": acc,
        "pairwise_accuracy_mean": pairwise_accuracy(m_pos, m_imp),
        "ci95": list(wilson(int(np.sum(s_imp > s_pos)), len(s_pos), percent=False)),
        "relative_error": 1.0 - acc,
        "absolute_error": 1.0 - area,
        "auc": area,
        "n_pairs": int(len(s_pos)),
    }


def metrics(
    max_pos: np.ndarray,
    max_imp: np.ndarray,
    mean_pos: np.ndarray,
    mean_imp: np.ndarray,
    categories: list[str],
    variants: list[str] | None = None,
) -> dict[str, Any]:
    """Overall, per-category and per-variant metrics from clip scores (each (P,))."""
    out = _group_metrics(max_pos, max_imp, mean_pos, mean_imp)
    cats, vars_ = np.asarray(categories), np.asarray(variants or categories)
    for key, labels in (("by_category", cats), ("by_variant", vars_)):
        out[key] = {}
        for name in dict.fromkeys(labels.tolist()):
            sel = labels == name
            out[key][name] = _group_metrics(
                max_pos[sel], max_imp[sel], mean_pos[sel], mean_imp[sel]
            )
    return out


# ------------------------------------------------------------------------------------ scoring
def evaluate_scorer(scorer: Scorer, clips: ClipSet) -> dict[str, Any]:
    """Run ``scorer`` on every clip of ``clips``; metrics, per-pair scores and surprise curves."""
    v = clips.violation_frames
    surprise_pos = scorer(clips.possible, clips.actions)  # (P, F)
    surprise_imp = scorer(clips.impossible, clips.actions)
    max_pos, mean_pos = clip_scores(surprise_pos, v)
    max_imp, mean_imp = clip_scores(surprise_imp, v)
    result = metrics(
        max_pos, max_imp, mean_pos, mean_imp, clips.categories, [p["variant"] for p in clips.pairs]
    )
    result["score"] = "max surprise from the violation frame on"
    result["pairs"] = [
        {
            "index": p["index"],
            "category": p["category"],
            "variant": p["variant"],
            "violation_frame": p["violation_frame"],
            "possible": float(a),
            "impossible": float(b),
            "possible_mean": float(c),
            "impossible_mean": float(d),
        }
        for p, a, b, c, d in zip(clips.pairs, max_pos, max_imp, mean_pos, mean_imp)
    ]
    result["_curves"] = (surprise_pos, surprise_imp)
    return result


def load_scorer(cfg: ScoreConfig) -> tuple[Scorer, dict[str, Any]]:
    """The scorer a checkpoint directory holds (world model or pixel baseline) and a description."""
    from reverie.physics.pixel_baseline import is_pixel_checkpoint, load_pixel_model, pixel_surprise

    if is_pixel_checkpoint(cfg.checkpoint):
        if cfg.model == "untrained":
            raise ValueError("--model untrained applies to world-model checkpoints only")
        pixel, meta = load_pixel_model(cfg.checkpoint, cfg.device)
        info = {
            "kind": "pixel-baseline",
            "checkpoint": str(cfg.checkpoint),
            "step": meta.get("step"),
            "params": _params(pixel),
        }
        return pixel_surprise(pixel, cfg.batch_size), info
    from reverie.checkpoint import load_checkpoint
    from reverie.models.world_model import WorldModel

    model, meta = load_checkpoint(cfg.checkpoint, cfg.device)
    kind = "jepa"
    if cfg.model == "untrained":
        torch.manual_seed(cfg.seed)
        model = WorldModel(model.config).to(cfg.device).eval()
        kind = "jepa-untrained"
    info = {
        "kind": kind,
        "checkpoint": str(cfg.checkpoint),
        "step": meta.get("step"),
        "env": meta.get("env"),
        "frameskip": model.frameskip,
        "history": model.history,
        "params": _params(model),
    }
    return latent_surprise(model, cfg.batch_size), info


def _params(model: torch.nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def score_clips(cfg: ScoreConfig) -> dict[str, Any]:
    """Score ``cfg.clips`` with the model in ``cfg.checkpoint``; writes JSON (+ PNG) and returns
    the result dict (keys ``pairwise_accuracy``, ``by_category``, ``relative_error``,
    ``absolute_error``, ...)."""
    t0 = time.perf_counter()
    from contextlib import nullcontext

    from reverie.hardware import torch_threads

    clips = load_clips(cfg.clips)
    with nullcontext() if cfg.threads is None else torch_threads(cfg.threads):
        scorer, info = load_scorer(cfg)
        result = evaluate_scorer(scorer, clips)
    return write_result(result, clips, info, cfg.out_path, cfg.plot, t0)


def write_result(
    result: dict[str, Any],
    clips: ClipSet,
    info: dict[str, Any],
    out: Path,
    plot: bool = True,
    t0: float | None = None,
) -> dict[str, Any]:
    """Add the model and clip descriptions, write ``out`` (JSON) and the PNG beside it."""
    curves = result.pop("_curves")
    result["model"] = info
    result["clips"] = {
        "dir": str(clips.root),
        "sha256": clips.manifest["sha256"],
        "pairs": len(clips.pairs),
        "frames": clips.manifest["frames"],
        "size": clips.manifest["size"],
        "seed": clips.manifest["seed"],
    }
    result["out"] = str(out)
    if t0 is not None:
        result["seconds"] = round(time.perf_counter() - t0, 2)
    if plot:
        png = out.with_suffix(".png")
        plot_curves(png, clips, *curves, title=info.get("kind", ""))
        result["plot"] = png.name
    try:
        atomic_write_json(out, result)
    except OSError as e:
        raise ReverieError(f"cannot write {out}: {e.strerror or e}") from None
    return result


def plot_curves(
    path: Path, clips: ClipSet, surprise_pos: np.ndarray, surprise_imp: np.ndarray, title: str = ""
) -> None:
    """Surprise over time of the first pair of each category (possible blue, impossible red)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cats = list(dict.fromkeys(clips.categories))
    fig, axes = plt.subplots(1, len(cats), figsize=(3.2 * len(cats), 2.8), squeeze=False)
    for ax, cat in zip(axes[0], cats):
        k = clips.categories.index(cat)
        t = np.arange(surprise_pos.shape[1])
        ok = ~np.isnan(surprise_pos[k])
        ax.plot(t[ok], surprise_pos[k][ok], "o-", color="tab:blue", ms=3, label="possible")
        ax.plot(t[ok], surprise_imp[k][ok], "o-", color="tab:red", ms=3, label="impossible")
        ax.axvline(clips.pairs[k]["violation_frame"], color="grey", ls="--", lw=1)
        ax.set_title(f"{cat}\n{clips.pairs[k]['variant']}", fontsize=9)
        ax.set_xlabel("frame")
    axes[0][0].set_ylabel("surprise")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
