"""Look augmentation: per-frame colour and position jitter that makes the look a nuisance.

    reverie train --data runs/tworoom-data --out runs/tw-look --augment look
    from reverie.data.augment import AUGMENTS, augment_frames
    obs = augment_frames(obs, AUGMENTS["look"], seed=0, step=12)  # (B, T, 3, Hi, Wi) -> float

Why per frame: a JEPA encodes what is slow (Sobal et al. 2022). A look drawn once per episode is
constant within a training window, so the predictor gets it for free and the encoder spends the
embedding on it (BENCHMARKS.md, visual randomization: one-step error = the "no change" error).
Drawing a new look for *every frame* (context and target frames independently) turns it into
noise the predictor cannot forecast, so the cheapest way to lower the loss is to drop it from
the embedding. The ops follow DrQ/RAD/SVEA: hue rotation, saturation, contrast, brightness and a
small sub-pixel translation (the camera), written with torch alone (no torchvision, STACK.md).

The draws come from a generator seeded by ``(seed, step)`` (as SIGReg's directions are), so a
resumed run sees exactly the augmentations an uninterrupted one saw. ``AUGMENTS["none"]`` is
never applied: callers skip the call, so batches stay bit-identical when the option is off.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange

# RGB <-> YIQ: a hue rotation is a rotation of the (I, Q) chroma plane.
_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)
_LUMA = torch.tensor([0.299, 0.587, 0.114])
PADS = ("dark", "edge")


@dataclass(frozen=True)
class LookAugment:
    """Strength of each per-frame jitter (0 turns that op off)."""

    hue: float = 0.0
    """Largest hue rotation in turns, drawn in [-hue, hue] (0.5: any hue)."""
    saturation: float = 0.0
    """Saturation factor drawn in [1 - s, 1 + s] (blend with the grey image)."""
    contrast: float = 0.0
    """Contrast factor drawn in [1 - c, 1 + c] around each frame's mean."""
    brightness: float = 0.0
    """Brightness multiplier drawn in [1 - b, 1 + b] (the renderers' ``lighting``)."""
    shift: float = 0.0
    """Largest translation in pixels along each axis, sub-pixel (bilinear)."""
    pad: str = "dark"
    """What a shift uncovers: dark (each frame's darkest colour, as the renderers draw what lies
    beyond the world: a camera offset shows a dark strip) | edge (the border pixels repeated)."""

    def __post_init__(self) -> None:
        for name in ("hue", "saturation", "contrast", "brightness", "shift"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"augmentation {name} must be finite and >= 0, got {value}")
        if self.pad not in PADS:
            raise ValueError(f"augmentation pad must be one of {', '.join(PADS)}, got {self.pad!r}")
        for name in ("saturation", "contrast", "brightness"):
            if getattr(self, name) >= 1:
                raise ValueError(f"augmentation {name} must be < 1, got {getattr(self, name)}")

    @property
    def active(self) -> bool:
        return any((self.hue, self.saturation, self.contrast, self.brightness, self.shift))


#: Named strengths for ``reverie train --augment``. ``look``: any hue, lighting ×0.6–1.4 and
#: 3 px (~10 world units in Two-Room at 64 px) of camera; ``look-edge``: the same with the
#: uncovered border repeated (what the first measured model used; its probes still read the
#: camera offset off the dark strip a real offset shows); ``color`` / ``shift``: one half each.
AUGMENTS: dict[str, LookAugment] = {
    "none": LookAugment(),
    "look": LookAugment(hue=0.5, saturation=0.3, contrast=0.2, brightness=0.4, shift=3.0),
    "look-edge": LookAugment(
        hue=0.5, saturation=0.3, contrast=0.2, brightness=0.4, shift=3.0, pad="edge"
    ),
    "color": LookAugment(hue=0.5, saturation=0.3, contrast=0.2, brightness=0.4),
    "shift": LookAugment(shift=3.0),
}


def generator_for(seed: int, step: int) -> torch.Generator:
    """The CPU generator of ``step``'s draws (a different stream from SIGReg's directions)."""
    return torch.Generator().manual_seed((seed + 7_919) * 1_000_003 + int(step))


