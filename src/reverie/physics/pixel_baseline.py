"""Pixel-space baseline for the physics suite: a next-frame predictor trained with pixel MSE.

    reverie physics train-pixel --data runs/tt-physics --out runs/tt-pixel
    python -m reverie.physics.pixel_baseline --data runs/tt-physics --out runs/tt-pixel   # same
    reverie physics eval --checkpoint runs/tt-pixel --clips runs/physics-clips

    from reverie.physics.pixel_baseline import PixelTrainConfig, train_pixel_baseline
    run = train_pixel_baseline(PixelTrainConfig(data=Path("runs/tt-physics"),
                                                out=Path("runs/tt-pixel")))

The comparison that tests the JEPA claim: the same data, the same history and actions, a model of
similar size (about 2M parameters), but the loss is on pixels. A small U-Net takes the last ``k``
frames stacked on channels, modulates its bottleneck by the action (FiLM), and predicts the
change from the last frame to the next. Its surprise on a clip is the pixel MSE (in [0, 1]
units) of that prediction, scored by the same harness as the world model
(``reverie.physics.surprise``).

A run directory is the one checkpoint layout of ``reverie.checkpoint`` (config.json with kind
``reverie-pixel-baseline``, model.safetensors, train_state.safetensors), trained by
``reverie.trainer.fit``. Runs written before that layout (``pixel_model.safetensors`` + a
config.json holding its sha256) still load.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from safetensors.torch import load_file
from torch import nn

from reverie.io import ReverieError, read_json, sha256_file

KIND = "reverie-pixel-baseline"
CONFIG_FILE = "config.json"
LEGACY_MODEL_FILE = "pixel_model.safetensors"
"""The weights' name before every trained thing shared one layout."""


