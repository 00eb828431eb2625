"""Embedding → pixels: a decoder trained on *frozen* JEPA embeddings, for viewing only.

Reverie's world model never reconstructs pixels; to *see* what it imagines, this small network of
transposed convolutions maps an embedding ``z (B, D)`` back to a frame ``(B, 3, Hi, Wi)``. It is
trained after the world model, on embeddings the frozen encoder produces (computed once under
``torch.no_grad`` and cached), so no gradient can ever reach the JEPA: the decoder shows what the
embedding holds, it does not shape it.

    reverie train-decoder --checkpoint runs/tworoom          # writes the run RUN/decoder/
    python -m reverie.models.decoder --checkpoint runs/tworoom   # same command

    from reverie.models.decoder import DecoderTrainConfig, train_decoder, load_decoder
    report = train_decoder(DecoderTrainConfig(checkpoint=Path("runs/tworoom")))
    report["psnr_val"]                   # reconstruction PSNR (dB) on held-out episodes' frames
    decoder, info = load_decoder("runs/tworoom")
    frames = decoder.decode_uint8(z)     # z (..., D) -> uint8 (..., Hi, Wi, 3)

Held-out frames come from the episodes the world model itself held out (``val_episodes`` in the
checkpoint's config.json) when there are any, else from the last 10% of the dataset's episodes.
The decoder is a run of its own in the one checkpoint layout (``RUN/decoder/``: config.json with
kind ``reverie-decoder``, model.safetensors, train_state.safetensors; trained by
``reverie.trainer.fit``, so ``--resume`` works as for the world model). Its config.json records the
sha256 of the world model's weights it was trained on, so a retrained checkpoint refuses a stale
decoder with a one-line error. Decoders written before that layout (``RUN/decoder.json`` +
``RUN/decoder.safetensors``) still load.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from einops import rearrange
from torch import nn

from reverie.io import ReverieError, read_json, sha256_file

KIND = "reverie-decoder"
DECODER_DIR = "decoder"
"""The decoder's run directory inside the world model's (the default ``--out``)."""
LEGACY_FILE = "decoder.safetensors"
LEGACY_JSON = "decoder.json"
"""The layout before every trained thing shared one (files beside the world model's)."""
LEGACY_FORMAT_VERSION = 1
LOSSES = ("l1", "mse")


# ------------------------------------------------------------------------------------ model
@dataclass(frozen=True)
class DecoderConfig:
    """Architecture of the decoder (stored in decoder.json)."""

    embed_dim: int
    """D: size of the world model's embedding (taken from the checkpoint)."""
    image_size: int = 64
    """Output frames are (3, image_size, image_size); a power of two >= 8."""
    channels: tuple[int, ...] = (64, 32, 16, 8)
    """Channels after each ×2 upsampling stage, starting from a 4×4 map; one stage per doubling
    from 4 px to image_size (4 stages at 64 px), so len(channels) = log2(image_size / 4)."""

    def __post_init__(self) -> None:
        # JSON round-trips turn tuples into lists: normalise so configs compare equal.
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        if self.embed_dim < 1:
            raise ValueError(f"decoder embed_dim must be >= 1, got {self.embed_dim}")
        size = self.image_size
        if size < 8 or size & (size - 1):
            raise ValueError(f"decoder image_size must be a power of two >= 8, got {size}")
        stages = int(math.log2(size // 4))
        if len(self.channels) != stages or min(self.channels) < 1:
            raise ValueError(
                f"decoder channels must be {stages} positive ints for image_size {size} "
                f"(one per doubling from 4 px), got {self.channels}"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Any) -> DecoderConfig:
        if not isinstance(d, dict):
            raise ValueError(f"decoder config must be an object, got {d!r}")
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"decoder config has unknown keys: {sorted(unknown)}")
        return cls(**d)


class Decoder(nn.Module):
    """z (B, D) → Linear to a 4×4 map → [ConvTranspose ×2, BatchNorm, GELU] × stages → RGB."""

    config_class = DecoderConfig

    def __init__(self, config: DecoderConfig) -> None:
        super().__init__()
        self.config = config
        c0 = config.channels[0]
        self.proj = nn.Linear(config.embed_dim, c0 * 16)
        layers: list[nn.Module] = []
        c_in = c0
        for c_out in config.channels:
            # 4x4 kernels with stride 2 double the map exactly (no checkerboard from odd kernels).
            layers += [
                nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.GELU(),
            ]
            c_in = c_out
        self.ups = nn.Sequential(*layers)
        self.to_rgb = nn.Conv2d(c_in, 3, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Embeddings (B, D) → frames (B, 3, Hi, Wi), floats in [0, 1]."""
        h = rearrange(self.proj(z.float()), "b (c h w) -> b c h w", h=4, w=4)  # (B, C0, 4, 4)
        return torch.sigmoid(self.to_rgb(self.ups(h)))  # (B, 3, Hi, Wi)

    @torch.inference_mode()
    def decode_uint8(self, z: torch.Tensor) -> np.ndarray:
        """Embeddings (..., D) → uint8 frames (..., Hi, Wi, 3) as numpy (for display)."""
        lead = z.shape[:-1]
        x = self(z.reshape(-1, z.shape[-1]))  # (B', 3, Hi, Wi)
        img = (x * 255.0 + 0.5).clamp(0, 255).to(torch.uint8)
        img = rearrange(img, "b c h w -> b h w c").cpu().numpy()
        return img.reshape(*lead, *img.shape[1:])


# --------------------------------------------------------------------------------- training
@dataclass(frozen=True)
class DecoderTrainConfig:
    """Train a decoder for a world-model checkpoint (its own dataset, its encoder frozen)."""

    checkpoint: Path
    """Run directory holding the world-model checkpoint."""
    out: Path | None = None
    """The decoder's run directory (default: CHECKPOINT/decoder)."""
    steps: int = 1500
    """Optimizer steps (about a minute on 2 CPU cores at the defaults, after encoding)."""
    batch_size: int = 32
    """Frames per step."""
    lr: float = 3e-3
    """Peak AdamW learning rate (cosine decay to 10%)."""
    loss: str = "l1"
    """l1 (sharper edges on flat scenes) | mse."""
    width: int = 64
    """Channels of the first upsampling stage, halved at each next one (at least 8): 64 gives
    (64, 32, 16, 8) at 64 px, 4x fewer FLOPs than width 128, so decoding 4 frames per step takes
    ~2 ms on one core and play keeps well above 30 frames/s."""
    foreground_weight: float = 20.0
    """Extra loss weight on pixels that differ from the dataset's median frame (the static
    background). Without it a Two-Room decoder draws only the background (the agent is 0.5% of
    the pixels): 27.5 dB held-out PSNR, below the mean-frame baseline's 27.8; with it 33.8 dB."""
    data: Path | None = None
    """Dataset directory; None: the one recorded in the checkpoint (meta["data"]["path"])."""
    val_frames: int = 2048
    """At most this many held-out frames are scored (evenly spaced)."""
    seed: int = 0
    """Seed of the decoder's initial weights and of batch sampling."""
    precision: str = "fp32"
    """fp32 | bf16 | auto (bf16 autocast where the hardware runs it natively)."""
    device: str = "auto"
    """auto (cuda if available) | cpu | cuda."""
    threads: int | None = None
    """torch CPU threads (None: torch's default)."""
    resume: bool = False
    """Continue the decoder run in --out."""
    overwrite: bool = False
    """Replace the decoder in --out (e.g. after retraining the world model)."""
    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self) -> None:
        from reverie.trainer import check_frozen_run

        check_frozen_run(self)
        for name in ("steps", "batch_size", "val_frames", "width"):
            if getattr(self, name) < 1:
                raise ValueError(
                    f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}"
                )
        if not (math.isfinite(self.foreground_weight) and self.foreground_weight >= 0):
            raise ValueError(
                f"--foreground-weight must be finite and >= 0, got {self.foreground_weight}"
            )
        if self.loss not in LOSSES:
            raise ValueError(f"--loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")

    def channels(self, image_size: int) -> tuple[int, ...]:
        """Per-stage channels for frames of ``image_size`` px (one stage per doubling from 4)."""
        stages = max(1, int(math.log2(max(8, image_size) // 4)))
        return tuple(max(8, self.width >> i) for i in range(stages))

    def to_json(self) -> dict[str, Any]:
        return {
            k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(self).items()
        }

    def run_dir(self) -> Path:
        """Where the decoder run lives."""
        run = self.checkpoint if self.checkpoint.is_dir() else self.checkpoint.parent
        return self.out if self.out is not None else run / DECODER_DIR


@torch.no_grad()
def frozen_embeddings(model: nn.Module, obs: torch.Tensor, chunk: int = 512) -> torch.Tensor:
    """Encode uint8 frames (F, 3, Hi, Wi) → (F, D) with the world model frozen (eval, no grad).

    The result carries no autograd graph, so a decoder trained on it cannot move the encoder.
    """
    was_training = model.training
    model.eval()
    out = [model.encode(part).float() for part in obs.split(chunk)]  # [(chunk, D)]
    model.train(was_training)
    z = torch.cat(out)  # (F, D)
    assert not z.requires_grad, "frozen embeddings must not carry gradients to the encoder"
    return z


def reconstruction_loss(
    decoder: Decoder,
    z: torch.Tensor,
    obs: torch.Tensor,
    loss: str = "l1",
    background: torch.Tensor | None = None,
    foreground_weight: float = 0.0,
) -> torch.Tensor:
    """Decode z (B, D) and compare with uint8 frames (B, 3, Hi, Wi), in [0, 1] pixel units.

    With a ``background`` (3, Hi, Wi) in [0, 1], pixels that differ from it by more than 0.1
    (summed over channels) weigh ``1 + foreground_weight``: small moving objects are what a viewer
    needs to see, and an unweighted loss is satisfied by drawing the background alone.
    """
    target = obs.float() / 255.0  # (B, 3, Hi, Wi)
    pred = decoder(z)  # (B, 3, Hi, Wi)
    err = (pred - target).abs() if loss == "l1" else (pred - target).pow(2)  # (B, 3, Hi, Wi)
    if background is None or foreground_weight == 0:
        return err.mean()
    moving = (target - background).abs().sum(1, keepdim=True) > 0.1  # (B, 1, Hi, Wi)
    weight = 1.0 + foreground_weight * moving.float()  # (B, 1, Hi, Wi)
    return (err * weight).sum() / (weight.sum() * err.shape[1])


def median_frame(obs: torch.Tensor, samples: int = 1024, seed: int = 0) -> torch.Tensor:
    """Per-pixel median of up to ``samples`` frames (F, 3, Hi, Wi) uint8 → (3, Hi, Wi) in [0, 1]."""
    gen = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(obs), generator=gen)[:samples]
    return obs[pick].float().median(0).values / 255.0


@torch.no_grad()
def psnr(decoder: Decoder, z: torch.Tensor, obs: torch.Tensor, chunk: int = 512) -> float:
    """Mean per-frame PSNR (dB, peak 1.0) of the decoder's reconstructions of ``obs``."""
    was_training = decoder.training
    decoder.eval()
    scores = []
    for zc, oc in zip(z.split(chunk), obs.split(chunk)):
        mse = (decoder(zc) - oc.float() / 255.0).pow(2).mean((1, 2, 3))  # (chunk,)
        scores.append(10 * torch.log10(1.0 / mse.clamp_min(1e-10)))
    decoder.train(was_training)
    return float(torch.cat(scores).mean())


def mean_frame_psnr(train_obs: torch.Tensor, val_obs: torch.Tensor) -> float:
    """PSNR of always answering the mean training frame: the floor a decoder must beat."""
    mean = train_obs.float().mean(0, keepdim=True) / 255.0  # (1, 3, Hi, Wi)
    mse = (val_obs.float() / 255.0 - mean).pow(2).mean((1, 2, 3))  # (F,)
    return float((10 * torch.log10(1.0 / mse.clamp_min(1e-10))).mean())


def _load_frames(data: Path, episodes: list[int], verify: bool = True) -> torch.Tensor:
    from reverie.data.dataset import SequenceDataset

    # history=1, horizon=0: every frame is a window; the dataset holds all frames in .obs.
    ds = SequenceDataset(data, history=1, horizon=0, episodes=episodes, verify=verify)
    return ds.obs  # (F, 3, Hi, Wi) uint8


class _ReconstructionLoss(nn.Module):
    """The decoder's training loss as the trainer sees it: batch {"z", "obs"} → terms."""

    def __init__(self, decoder: Decoder, cfg: DecoderTrainConfig, background: torch.Tensor) -> None:
        super().__init__()
        self.decoder, self.cfg = decoder, cfg
        self.register_buffer("background", background, persistent=False)

    def forward(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        loss = reconstruction_loss(
            self.decoder,
            batch["z"],
            batch["obs"],
            self.cfg.loss,
            self.background,
            self.cfg.foreground_weight,
        )
        return {"loss": loss}


def train_decoder(cfg: DecoderTrainConfig) -> dict[str, Any]:
    """Train, score and save a decoder run for ``cfg.checkpoint``; returns the report dict.

    Report keys: psnr_val, psnr_train, psnr_mean_frame (baseline), val_frames, train_frames,
    val_source, val_episodes, steps, seconds, path.
    """
    from reverie.checkpoint import load_checkpoint
    from reverie.data.splits import run_dataset, run_split
    from reverie.trainer import TensorBatches, TrainTask, fit, loop_from, runtime

    t_start = time.perf_counter()
    loop = loop_from(cfg, weight_decay=1e-4, grad_clip=0.0, tensorboard=False, desc="decoder")
    with runtime(loop) as rt:
        # Step 1. The world model, frozen for good: eval mode, no parameter wants a gradient.
        model, meta = load_checkpoint(cfg.checkpoint, rt.device)
        model.requires_grad_(False).eval()

        # Step 2. Frames of the checkpoint's dataset, split into train / held-out.
        data = run_dataset(cfg.checkpoint, cfg.data, meta)
        train_ids, val_ids, source = run_split(data, meta)
        train_obs = _load_frames(data, train_ids)  # (F, 3, Hi, Wi) uint8
        if val_ids is None:
            n_val = max(1, len(train_obs) // 10)
            val_obs, train_obs = train_obs[-n_val:], train_obs[:-n_val]
        else:
            val_obs = _load_frames(data, val_ids, verify=False)  # checksums checked just above
        if train_obs.shape[-1] != model.image_size:
            raise ReverieError(
                f"dataset {data} has {train_obs.shape[-1]} px frames, the model expects "
                f"{model.image_size} px"
            )
        pick = torch.linspace(0, len(val_obs) - 1, min(cfg.val_frames, len(val_obs))).round()
        val_obs = val_obs[pick.long()]
        # 512 training frames are enough to show over- or under-fitting next to psnr_val.
        train_pick = torch.linspace(0, len(train_obs) - 1, min(512, len(train_obs)))
        train_pick = train_pick.round().long()

        # Step 3. Frozen embeddings, computed once (the encoder never runs under autograd).
        z_train = frozen_embeddings(model, train_obs.to(rt.device)).cpu()  # (F, D)
        z_val = frozen_embeddings(model, val_obs.to(rt.device)).cpu()  # (F_val, D)

        # Step 4. Decoder, loss and scores; the trainer runs the loop.
        torch.manual_seed(cfg.seed)
        dcfg = DecoderConfig(model.embed_dim, model.image_size, cfg.channels(model.image_size))
        decoder = Decoder(dcfg).to(rt.device)
        background = median_frame(train_obs, seed=cfg.seed).to(rt.device)  # (3, Hi, Wi)
        mean_frame = mean_frame_psnr(train_obs, val_obs)

        def validate(step: int) -> dict[str, float]:
            return {
                "psnr_val": psnr(decoder, z_val.to(rt.device), val_obs.to(rt.device)),
                "psnr_train": psnr(
                    decoder, z_train[train_pick].to(rt.device), train_obs[train_pick].to(rt.device)
                ),
                "psnr_mean_frame": mean_frame,
            }

        split = {
            "val_frames": len(val_obs),
            "train_frames": len(train_obs),
            "val_source": source,
            "val_episodes": val_ids,
        }
        task = TrainTask(
            kind=KIND,
            module=decoder,
            loss=_ReconstructionLoss(decoder, cfg, background),
            data=TensorBatches(z=z_train, obs=train_obs),
            validate=validate,
            resume_key={k: v for k, v in cfg.to_json().items() if k in _RESUME_KEYS},
            meta={
                "env": meta.get("env"),
                "manifest_hash": meta.get("manifest_hash"),
                "world_model": str(cfg.checkpoint),
                "world_model_sha256": (meta.get("files") or {}).get("model.safetensors"),
                "world_model_step": meta.get("step"),
                "data": str(data),
                "split": split,
                "train": cfg.to_json(),
            },
        )
        out = cfg.run_dir()
        result = fit(task, loop, out, rt, resume=cfg.resume, overwrite=cfg.overwrite)
    report: dict[str, Any] = {**result.metrics, **split, "steps": result.step}
    report["seconds"] = time.perf_counter() - t_start
    report["path"] = str(out)
    return report


#: Decoder settings a resumed decoder run must share.
_RESUME_KEYS = ("steps", "batch_size", "lr", "loss", "width", "foreground_weight", "seed")


def load_decoder(
    run_dir: str | Path, device: str | torch.device = "cpu"
) -> tuple[Decoder, dict[str, Any]]:
    """The decoder of the world-model run ``run_dir`` (eval mode) and its metadata.

    ``run_dir`` is the world model's run (its decoder is RUN/decoder, or the legacy files beside
    it) or the decoder's own run. Refuses, with a one-line ``ReverieError``, a missing, corrupt or
    mismatched decoder, or one trained for other world-model weights than the checkpoint's
    current ones.
    """
    from reverie.checkpoint import checkpoint_kind, load_module, read_meta

    run_dir = Path(run_dir)
    run_dir = run_dir.parent if run_dir.is_file() else run_dir
    if checkpoint_kind(run_dir) == KIND:  # the decoder's own run: its world model is recorded
        decoder, info = load_module(run_dir, KIND, device)
        model_run = Path(str(info.get("world_model") or run_dir.parent))
    elif checkpoint_kind(run_dir / DECODER_DIR) == KIND:
        decoder, info = load_module(run_dir / DECODER_DIR, KIND, device)
        model_run = run_dir
    elif (run_dir / LEGACY_JSON).is_file():
        decoder, info = _load_legacy(run_dir, device)
        model_run = run_dir
    else:
        raise ReverieError(
            f"no decoder in {run_dir}: train one with "
            f"`reverie train-decoder --checkpoint {run_dir}`"
        )
    meta = read_meta(model_run)
    if info.get("world_model_sha256") != (meta.get("files") or {}).get("model.safetensors"):
        raise ReverieError(
            f"the decoder in {run_dir} was trained for other world-model weights (step "
            f"{info.get('world_model_step')}, checkpoint now at step {meta.get('step')}): re-run "
            f"`reverie train-decoder --checkpoint {model_run} --overwrite`"
        )
    assert isinstance(decoder, Decoder)
    return decoder, info


def _load_legacy(run_dir: Path, device: str | torch.device) -> tuple[Decoder, dict[str, Any]]:
    """A decoder saved before the shared layout: RUN/decoder.json + RUN/decoder.safetensors."""
    from reverie.checkpoint import load_weights

    info = read_json(run_dir / LEGACY_JSON, "decoder config")
    if not isinstance(info, dict) or info.get("kind") != KIND:
        raise ReverieError(f"{run_dir / LEGACY_JSON} is not a reverie decoder")
    if info.get("format_version") != LEGACY_FORMAT_VERSION:
        raise ReverieError(
            f"{run_dir / LEGACY_JSON} has format_version {info.get('format_version')}; this "
            f"reverie reads {LEGACY_FORMAT_VERSION}: re-run train-decoder"
        )
    path = run_dir / LEGACY_FILE
    if not path.is_file():
        raise ReverieError(f"decoder weights missing: {path}")
    if sha256_file(path) != (info.get("files") or {}).get(LEGACY_FILE):
        raise ReverieError(f"{path} does not match the checksum in {LEGACY_JSON} (corrupt?)")
    try:
        config = DecoderConfig.from_dict(info.get("decoder"))
    except (TypeError, ValueError) as e:
        raise ReverieError(f"{run_dir / LEGACY_JSON} has an invalid decoder config: {e}") from None
    decoder = load_weights(Decoder(config), path, "decoder")
    return decoder.to(device).eval(), info


if __name__ == "__main__":
    import sys

    from reverie.cli import main

    raise SystemExit(main(["train-decoder", *sys.argv[1:]]))
