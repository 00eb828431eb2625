"""Pixel-space baseline for the physics suite: a next-frame predictor trained with pixel MSE.

    python -m reverie.physics.pixel_baseline --data runs/tt-physics --out runs/tt-pixel
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

A run directory holds ``pixel_model.safetensors`` and ``config.json`` (``kind:
reverie-pixel-baseline``, the model config, step, sha256 of the weights), written atomically.
"""

from __future__ import annotations

import dataclasses
import json
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm import tqdm

from reverie.io import ReverieError, atomic_path, read_json

KIND = "reverie-pixel-baseline"
CONFIG_FILE = "config.json"
MODEL_FILE = "pixel_model.safetensors"


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


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.GroupNorm(8, c_out), nn.GELU())


class PixelPredictor(nn.Module):
    """U-Net next-frame predictor: (B, k, 3, Hi, Wi) frames + (B, A') action → (B, 3, Hi, Wi)."""

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
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        return False
    try:
        return json.loads(path.read_text()).get("kind") == KIND
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return False


def save_pixel_model(
    run_dir: Path, model: PixelPredictor, step: int, extra: dict[str, Any]
) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(run_dir / MODEL_FILE) as tmp:
        save_file(weights, tmp)
        digest = _sha256(tmp)
    meta = {
        "kind": KIND,
        "format_version": 1,
        "model": dataclasses.asdict(model.config),
        "step": step,
        "sha256": digest,
        **extra,
    }
    with atomic_path(run_dir / CONFIG_FILE) as tmp:
        tmp.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def load_pixel_model(
    run_dir: str | Path, device: str = "cpu"
) -> tuple[PixelPredictor, dict[str, Any]]:
    """The pixel predictor saved in ``run_dir`` (eval mode) and its config.json."""
    run_dir = Path(run_dir)
    meta = read_json(run_dir / CONFIG_FILE, "pixel baseline config")
    if not isinstance(meta, dict) or meta.get("kind") != KIND:
        raise ReverieError(f"{run_dir} does not hold a pixel baseline")
    path = run_dir / MODEL_FILE
    if not path.is_file() or _sha256(path) != meta.get("sha256"):
        raise ReverieError(f"pixel baseline weights missing or corrupt: {path}")
    try:
        model = PixelPredictor(PixelModelConfig(**meta["model"]))
        model.load_state_dict(load_file(path), strict=True)
    except (TypeError, ValueError, RuntimeError) as e:
        raise ReverieError(f"pixel baseline in {run_dir} cannot be loaded: {e}") from None
    return model.to(device).eval(), meta


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


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
    threads: int | None = None
    """torch CPU threads (None: torch's default)."""
    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", Path(self.data))
        object.__setattr__(self, "out", Path(self.out))
        for name in ("steps", "batch_size", "history", "frameskip"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1")
        if not self.lr > 0:
            raise ValueError(f"--lr must be > 0, got {self.lr}")


def train_pixel_baseline(cfg: PixelTrainConfig) -> Path:
    """Train the pixel predictor on ``cfg.data``; returns the run directory."""
    from reverie.data.dataset import SequenceDataset
    from reverie.hardware import bf16_native

    threads = torch.get_num_threads()
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    try:
        # Step 1. Data: windows of k input frames + the next one.
        ds = SequenceDataset(cfg.data, cfg.history, 1, cfg.frameskip)
        torch.manual_seed(cfg.seed)
        sampler = torch.Generator().manual_seed(cfg.seed)
        # Step 2. Model and optimiser.
        model = PixelPredictor(
            PixelModelConfig(ds.image_size, ds.action_dim, cfg.history, cfg.frameskip, cfg.channels)
        )
        model = model.to(memory_format=torch.channels_last)
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
        autocast = (
            torch.autocast("cpu", dtype=torch.bfloat16)
            if bf16_native(torch.device("cpu"))
            else nullcontext()
        )
        bar = tqdm(total=cfg.steps, desc="pixel baseline", unit="step", disable=not cfg.progress)
        t0, loss_value = time.perf_counter(), float("nan")
        for step in range(1, cfg.steps + 1):
            # Step 3. Batch and loss: predict frame k from frames 0..k-1 and action k-1.
            batch = ds.get_batch(torch.randint(len(ds), (cfg.batch_size,), generator=sampler))
            obs = batch["obs"]  # (B, k+1, 3, Hi, Wi) uint8
            with autocast:
                pred = model(obs[:, :-1], batch["actions"][:, -1])  # (B, 3, Hi, Wi)
            loss = F.mse_loss(pred.float(), obs[:, -1].float() / 255.0)
            # Step 4. Update with a cosine learning-rate schedule.
            lr = cfg.lr * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * step / cfg.steps)))
            for group in opt.param_groups:
                group["lr"] = lr
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            loss_value = float(loss.detach())
            if not np.isfinite(loss_value):
                raise ReverieError(f"pixel baseline loss is not finite at step {step}")
            bar.update(1)
            if step % 50 == 0:
                bar.set_postfix(loss=f"{loss_value:.2e}")
        bar.close()
        save_pixel_model(
            cfg.out,
            model.eval(),
            cfg.steps,
            {
                "data": str(cfg.data),
                "manifest_hash": ds.manifest_hash,
                "env": ds.env_name,
                "final_loss": loss_value,
                "train_seconds": round(time.perf_counter() - t0, 1),
                "train": {
                    k: str(v) if isinstance(v, Path) else v
                    for k, v in dataclasses.asdict(cfg).items()
                },
            },
        )
        return cfg.out
    finally:
        torch.set_num_threads(threads)


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
    import tyro

    print(train_pixel_baseline(tyro.cli(PixelTrainConfig)))