@dataclass(frozen=True)
class PixelModelConfig:
    """Architecture of the pixel predictor (saved in config.json)."""

    image_size: int = 64
    """Frames are (3, image_size, image_size)."""
    action_dim: int = 2
    """A': model action size (raw action size x frameskip)."""
    history: int = 3
    """k: frames stacked as input."""
    frameskip: int = 1
    """Env steps between model frames."""
    channels: tuple[int, ...] = (32, 64, 128, 192)
    """Channels of the stride-2 encoder stages (the decoder mirrors them)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        if self.image_size % (2 ** len(self.channels)):
            raise ValueError(
                f"image_size {self.image_size} must be divisible by 2^{len(self.channels)}"
            )
        for name in ("action_dim", "history", "frameskip"):
            if getattr(self, name) < 1:
                raise ValueError(f"pixel model {name} must be >= 1")

    @classmethod
    def from_dict(cls, d: Any) -> PixelModelConfig:
        if not isinstance(d, dict):
            raise ValueError(f"pixel model config must be an object, got {d!r}")
        return cls(**d)


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.GroupNorm(8, c_out), nn.GELU())


class PixelPredictor(nn.Module):
    """U-Net next-frame predictor: (B, k, 3, Hi, Wi) frames + (B, A') action → (B, 3, Hi, Wi)."""

    config_class = PixelModelConfig

    def __init__(self, cfg: PixelModelConfig) -> None:
        super().__init__()
        self.config = cfg
        chans = cfg.channels
        self.down = nn.ModuleList()
        c_in = 3 * cfg.history
        for c in chans:
            self.down.append(
                nn.Sequential(
                    nn.Conv2d(c_in, c, 4, stride=2, padding=1), nn.GroupNorm(8, c), nn.GELU()
                )
            )
            c_in = c
        self.film = nn.Sequential(
            nn.Linear(cfg.action_dim, 128), nn.SiLU(), nn.Linear(128, 2 * chans[-1])
        )
        nn.init.zeros_(self.film[2].weight)
        nn.init.zeros_(self.film[2].bias)
        self.mid = _block(chans[-1], chans[-1])
        self.up = nn.ModuleList()
        skips = [3 * cfg.history, *chans[:-1]]  # channels of the map each up stage meets
        c = chans[-1]
        for skip in reversed(skips):
            out = max(skip, 32)  # at least 32 wide (and a multiple of 8 for GroupNorm)
            self.up.append(
                nn.ModuleDict(
                    {
                        "up": nn.ConvTranspose2d(c, out, 4, stride=2, padding=1),
                        "fuse": _block(out + skip, out),
                    }
                )
            )
            c = out
        self.head = nn.Conv2d(c, 3, 3, padding=1)
        nn.init.zeros_(self.head.weight)  # starts as "the next frame is the last one"
        nn.init.zeros_(self.head.bias)

    @property
    def history(self) -> int:
        return self.config.history

    @property
    def frameskip(self) -> int:
        return self.config.frameskip

    @property
    def action_dim(self) -> int:
        return self.config.action_dim

    @property
    def image_size(self) -> int:
        return self.config.image_size

    def forward(self, frames: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """frames uint8/float [0, 255] (B, k, 3, Hi, Wi), action (B, A') → next frame in [0, 1]."""
        x = rearrange(frames.float() / 255.0, "b k c h w -> b (k c) h w")  # (B, 3k, Hi, Wi)
        last = x[:, -3:]
        feats = [x]
        h = x
        for stage in self.down:
            h = stage(h)
            feats.append(h)
        scale, shift = self.film(action.float()).chunk(2, dim=-1)  # 2 × (B, C)
        h = self.mid(h * (1 + scale[..., None, None]) + shift[..., None, None])
        for stage, skip in zip(self.up, reversed(feats[:-1])):
            h = stage["fuse"](torch.cat([stage["up"](h), skip], dim=1))
        return last + self.head(h)  # (B, 3, Hi, Wi)


# --------------------------------------------------------------------------------- checkpoints
def is_pixel_checkpoint(run_dir: str | Path) -> bool:
    from reverie.checkpoint import checkpoint_kind

    return checkpoint_kind(run_dir) == KIND


def load_pixel_model(
    run_dir: str | Path, device: str = "cpu"
) -> tuple[PixelPredictor, dict[str, Any]]:
    """The pixel predictor saved in ``run_dir`` (eval mode) and its config.json."""
    from reverie.checkpoint import load_module

    run_dir = Path(run_dir)
    if (run_dir / LEGACY_MODEL_FILE).is_file():
        return _load_legacy(run_dir, device)
    model, meta = load_module(run_dir, KIND, device)
    assert isinstance(model, PixelPredictor)
    return model, meta


def _load_legacy(run_dir: Path, device: str) -> tuple[PixelPredictor, dict[str, Any]]:
    meta = read_json(run_dir / CONFIG_FILE, "pixel baseline config")
    if not isinstance(meta, dict) or meta.get("kind") != KIND:
        raise ReverieError(f"{run_dir} does not hold a pixel baseline")
    path = run_dir / LEGACY_MODEL_FILE
    if sha256_file(path) != meta.get("sha256"):
        raise ReverieError(f"pixel baseline weights missing or corrupt: {path}")
    try:
        model = PixelPredictor(PixelModelConfig.from_dict(meta["model"]))
        model.load_state_dict(load_file(path), strict=True)
    except (TypeError, ValueError, RuntimeError, KeyError) as e:
        raise ReverieError(f"pixel baseline in {run_dir} cannot be loaded: {e}") from None
    return model.to(device).eval(), meta


# ------------------------------------------------------------------------------------ training
@dataclass(frozen=True)
class PixelTrainConfig:
    """Training of the pixel baseline (CPU minutes)."""

    data: Path
    """Dataset directory (the JEPA's training data)."""
    out: Path
    """Run directory."""
    steps: int = 3000
    """Optimizer steps."""
    batch_size: int = 32
    """Windows per step (each predicts one next frame)."""
    lr: float = 1e-3
    """Peak AdamW learning rate (cosine decay to 10%)."""
    history: int = 3
    """k: input frames (use the JEPA's)."""
    frameskip: int = 1
    """Env steps between frames (use the JEPA's)."""
    channels: tuple[int, ...] = (32, 64, 128, 192)
    """Encoder stage channels."""
    seed: int = 0
    """Seed of weights and batch sampling."""
    precision: str = "auto"
    """auto (bf16 autocast where the hardware runs it natively) | fp32 | bf16."""
    device: str = "auto"
    """auto (cuda if available) | cpu | cuda."""
    threads: int | None = None
    """torch CPU threads (None: torch's default)."""
    resume: bool = False
    """Continue the run in --out."""
    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self) -> None:
        from reverie.trainer import DEVICES, PRECISIONS, check_choice

        object.__setattr__(self, "data", Path(self.data))
        object.__setattr__(self, "out", Path(self.out))
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        for name in ("steps", "batch_size", "history", "frameskip"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1")
        if not self.lr > 0:
            raise ValueError(f"--lr must be > 0, got {self.lr}")
        check_choice("precision", self.precision, PRECISIONS)
        check_choice("device", self.device, DEVICES)

    def to_json(self) -> dict[str, Any]:
        return {
            k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(self).items()
        }


class _NextFrameLoss(nn.Module):
    """Predict frame k from frames 0..k-1 and action k-1; pixel MSE in [0, 1] units."""

    def __init__(self, model: PixelPredictor) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        obs = batch["obs"]  # (B, k+1, 3, Hi, Wi) uint8
        pred = self.model(obs[:, :-1], batch["actions"][:, -1])  # (B, 3, Hi, Wi)
        return {"loss": F.mse_loss(pred.float(), obs[:, -1].float() / 255.0)}


def train_pixel_baseline(cfg: PixelTrainConfig) -> Path:
    """Train the pixel predictor on ``cfg.data``; returns the run directory."""
    from reverie.data.dataset import SequenceDataset
    from reverie.trainer import TrainTask, fit, loop_from, runtime

    loop = loop_from(cfg, weight_decay=1e-4, tensorboard=False, desc="pixel baseline")
    with runtime(loop) as rt:
        # Step 1. Data: windows of k input frames + the next one.
        ds = SequenceDataset(cfg.data, cfg.history, 1, cfg.frameskip)
        # Step 2. The model (channels_last for convs on CPU) and its loss; the trainer runs it.
        torch.manual_seed(cfg.seed)
        mcfg = PixelModelConfig(
            ds.image_size, ds.action_dim, cfg.history, cfg.frameskip, cfg.channels
        )
        model = PixelPredictor(mcfg).to(rt.device, memory_format=torch.channels_last)
        task = TrainTask(
            kind=KIND,
            module=model,
            loss=_NextFrameLoss(model),
            data=ds,
            samples_per_item=cfg.history + 1,
            resume_key={k: v for k, v in cfg.to_json().items() if k not in _RUNTIME_KEYS},
            meta={
                "env": ds.env_name,
                "manifest_hash": ds.manifest_hash,
                "data": str(cfg.data),
                "train": cfg.to_json(),
            },
        )
        result = fit(task, loop, cfg.out, rt, resume=cfg.resume)
    return result.out


_RUNTIME_KEYS = ("data", "out", "precision", "device", "threads", "resume", "progress")


# ------------------------------------------------------------------------------------- scoring
def pixel_surprise(model: PixelPredictor, batch_size: int = 16) -> Any:
    """Scorer (see ``reverie.physics.surprise.Scorer``): pixel MSE of each predicted frame."""
    from reverie.physics.clipframes import model_frames, skip_actions

    model.eval()
    device = next(model.parameters()).device

    @torch.no_grad()
    def score(frames: np.ndarray, actions: np.ndarray) -> np.ndarray:
        N, Fr = frames.shape[:2]
        k, s = model.history, model.frameskip
        idx = model_frames(Fr, s)
        T = len(idx)
        if actions.shape[-1] * s != model.action_dim:
            raise ValueError(
                f"clip actions of size {actions.shape[-1]} do not fit the pixel "
                f"model's {model.action_dim} (frameskip {s})"
            )
        if frames.shape[2] != model.image_size:
            raise ValueError(
                f"clips are {frames.shape[2]} px; the pixel model takes {model.image_size}"
            )
        acts = torch.from_numpy(skip_actions(actions, s, T - 1)).float()  # (N, T-1, A')
        # History windows ending at each frame t-1 (left-padded with frame 0): (T-1, k) indices.
        hist = np.clip(np.arange(T - 1)[:, None] + np.arange(-k + 1, 1)[None], 0, None)
        out = np.full((N, Fr), np.nan, np.float32)
        for lo in range(0, N, batch_size):
            obs = torch.from_numpy(frames[lo : lo + batch_size][:, idx])  # (B, T, Hi, Wi, 3)
            obs = rearrange(obs, "b t h w c -> b t c h w")
            B = obs.shape[0]
            inputs = rearrange(obs[:, hist], "b t k c h w -> (b t) k c h w")  # (B(T-1), k, ...)
            a = rearrange(acts[lo : lo + B], "b t a -> (b t) a")
            pred = model(inputs.to(device), a.to(device))  # (B(T-1), 3, Hi, Wi)
            target = rearrange(obs[:, 1:], "b t c h w -> (b t) c h w").float() / 255.0
            err = ((pred.float().cpu() - target) ** 2).mean((1, 2, 3))  # (B(T-1),)
            out[lo : lo + B, idx[1:]] = rearrange(err, "(b t) -> b t", b=B).numpy()
        return out

    return score


if __name__ == "__main__":
    import sys

    from reverie.cli import main

    raise SystemExit(main(["physics", "train-pixel", *sys.argv[1:]]))
