"""Pixel encoders: ``uint8 (B, 3, Hi, Wi)`` frames → embeddings ``(B, D)``.

Two kinds, chosen by ``EncoderConfig.kind``:

- ``cnn`` (CPU default): four stride-2 convolutions with BatchNorm + ReLU, then a linear
  projection and a BatchNorm1d on the embedding. BatchNorm is not decoration here: on sparse
  Two-Room frames (flat background, a wall, a small disc) the same network without it collapsed to
  a constant embedding within 50 steps and SIGReg never pulled it back (see STACK.md).
- ``vit`` (GPU preset): a small ViT (patch 8, learned positions, mean-pooled tokens) with the same
  Linear + BatchNorm1d projector as the CNN.

    from reverie.models.encoder import EncoderConfig, build_encoder
    enc = build_encoder(EncoderConfig(image_size=64, embed_dim=64))
    z = enc(frames)  # frames uint8 or float in [0, 255], (B, 3, 64, 64) -> z (B, 64)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from einops import rearrange
from torch import nn

ENCODER_KINDS = ("cnn", "vit")
LATENTS = ("vector", "grid")
GRID = 4  # cells per side of the cnn's last map (a 4 x 4 grid at every image size)
ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU}


@dataclass(frozen=True)
class EncoderConfig:
    """Architecture of the pixel encoder (stored in every checkpoint's config.json)."""

    kind: str = "cnn"
    """cnn (fast on CPU) | vit (GPU presets)."""
    image_size: int = 64
    """Input frames are (3, image_size, image_size); taken from the dataset at training time."""
    embed_dim: int = 64
    """D: size of the embedding the predictor works in."""
    latent: str = "vector"
    """cnn: vector (the 4 x 4 map flattened and projected to one D-vector: every dimension mixes
    every place) | grid (a 4 x 4 token grid: each cell's features projected on their own by a
    1 x 1 convolution to D / 16 channels, so each part of z describes one part of the image)."""
    channels: tuple[int, ...] = (32, 64, 128, 256)
    """cnn: output channels of the stride-2 conv stages (one stage per entry)."""
    kernel_size: int = 3
    """cnn: 3 or 4 (both halve the map exactly with padding 1; 3 costs 9/16 of the FLOPs)."""
    activation: str = "relu"
    """cnn: relu | gelu (GELU cost ~25% more CPU training time, no planning gain measured)."""
    patch_size: int = 8
    """vit: square patch size in pixels (must divide image_size)."""
    width: int = 192
    """vit: token width."""
    depth: int = 6
    """vit: transformer blocks."""
    heads: int = 3
    """vit: attention heads (must divide width)."""

    def __post_init__(self) -> None:
        # JSON round-trips turn tuples into lists: normalise so configs compare equal.
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        if self.kind not in ENCODER_KINDS:
            raise ValueError(f"encoder kind must be one of {ENCODER_KINDS}, got {self.kind!r}")
        if not 16 <= self.image_size <= 512:
            raise ValueError(f"image_size must be in [16, 512], got {self.image_size}")
        if self.embed_dim < 2:
            raise ValueError(f"embed_dim must be >= 2, got {self.embed_dim}")
        if self.kind == "cnn" and (not self.channels or min(self.channels) < 1):
            raise ValueError(
                f"cnn channels must be a non-empty list of positive ints: {self.channels}"
            )
        if self.latent not in LATENTS:
            raise ValueError(f"latent must be one of {LATENTS}, got {self.latent!r}")
        if self.latent == "grid" and (self.kind != "cnn" or self.embed_dim % GRID**2):
            raise ValueError(
                f"a grid latent needs the cnn encoder and embed_dim a multiple of {GRID**2}, "
                f"got {self.kind} with {self.embed_dim}"
            )
        if self.kernel_size not in (3, 4):
            raise ValueError(f"cnn kernel_size must be 3 or 4, got {self.kernel_size}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {tuple(ACTIVATIONS)}, got {self.activation!r}"
            )
        if self.kind == "vit":
            if self.image_size % self.patch_size:
                raise ValueError(
                    f"patch_size {self.patch_size} must divide image_size {self.image_size}"
                )
            if self.width % self.heads:
                raise ValueError(f"heads {self.heads} must divide width {self.width}")


def normalise_pixels(obs: torch.Tensor) -> torch.Tensor:
    """uint8 or float pixels in [0, 255] → float roughly zero-mean, unit-scale."""
    return (obs.float() / 255.0 - 0.5) / 0.25


class Projector(nn.Sequential):
    """Features → embedding, batch-normalised so every dimension keeps a unit scale."""

    def __init__(self, in_dim: int, embed_dim: int) -> None:
        super().__init__(nn.Linear(in_dim, embed_dim), nn.BatchNorm1d(embed_dim))


class GridProjector(nn.Module):
    """(B, C, 4, 4) map → per-cell 1×1 projection + BatchNorm2d → (B, 16·g), cell-major."""

    def __init__(self, in_channels: int, embed_dim: int) -> None:
        super().__init__()
        g = embed_dim // GRID**2
        self.proj = nn.Conv2d(in_channels, g, 1, bias=False)
        self.norm = nn.BatchNorm2d(g)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return rearrange(self.norm(self.proj(h)), "b g h w -> b (h w g)")


class ConvEncoder(nn.Module):
    """Stride-2 conv stages (BatchNorm + activation) → 4×4 map → Linear + BatchNorm1d (or, with
    a grid latent, a per-cell projection)."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for c_out in cfg.channels:
            layers += [
                nn.Conv2d(c_in, c_out, cfg.kernel_size, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                ACTIVATIONS[cfg.activation](),
            ]
            c_in = c_out
        self.convs = nn.Sequential(*layers)
        # Identity at 64 px with four stages; lets larger images reuse the same projector size.
        self.pool = nn.AdaptiveAvgPool2d(GRID)
        self.grid = cfg.latent == "grid"
        self.proj: nn.Module = (
            GridProjector(c_in, cfg.embed_dim) if self.grid else Projector(c_in * 16, cfg.embed_dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.convs[0].weight.is_contiguous(memory_format=torch.channels_last):
            x = x.contiguous(memory_format=torch.channels_last)
        h = self.convs(x)  # (B, C, Hi/16, Wi/16)
        if h.shape[-2:] != (GRID, GRID):  # (the pool's backward is not free even as an identity)
            h = self.pool(h)  # (B, C, 4, 4)
        if self.grid:
            return self.proj(h)  # (B, D)
        return self.proj(rearrange(h, "b c h w -> b (c h w)"))  # (B, D)


class Block(nn.Module):
    """Pre-norm transformer block."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class ViTEncoder(nn.Module):
    """Patchify → tokens + learned positions → transformer → mean pool → Linear + BatchNorm1d."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.patch_size = cfg.patch_size
        n_tokens = (cfg.image_size // cfg.patch_size) ** 2
        self.patch = nn.Linear(3 * cfg.patch_size**2, cfg.width)
        self.pos = nn.Parameter(torch.randn(1, n_tokens, cfg.width) * 0.02)
        self.blocks = nn.Sequential(*[Block(cfg.width, cfg.heads) for _ in range(cfg.depth)])
        self.norm = nn.LayerNorm(cfg.width)
        self.proj = Projector(cfg.width, cfg.embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.patch_size
        tokens = rearrange(x, "b c (h p1) (w p2) -> b (h w) (p1 p2 c)", p1=p, p2=p)  # (B, L, P)
        h = self.blocks(self.patch(tokens) + self.pos)  # (B, L, width)
        return self.proj(self.norm(h).mean(dim=1))  # (B, D)


class Encoder(nn.Module):
    """Normalises pixels and runs the configured backbone: (B, 3, Hi, Wi) → (B, D)."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.config = cfg
        self.net: nn.Module = ConvEncoder(cfg) if cfg.kind == "cnn" else ViTEncoder(cfg)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if obs.shape[-3:] != (3, self.config.image_size, self.config.image_size):
            s = self.config.image_size
            raise ValueError(f"encoder expects frames (B, 3, {s}, {s}), got {tuple(obs.shape)}")
        return self.net(normalise_pixels(obs))


def build_encoder(cfg: EncoderConfig | dict[str, Any]) -> Encoder:
    return Encoder(cfg if isinstance(cfg, EncoderConfig) else EncoderConfig(**cfg))
