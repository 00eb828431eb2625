"""Issue 12's model levers: the grid latent and proprioception (input, planning cost, refusals)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from reverie.envs import make
from reverie.io import ReverieError
from reverie.models.encoder import Encoder, EncoderConfig
from reverie.models.predictor import PredictorConfig
from reverie.models.world_model import WorldModel, WorldModelConfig
from reverie.planning.mpc import LatentGoalFactory, PlanContext, proprio_for

TINY = dict(channels=(8, 8, 8, 8), embed_dim=32)


def proprio_model(P: int = 4, E: int = 8) -> WorldModel:
    torch.manual_seed(0)
    cfg = WorldModelConfig(
        EncoderConfig(**TINY),
        PredictorConfig(embed_dim=32 + E, action_dim=10, hidden=16, depth=1, cond_dim=8),
        frameskip=5,
        proprio_dim=P,
        proprio_embed=E,
    )
    return WorldModel(cfg).eval()


# ---------------------------------------------------------------------------------- grid latent
def test_grid_latent_keeps_each_cell_local() -> None:
    """A change in the image's top-left corner moves the top-left cells of a grid latent and
    leaves the bottom-right cell alone; the vector latent mixes it into every dimension."""
    torch.manual_seed(0)
    frames = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    changed = frames.clone()
    changed[:, :, :8, :8] = 255 - changed[:, :, :8, :8]
    for latent, local in (("grid", True), ("vector", False)):
        enc = Encoder(EncoderConfig(latent=latent, **TINY)).eval()
        with torch.no_grad():
            diff = (enc(frames) - enc(changed)).abs()  # (2, 32)
        cells = diff.reshape(2, 4, 4, 2)  # (h w g): cell-major
        assert cells[:, 0, 0].max() > 1e-3
        assert bool(cells[:, 3, 3].max() < 1e-6) is local, latent


def test_grid_latent_refuses_bad_sizes() -> None:
    with pytest.raises(ValueError, match="multiple of 16"):
        EncoderConfig(latent="grid", embed_dim=40)
    with pytest.raises(ValueError, match="grid latent needs the cnn"):
        EncoderConfig(kind="vit", latent="grid", embed_dim=64)
    with pytest.raises(ValueError, match="latent must be one of"):
        EncoderConfig(latent="slots")


# ---------------------------------------------------------------------------------- proprio
def test_proprio_model_encodes_pixels_and_proprio() -> None:
    model = proprio_model()
    obs = torch.randint(0, 256, (3, 2, 3, 64, 64), dtype=torch.uint8)
    p = torch.randn(3, 2, 4) * 100
    z = model.encode(obs, p)
    assert z.shape == (3, 2, 40) and model.embed_dim == 40
    q = p.clone()
    q[0, 0, 0] += 300.0  # the agent moved: only that frame's proprio part changes
    dz = (model.encode(obs, q) - z).abs()
    assert dz[0, 0, 32:].max() > 1e-3 and dz[..., :32].max() == 0 and dz[1:].max() == 0
    with pytest.raises(ValueError, match="trained with proprioception"):
        model.encode(obs)
    with pytest.raises(ValueError, match="proprio must be"):
        model.encode(obs, p[..., :3])
    pixels_only = WorldModel(WorldModelConfig.default(action_dim=2))
    with pytest.raises(ValueError, match="pixels-only"):
        pixels_only.encode(obs[0], p[0])


def test_proprio_config_checks_and_old_configs_load() -> None:
    with pytest.raises(ValueError, match=r"\+ proprio_embed 16"):
        WorldModelConfig(EncoderConfig(), PredictorConfig(embed_dim=64), proprio_dim=4)
    d = WorldModelConfig.default(action_dim=2).to_dict()
    del d["proprio_dim"], d["proprio_embed"]  # a checkpoint from before the option
    del d["encoder"]["latent"]
    cfg = WorldModelConfig.from_dict(d)
    assert cfg.proprio_dim == 0 and cfg.encoder.latent == "vector"


def test_envs_name_their_proprio_entries() -> None:
    pusht = make("pusht")
    pusht.reset(seed=0)
    assert pusht.proprio_indices(10) == (0, 1, 2, 3)
    table = make("tabletop")
    table.reset(seed=0)
    state = table.get_state()
    idx = table.proprio_indices(len(state))
    assert len(idx) == len(table.proprio_names) == 4
    np.testing.assert_allclose(state[list(idx[:2])], table.pusher_position(state)[:2])
    for name in ("tworoom", "reacher"):
        assert make(name).proprio_indices(4) == ()
    with pytest.raises(ValueError, match="4 \\+ 13 K"):
        table.proprio_indices(31)


def test_proprio_checkpoint_refuses_env_without_proprio() -> None:
    model = proprio_model()
    assert proprio_for(model, make("pusht")) == (0, 1, 2, 3)
    tworoom = make("tworoom")
    tworoom.reset(seed=0)
    with pytest.raises(ReverieError, match="tworoom senses none"):
        proprio_for(model, tworoom)
    with pytest.raises(ValueError, match="needs proprio="):
        LatentGoalFactory(model)


def test_proprio_goal_cost_sees_the_goal_pusher() -> None:
    """The planner's goal embedding takes the goal state's pusher: two goals with the same image
    but the pusher elsewhere give different goal embeddings (and a goal image alone is refused)."""
    model = proprio_model()
    env = make("pusht")
    env.reset(seed=0)
    state = env.get_state()
    frame = env.render()
    factory = LatentGoalFactory(model, proprio=(0, 1, 2, 3))
    goal = state.copy()
    ctx = PlanContext([frame], state, goal, frame, 0, states=[state])
    moved = goal.copy()
    moved[:2] += 100.0
    z1 = factory(ctx).z_goal
    z2 = factory(PlanContext([frame], state, moved, frame, 0, states=[state])).z_goal
    assert (z1 - z2)[:, 32:].abs().max() > 1e-3 and (z1 - z2)[:, :32].abs().max() == 0
    with pytest.raises(ValueError, match="goal state"):
        factory(PlanContext([frame], state, None, frame, 0, states=[state]))


def test_train_proprio_on_tworoom_is_one_line(tworoom_data: Path, tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "reverie", "train", "--data", str(tworoom_data)]
    cmd += ["--out", str(tmp_path / "run"), "--preset", "tiny", "--steps", "2", "--proprio"]
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 1
    assert out.stderr.strip().count("\n") == 0 and "no proprioception" in out.stderr
    assert not (tmp_path / "run").exists()
