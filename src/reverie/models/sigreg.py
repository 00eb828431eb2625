"""Anti-collapse regularisers (SIGReg, VICReg) and embedding-health diagnostics.

SIGReg (LeJEPA, Balestriero & LeCun, arXiv 2511.08544) pushes the distribution of embeddings toward
an isotropic Gaussian by testing random 1-D projections of the batch against N(0, 1):

    SIGReg(Z) = mean over M random unit directions u of  EP(Z u),
    EP(x)     = N · ∫ w(t) |φ_N(t) − exp(−t²/2)|² dt,   φ_N(t) = (1/N) Σ_n exp(i t x_n),
    w(t)      = exp(−t²/2),

the Epps–Pulley statistic (trapezoid rule on ``knots`` points of [0, t_max], doubled because the
integrand is even in t). Directions are drawn afresh every step from a generator seeded by the
step, so every DDP rank draws the same ones. Under DDP the empirical characteristic function is
computed over the *global* batch: ranks all-reduce (differentiably) their sums of cos(t x) and
sin(t x) and their counts, so 2 ranks give exactly the value of 1 process on the joined batch.

    from reverie.models.sigreg import SIGReg, embedding_health
    reg = SIGReg(num_directions=256)
    loss = reg(z, step)               # z (N, D) -> scalar; ≈1 on N(0, I) samples, ∝ N if collapsed
    embedding_health(z)               # {"std_mean", "std_min", "eff_rank"}
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

REGULARIZERS = ("sigreg", "vicreg", "ema")


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def global_sum(x: torch.Tensor) -> torch.Tensor:
    """Sum ``x`` over all DDP ranks, differentiably (identity in a single process).

    The backward all-reduces the gradient too, so each rank's inputs receive world_size × their
    true gradient; DDP's gradient averaging divides that back out.
    """
    if not _distributed():
        return x
    return _AllReduceSum.apply(x)


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks; the gradient of a sum is the summed gradient, so backward all-reduces too.

    Our own Function rather than ``torch.distributed.nn.functional.all_reduce``, which is deprecated
    and whose autograd node left gloo processes aborting at exit ("terminate called without an
    active exception") about one run in four.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        out = x.detach().clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        grad = grad.detach().clone().contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad


def _as_fp32(z: torch.Tensor) -> torch.Tensor:
    # Characteristic functions average many cosines: keep them out of bf16 autocast.
    if z.ndim != 2:
        raise ValueError(f"expected embeddings (N, D), got shape {tuple(z.shape)}")
    return z.float()


class SIGReg(nn.Module):
    """Sketched isotropic Gaussian regulariser: (N, D) embeddings → scalar (see module doc)."""

    def __init__(
        self, num_directions: int = 256, knots: int = 17, t_max: float = 3.0, seed: int = 0
    ) -> None:
        super().__init__()
        if num_directions < 1 or knots < 2 or t_max <= 0:
            raise ValueError(
                f"need num_directions >= 1, knots >= 2, t_max > 0; got {num_directions}, {knots}, "
                f"{t_max}"
            )
        self.num_directions, self.seed = num_directions, seed
        t = torch.linspace(0.0, t_max, knots)  # (K,)
        dt = t_max / (knots - 1)
        weights = torch.full((knots,), 2 * dt)  # trapezoid on [0, t_max], doubled for [-t_max, 0]
        weights[[0, -1]] = dt
        self.register_buffer("t", t, persistent=False)
        self.register_buffer("phi", torch.exp(-0.5 * t**2), persistent=False)  # N(0,1) char. fn
        self.register_buffer("weights", weights * torch.exp(-0.5 * t**2), persistent=False)

    def directions(self, dim: int, step: int) -> torch.Tensor:
        """(D, M) unit directions, identical on every rank for a given step."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + int(step))
        a = torch.randn(dim, self.num_directions, generator=g)
        return (a / a.norm(dim=0, keepdim=True)).to(self.t.device)

    def forward(self, z: torch.Tensor, step: int) -> torch.Tensor:
        with torch.autocast(z.device.type, enabled=False):
            z = _as_fp32(z)
            x = z @ self.directions(z.shape[1], step)  # (N, M) projections
            xt = x.unsqueeze(-1) * self.t  # (N, M, K)
            n = torch.tensor(float(x.shape[0]), device=z.device)
            # One all-reduce for both sums and the count: [2, M, K] + [1].
            sums = global_sum(torch.stack([xt.cos().sum(0), xt.sin().sum(0)]))  # (2, M, K)
            n = global_sum(n)
            err = (sums[0] / n - self.phi) ** 2 + (sums[1] / n) ** 2  # (M, K) |φ_N − φ_0|²
            return ((err @ self.weights) * n).mean()


