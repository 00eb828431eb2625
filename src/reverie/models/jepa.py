"""The JEPA training objective and its held-out scores: what training and adaptation share.

    loss = JEPALoss(model, build_regularizer("sigreg", 256, seed), lam=0.1, rollout=3)
    terms = loss({"obs": obs, "actions": actions}, step)   # {"pred", "rollout", "reg", "loss", "z"}
    scores = heldout_scores(model, val_dataset, windows=512, rollout=3)

Loss = teacher-forced next-embedding MSE (every step of each window predicted from the previous k
embeddings and its action) + rollout MSE (the last ``rollout`` frames predicted autoregressively
from the first ones) + λ·SIGReg over all embeddings of the batch. With ``augment`` every frame is
seen under its own random look first (``reverie.data.augment``: context and target frames drawn
independently, so the look is unpredictable noise), and ``invariance`` > 0 adds the MSE between
the embeddings of two such looks of the same frames. Targets are not stop-gradiented
(as in LeWM: SIGReg keeps the encoder from collapsing); with an ``ema`` encoder they come from that
EMA copy instead. ``reverie.train`` and ``reverie.simreal.adapt`` hand this module to the trainer.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from reverie.data.augment import LookAugment, augment_frames
from reverie.models.sigreg import embedding_health
from reverie.models.world_model import WorldModel, teacher_forcing_pairs


class JEPALoss(nn.Module):
    """World model + regulariser → loss terms; the module DDP wraps (so gradients sync)."""

    def __init__(
        self,
        model: WorldModel,
        regularizer: nn.Module | None,
        lam: float,
        rollout_weight: float,
        rollout: int,
        ema: nn.Module | None = None,
        augment: LookAugment | None = None,
        invariance: float = 0.0,
        seed: int = 0,
        state_head: StateHead | None = None,
        state_aux: float = 0.0,
        recon_decoder: nn.Module | None = None,
        recon: float = 0.0,
    ) -> None:
        super().__init__()
        self.model, self.regularizer, self.ema = model, regularizer, ema
        self.lam, self.rollout_weight, self.rollout = lam, rollout_weight, rollout
        # None or an inactive augmentation: frames reach the encoder untouched (bit-identical).
        self.augment = augment if augment is not None and augment.active else None
        self.invariance, self.seed = invariance, seed
        if invariance > 0 and self.augment is None:
            raise ValueError("an invariance weight needs an augmentation (--augment)")
        self.state_head, self.state_aux = state_head, state_aux
        self.recon_decoder, self.recon = recon_decoder, recon

    def forward(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        obs, actions = batch["obs"], batch["actions"]  # (B, T, 3, Hi, Wi) uint8, (B, T-1, A')
        B, T = obs.shape[:2]
        k, H = self.model.history, self.rollout
        seen = obs
        if self.augment is not None:  # every frame its own look: (B, T, 3, Hi, Wi) float
            seen = augment_frames(obs, self.augment, self.seed, step)
        proprio = batch.get("proprio")  # (B, T, P) for a proprio model
        z = self.model.encode(seen, proprio)  # (B, T, D)
        target = z
        if self.ema is not None:  # EMA target encoder: targets carry no gradient
            with torch.no_grad():
                flat = self.ema(rearrange(obs, "b t c h w -> (b t) c h w"))  # (BT, D)
                target = rearrange(flat, "(b t) d -> b t d", t=T)  # (B, T, D)
        terms: dict[str, torch.Tensor] = {}
        # Teacher forcing: frames t-k+1..t and action t predict frame t+1, for every t.
        z_hist, act, _ = teacher_forcing_pairs(z, actions, k)  # (B(T-1), k, D), (B(T-1), A')
        pred = self.model.predict(z_hist, act)  # (B(T-1), D)
        terms["pred"] = F.mse_loss(
            pred.float(), rearrange(target[:, 1:], "b t d -> (b t) d").float()
        )
        # Rollout: the last H frames from the first T-H, feeding predictions back in.
        if self.rollout_weight > 0 and H > 1:
            future = self.model.rollout(z[:, : T - H], actions[:, T - H - 1 :])  # (B, H, D)
            terms["rollout"] = F.mse_loss(future.float(), target[:, T - H :].float())
        if self.regularizer is not None:
            terms["reg"] = self.regularizer(rearrange(z, "b t d -> (b t) d"), step)
        if self.invariance > 0:  # a second look of the same frames must embed the same
            assert self.augment is not None
            other = augment_frames(obs, self.augment, self.seed, step, salt=1)
            terms["invariance"] = F.mse_loss(z.float(), self.model.encode(other, proprio).float())
        if self.state_head is not None:  # privileged labels: the pose read out of the pixel part
            pixel = z[..., : self.model.config.encoder.embed_dim]  # (B, T, D_pix)
            terms["state"] = F.mse_loss(
                self.state_head(pixel.float()), self.state_head.targets(batch["states"])
            )
        if self.recon_decoder is not None:  # redraw each frame from its pixel embedding
            pixel = rearrange(z[..., : self.model.config.encoder.embed_dim], "b t d -> (b t) d")
            drawn = self.recon_decoder(pixel.float())  # (BT, 3, s, s) in [0, 1]
            frames = rearrange(obs, "b t c h w -> (b t) c h w").float() / 255.0
            if frames.shape[-1] != drawn.shape[-1]:
                frames = F.interpolate(frames, size=drawn.shape[-2:], mode="area")
            terms["recon"] = F.mse_loss(drawn, frames)
        terms["loss"] = (
            terms["pred"]
            + self.rollout_weight * terms.get("rollout", 0.0)
            + self.lam * terms.get("reg", 0.0)
            + self.invariance * terms.get("invariance", 0.0)
            + self.state_aux * terms.get("state", 0.0)
            + self.recon * terms.get("recon", 0.0)
        )
        terms["z"] = z.detach()
        return terms


class StateHead(nn.Module):
    """Linear read-out from the pixel embedding to the env's pose (``--state-aux``, training only).

    Targets: the state entries one frame shows (rates such as velocities left out), angles as
    sin and cos, each standardised by the training data's mean and std (buffers, so a resumed
    run reads out the same targets)."""

    def __init__(self, states: torch.Tensor, env: str | None, embed_dim: int) -> None:
        super().__init__()
        from reverie.probe import ANGLES, RATES, STATE_NAMES

        S = states.shape[-1]
        names = list(STATE_NAMES.get(env or "", ()))
        names = names if len(names) == S else [f"s{i}" for i in range(S)]
        rates, angles = RATES.get(env or "", ()), ANGLES.get(env or "", ())
        self.keep = [i for i, n in enumerate(names) if n not in rates and n not in angles]
        self.wrap = [i for i, n in enumerate(names) if n in angles]
        self.names = [names[i] for i in self.keep]
        self.names += [f"{names[i]}_{f}" for i in self.wrap for f in ("sin", "cos")]
        raw = self._features(states.double())  # (F, V)
        self.register_buffer("mean", raw.mean(0).float())
        self.register_buffer("std", raw.std(0).clamp_min(1e-6).float())
        self.linear = nn.Linear(embed_dim, len(self.names))

    def _features(self, states: torch.Tensor) -> torch.Tensor:
        cols = [states[..., self.keep]]
        for i in self.wrap:
            cols += [torch.sin(states[..., i : i + 1]), torch.cos(states[..., i : i + 1])]
        return torch.cat(cols, dim=-1)

    def targets(self, states: torch.Tensor) -> torch.Tensor:
        """(..., S) true states -> (..., V) standardised pose targets."""
        feats = self._features(states.to(self.mean.device).double()).float()
        return (feats - self.mean) / self.std

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.linear(z)


def batch_health(terms: dict[str, torch.Tensor]) -> dict[str, float]:
    """Embedding health of a training batch (logged beside the loss terms)."""
    health = embedding_health(rearrange(terms["z"], "b t d -> (b t) d"))
    return {f"health/{k}": v for k, v in health.items()}


@torch.no_grad()
def heldout_scores(model: WorldModel, ds: Any, windows: int, rollout: int) -> dict[str, float]:
    """Held-out scores in eval mode: one-step MSE vs copy-last baseline, rollout MSE, health."""
    was_training = model.training
    model.eval()
    idx = torch.linspace(0, len(ds) - 1, min(windows, len(ds))).round().long()
    out: dict[str, list[torch.Tensor]] = {"z": [], "pred": [], "copy": [], "rollout": []}
    device = next(model.parameters()).device
    for chunk in idx.split(128):
        batch = ds.get_batch(chunk)
        proprio = batch.get("proprio")
        z = model.encode(batch["obs"].to(device), proprio).float()  # (B, T, D)
        actions = batch["actions"].to(z.device)
        z_hist, act, target = teacher_forcing_pairs(z, actions, model.history)
        out["pred"].append(((model.predict(z_hist, act) - target) ** 2).mean(1))
        out["copy"].append(((z_hist[:, -1] - target) ** 2).mean(1))
        if rollout >= 1:
            T = z.shape[1]
            future = model.rollout(z[:, : T - rollout], actions[:, T - rollout - 1 :])
            out["rollout"].append(((future - z[:, T - rollout :]) ** 2).mean((1, 2)))
        out["z"].append(rearrange(z, "b t d -> (b t) d"))
    model.train(was_training)
    scores = {f"val/{k}_mse": float(torch.cat(v).mean()) for k, v in out.items() if k != "z" and v}
    health = embedding_health(torch.cat(out["z"]))
    scores.update({f"val/{k}": v for k, v in health.items()})
    return scores