def augment_frames(
    obs: torch.Tensor, aug: LookAugment, seed: int, step: int, salt: int = 0
) -> torch.Tensor:
    """Frames (..., 3, Hi, Wi) uint8 or float in [0, 255] → float32 in [0, 255] (up to float
    rounding), every frame with its own draw. ``salt`` gives a second, independent draw of the
    same step (two views).

    The ops are applied in this order: hue, saturation, brightness, contrast, clip, shift; the
    first four are one affine map per frame (a (3, 3) matrix and an offset), applied in one pass.
    """
    x, lead = obs, obs.shape[:-3]
    with torch.autocast(obs.device.type, enabled=False):
        x = rearrange(x.float(), "... c h w -> (...) c h w")  # (N, 3, Hi, Wi) in [0, 255]
        N = x.shape[0]
        g = generator_for(seed, step * 16 + salt)
        u = (torch.rand(N, 6, generator=g) * 2 - 1).to(x.device)  # (N, 6) in [-1, 1]
        # Hue, saturation and brightness are linear in RGB: one (3, 3) matrix per frame.
        mix = torch.eye(3, device=x.device).expand(N, 3, 3)  # (N, 3, 3)
        if aug.hue:
            theta = u[:, 0] * aug.hue * 2 * math.pi  # (N,)
            cos, sin = theta.cos(), theta.sin()
            rot = torch.zeros(N, 3, 3, device=x.device)
            rot[:, 0, 0] = 1
            rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = cos, -sin, sin, cos
            mix = _YIQ_TO_RGB.to(x.device) @ rot @ _RGB_TO_YIQ.to(x.device)
        if aug.saturation:  # blend with the grey image: s·I + (1 − s)·1·lumaᵀ
            s = (1 + u[:, 1] * aug.saturation)[:, None, None]  # (N, 1, 1)
            grey = torch.ones(3, 1, device=x.device) @ _LUMA.to(x.device)[None]  # (3, 3)
            mix = (s * torch.eye(3, device=x.device) + (1 - s) * grey) @ mix
        if aug.brightness:
            mix = mix * (1 + u[:, 3] * aug.brightness)[:, None, None]
        offset = torch.zeros(N, 3, 1, device=x.device)
        if aug.contrast:  # around the frame's mean after the matrix: c·M·x + (1 − c)·mean(M·x)
            c = (1 + u[:, 2] * aug.contrast)[:, None, None]  # (N, 1, 1)
            mean = (mix @ x.mean(dim=(2, 3))[:, :, None]).mean(dim=1, keepdim=True)  # (N, 1, 1)
            mix, offset = c * mix, (1 - c) * mean
        if aug.hue or aug.saturation or aug.brightness or aug.contrast:
            # einsum, not bmm: ~7x faster for 3x3 matrices on CPU.
            x = torch.einsum("nij,njp->nip", mix, x.flatten(2)).add_(offset).view_as(x)
        x = x.clamp(0.0, 255.0)
        if aug.shift:
            H, W = x.shape[-2:]
            # A pure translation: the pixel-centre grid (align_corners=False) plus an offset per
            # frame (what F.affine_grid builds, ~10x cheaper on CPU).
            gx = (2 * torch.arange(W, device=x.device) + 1) / W - 1  # (Wi,)
            gy = (2 * torch.arange(H, device=x.device) + 1) / H - 1  # (Hi,)
            base = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), dim=-1)  # (Hi, Wi, 2)
            offset = torch.stack([u[:, 4] * aug.shift * 2 / W, u[:, 5] * aug.shift * 2 / H], 1)
            grid = base[None] + offset[:, None, None, :]  # (N, Hi, Wi, 2), normalised coords
            if aug.pad == "edge":
                x = F.grid_sample(
                    x, grid, mode="bilinear", padding_mode="border", align_corners=False
                )
            else:  # zero padding, then the fill colour for the weight that fell outside
                luma = (x * _LUMA.to(x.device)[:, None, None]).sum(1).flatten(1)  # (N, HiWi)
                darkest = luma.argmin(dim=1)  # (N,)
                fill = x.flatten(2)[torch.arange(N), :, darkest][:, :, None, None]  # (N, 3, 1, 1)
                # Output pixel j samples input coordinate j + t; the bilinear weight that lands
                # inside the image is clamp(min(1 + p, size - p), 0, 1) per axis (separable).
                cols = torch.arange(W, device=x.device) + (u[:, 4] * aug.shift)[:, None]  # (N, Wi)
                rows = torch.arange(H, device=x.device) + (u[:, 5] * aug.shift)[:, None]  # (N, Hi)
                cover_x = torch.minimum(1 + cols, W - cols).clamp(0, 1)
                cover_y = torch.minimum(1 + rows, H - rows).clamp(0, 1)
                cover = (cover_y[:, :, None] * cover_x[:, None, :])[:, None]  # (N, 1, Hi, Wi)
                x = F.grid_sample(x, grid, mode="bilinear", align_corners=False)
                x = x.add_((1 - cover) * fill)
    return x.reshape(*lead, *x.shape[1:])
