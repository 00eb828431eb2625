"""The JEPA world model: ``encode`` pixels, ``predict`` the next embedding, ``rollout`` many steps.

This is the API every later stage (planning, evaluation, physics, viewer) uses; they get a model
only through ``reverie.checkpoint.load_checkpoint``.

With ``proprio_dim`` P > 0 the model also senses the agent itself (proprioception: the pusher's
position and velocity, ``env.proprio_indices``): ``encode`` then takes those P numbers beside the
pixels, embeds them (BatchNorm → Linear → BatchNorm) into ``proprio_embed`` dimensions and appends
them to the pixel embedding, so the predictor forecasts them too and the planner's latent goal
cost includes them (the goal's proprio comes from the goal state). Pixels-only is the default.

    from reverie.models import WorldModel, WorldModelConfig
    wm = WorldModel(WorldModelConfig.default(action_dim=2))
    z = wm.encode(obs)                        # (..., 3, Hi, Wi) uint8 -> (..., D)
    z = wm.encode(obs, proprio)               # a proprio model: (..., P) -> z (..., D_pix + E)
    z_next = wm.predict(z[:, -3:], a)         # (B, k, D), (B, A') -> (B, D)
    z_future = wm.rollout(z[:, :1], actions)  # (B, k', D), (B, H, A') -> (B, H, D)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from einops import pack, rearrange, repeat, unpack
from torch import nn

from reverie.models.encoder import Encoder, EncoderConfig
from reverie.models.predictor import Predictor, PredictorConfig


@dataclass(frozen=True)
class WorldModelConfig:
    """Everything needed to rebuild a world model (saved as JSON in every checkpoint)."""

    encoder: EncoderConfig
    """Pixel encoder architecture."""
    predictor: PredictorConfig
    """Predictor architecture (its embed_dim must equal the encoder's, plus proprio_embed)."""
    frameskip: int = 1
    """Env steps between consecutive model frames; one model action = frameskip raw actions."""
    proprio_dim: int = 0
    """P: proprioceptive numbers ``encode`` takes beside the pixels (0: pixels only)."""
    proprio_embed: int = 16
    """E: dimensions the proprioception adds to the embedding (used when proprio_dim > 0)."""

    def __post_init__(self) -> None:
        if self.proprio_dim < 0 or self.proprio_embed < 1:
            raise ValueError(
                f"need proprio_dim >= 0 and proprio_embed >= 1, got {self.proprio_dim}, "
                f"{self.proprio_embed}"
            )
        if self.latent_dim != self.predictor.embed_dim:
            extra = f" + proprio_embed {self.proprio_embed}" if self.proprio_dim else ""
            raise ValueError(
                f"encoder embed_dim {self.encoder.embed_dim}{extra} != predictor embed_dim "
                f"{self.predictor.embed_dim}"
            )
        if self.frameskip < 1:
            raise ValueError(f"frameskip must be >= 1, got {self.frameskip}")
        if self.predictor.action_dim % self.frameskip:
            raise ValueError(
                f"action_dim {self.predictor.action_dim} is not a multiple of frameskip "
                f"{self.frameskip}"
            )

    @property
    def latent_dim(self) -> int:
        """D: the embedding's size (the pixel embedding plus the proprio part, if any)."""
        return self.encoder.embed_dim + (self.proprio_embed if self.proprio_dim else 0)

    @classmethod
    def default(cls, action_dim: int, image_size: int = 64, frameskip: int = 1) -> WorldModelConfig:
        """The CPU-preset architecture for a given action size."""
        return cls(
            EncoderConfig(image_size=image_size),
            PredictorConfig(action_dim=action_dim),
            frameskip=frameskip,
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WorldModelConfig:
        """Inverse of ``to_dict``; unknown or missing keys raise ``ValueError`` naming them."""

        def build(klass: type, values: Any, where: str) -> Any:
            if not isinstance(values, dict):
                raise ValueError(f"model config {where} must be an object, got {values!r}")
            names = {f.name for f in dataclasses.fields(klass)}
            unknown = set(values) - names
            if unknown:
                raise ValueError(f"model config {where} has unknown keys: {sorted(unknown)}")
            return klass(**values)

        if not isinstance(d, dict):
            raise ValueError(f"model config must be an object, got {d!r}")
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"model config has unknown keys: {sorted(unknown)}")
        rest = {k: v for k, v in d.items() if k not in ("encoder", "predictor")}
        return cls(
            encoder=build(EncoderConfig, d.get("encoder"), "encoder"),
            predictor=build(PredictorConfig, d.get("predictor"), "predictor"),
            **rest,
        )


class WorldModel(nn.Module):
    """Encoder + action-conditioned predictor; see the module docstring for the verbs."""

    config_class = WorldModelConfig

    def __init__(self, config: WorldModelConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config.encoder)
        self.predictor = Predictor(config.predictor)
        self.proprio = (
            nn.Sequential(
                nn.BatchNorm1d(config.proprio_dim, affine=False),  # raw units -> unit scale
                nn.Linear(config.proprio_dim, config.proprio_embed),
                nn.BatchNorm1d(config.proprio_embed),
            )
            if config.proprio_dim
            else None
        )

    @property
    def history(self) -> int:
        """k: embeddings the predictor conditions on."""
        return self.config.predictor.history

    @property
    def action_dim(self) -> int:
        """A': the model's action size (raw env action size × frameskip)."""
        return self.config.predictor.action_dim

    @property
    def embed_dim(self) -> int:
        """D: the embedding's size (pixels, plus the proprio part of a proprio model)."""
        return self.config.latent_dim

    @property
    def proprio_dim(self) -> int:
        """P: proprioceptive numbers ``encode`` needs beside the pixels (0: pixels only)."""
        return self.config.proprio_dim

    @property
    def frameskip(self) -> int:
        return self.config.frameskip

    @property
    def image_size(self) -> int:
        return self.config.encoder.image_size

    def encode(self, obs: torch.Tensor, proprio: torch.Tensor | None = None) -> torch.Tensor:
        """Pixels uint8 or float in [0, 255], (..., 3, Hi, Wi) → embeddings (..., D); a proprio
        model also needs ``proprio`` (..., P) in the env's raw units."""
        x, packed = pack([obs], "* c h w")  # (B', 3, Hi, Wi)
        z = self.encoder(x.to(self._device()))  # (B', D_pix)
        if self.proprio is None:
            if proprio is not None:
                raise ValueError("this world model is pixels-only: it takes no proprio")
        else:
            P = self.config.proprio_dim
            if proprio is None:
                raise ValueError(
                    f"this world model was trained with proprioception ({P} numbers beside the "
                    "pixels) and was given pixels only: use a pixels-only checkpoint here "
                    "(proprio models plan and probe: reverie eval | plan | probe)"
                )
            if tuple(proprio.shape) != (*obs.shape[:-3], P):
                raise ValueError(
                    f"proprio must be {(*obs.shape[:-3], P)} for frames {tuple(obs.shape)}, "
                    f"got {tuple(proprio.shape)}"
                )
            p = self.proprio(proprio.reshape(-1, P).to(self._device(), torch.float32))
            z = torch.cat([z, p.to(z.dtype)], dim=-1)  # (B', D_pix + E)
        return unpack(z, packed, "* d")[0]

    def predict(self, z_hist: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Last k embeddings (B, k, D), oldest first, and the current action (B, A') → (B, D)."""
        return self.predictor(z_hist, action)

    def rollout(self, z_context: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Feed predictions back in: context (B, k', D), actions (B, H, A') → (B, H, D).

        Uses the last k context embeddings; a shorter context is left-padded by repeating its
        first embedding (training pads the start of every window the same way).
        """
        B, H, A = actions.shape
        if self.action_dim != A or z_context.shape[::2] != (B, self.embed_dim):
            raise ValueError(
                f"rollout expects z_context (B, k', {self.embed_dim}) and actions "
                f"(B, H, {self.action_dim}); got {tuple(z_context.shape)}, {tuple(actions.shape)}"
            )
        window = pad_history(z_context, self.history)[:, -self.history :]  # (B, k, D)
        mods = self.predictor.condition(actions)  # (B, H, M): the action part, all steps at once
        out = []
        for h in range(H):
            z_next = self.predictor.step(window, mods[:, h])  # (B, D)
            out.append(z_next)
            window = torch.cat([window[:, 1:], z_next[:, None]], dim=1)
        return torch.stack(out, dim=1)  # (B, H, D)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.encode(obs)

    def _device(self) -> torch.device:
        return next(self.parameters()).device


def pad_history(z: torch.Tensor, k: int) -> torch.Tensor:
    """Left-pad (B, T, D) to at least k steps by repeating the first embedding."""
    B, T, D = z.shape
    if T < 1:
        raise ValueError("need at least one context embedding")
    if k <= T:
        return z
    return torch.cat([repeat(z[:, :1], "b 1 d -> b p d", p=k - T), z], dim=1)  # (B, k, D)


def teacher_forcing_pairs(
    z: torch.Tensor, actions: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every one-step prediction a window offers, as one flat batch.

    z (B, T, D) embeddings of frames 0..T-1 and actions (B, T-1, A') where action t leads frame t
    to frame t+1. Returns, for each t in 0..T-2: the history ending at frame t (frames t-k+1..t,
    left-padded by repeating frame 0), action t, and the target frame t+1:
    z_hist (B·(T-1), k, D), action (B·(T-1), A'), target (B·(T-1), D).
    """
    B, T, D = z.shape
    if actions.shape[:2] != (B, T - 1):
        raise ValueError(
            f"actions must be (B, T-1, A) = ({B}, {T - 1}, A) for z of shape {tuple(z.shape)}, "
            f"got {tuple(actions.shape)}"
        )
    padded = torch.cat([repeat(z[:, :1], "b 1 d -> b p d", p=k - 1), z], dim=1)  # (B, T+k-1, D)
    hist = padded.unfold(1, k, 1)[:, : T - 1]  # (B, T-1, D, k): window t ends at frame t
    z_hist = rearrange(hist, "b t d k -> (b t) k d")
    return (
        z_hist,
        rearrange(actions, "b t a -> (b t) a"),
        rearrange(z[:, 1:], "b t d -> (b t) d"),
    )