def epps_pulley(x: torch.Tensor, knots: int = 17, t_max: float = 3.0) -> torch.Tensor:
    """Epps–Pulley statistic of each column of ``x`` (N, M) against N(0, 1) → (M,). Local only."""
    reg = SIGReg(1, knots, t_max).to(x.device)
    xt = x.float().unsqueeze(-1) * reg.t  # (N, M, K)
    err = (xt.cos().mean(0) - reg.phi) ** 2 + xt.sin().mean(0) ** 2
    return (err @ reg.weights) * x.shape[0]


class VICReg(nn.Module):
    """VICReg's variance + covariance terms over the global batch (the invariance term is the
    prediction loss). Weighted 1 : 1/25 as in the paper's μ = 25, ν = 1."""

    def __init__(self, cov_weight: float = 1 / 25, eps: float = 1e-4) -> None:
        super().__init__()
        self.cov_weight, self.eps = cov_weight, eps

    def forward(self, z: torch.Tensor, step: int = 0) -> torch.Tensor:
        with torch.autocast(z.device.type, enabled=False):
            z = _as_fp32(z)
            D = z.shape[1]
            n = global_sum(torch.tensor(float(z.shape[0]), device=z.device))
            s1 = global_sum(z.sum(0))  # (D,)
            s2 = global_sum(z.T @ z)  # (D, D)
            mean = s1 / n
            cov = (s2 - n * torch.outer(mean, mean)) / (n - 1).clamp(min=1)  # (D, D)
            std = torch.sqrt(torch.diagonal(cov).clamp(min=0) + self.eps)
            off = cov - torch.diag(torch.diagonal(cov))
            return torch.relu(1 - std).mean() + self.cov_weight * (off**2).sum() / D


def build_regularizer(name: str, num_directions: int = 256, seed: int = 0) -> nn.Module | None:
    """sigreg → SIGReg, vicreg → VICReg, ema → None (the EMA target encoder is the mechanism)."""
    if name not in REGULARIZERS:
        raise ValueError(f"regularizer must be one of {REGULARIZERS}, got {name!r}")
    if name == "sigreg":
        return SIGReg(num_directions=num_directions, seed=seed)
    if name == "vicreg":
        return VICReg()
    return None


@torch.no_grad()
def embedding_health(z: torch.Tensor) -> dict[str, float]:
    """Collapse diagnostics of embeddings (N, D): per-dimension std (mean and min over D) and the
    effective rank exp(H(σ / Σσ)) of the centred batch (Roy & Vetterli; D when isotropic, 1 when
    all variation lies on one line, 0 for a constant)."""
    z = _as_fp32(z)
    std = z.std(dim=0)  # (D,)
    centred = z - z.mean(dim=0)
    sv = torch.linalg.svdvals(centred)  # (min(N, D),)
    total = float(sv.sum())
    # A constant batch leaves only rounding noise after centring: call its rank 0, not noise's.
    if float(centred.norm()) <= 1e-5 * float(z.norm()) or total == 0.0:
        eff_rank = 0.0
    else:
        p = sv / total
        eff_rank = float(torch.exp(-(p * torch.log(p.clamp(min=1e-12))).sum()))
    return {"std_mean": float(std.mean()), "std_min": float(std.min()), "eff_rank": eff_rank}


def collapse_problems(
    health: dict[str, float], embed_dim: int, min_std: float = 0.05, min_rank: float = 1.5
) -> list[str]:
    """What looks collapsed in ``embedding_health`` output (empty list: healthy).

    Collapse is a (near-)constant embedding or one whose variation lies on a single line. The
    rank floor is absolute, not a fraction of D: a faithful embedding of a world with a few
    degrees of freedom is low-rank by nature (Two-Room's agent position is 2-D, and its light
    SIGReg weight lets the embedding keep that shape: effective rank 2-4 of 64).
    """
    problems = []
    if health["std_mean"] < min_std:
        problems.append(f"mean per-dimension std {health['std_mean']:.3g} < {min_std}")
    if health["eff_rank"] < min(min_rank, embed_dim):
        problems.append(f"effective rank {health['eff_rank']:.3g} < {min_rank:.3g}")
    return problems
