"""ONNX export of a trained world model (and its decoder and policy): ``reverie export``.

    reverie export --checkpoint runs/tworoom --out runs/tworoom-onnx \
        [--policy-run runs/tworoom/policy]

writes into OUT (a new directory; ``--overwrite`` replaces one):

    encoder.onnx    obs uint8 (B, 3, Hi, Wi) RGB, channels first -> z (B, D); the graph normalises
    predictor.onnx  z_hist (B, k, D) oldest first, action (B, A') -> z_next (B, D): one step
    rollout.onnx    z_context (B, k, D), actions (B, H, A') -> z (B, H, D): H fixed (--horizon)
    decoder.onnx    z (B, D) -> image float (B, 3, Hi, Wi) in [0, 1]   (when the run has one)
    policy.onnx     z_hist (B, k, D), z_goal (B, D) -> action (B, A')  (with --policy-run)
    export.json     image size, pixel normalisation, action bounds, frameskip, history k,
                    embedding size, opset, versions, the checkpoint's sha256, each graph's inputs
                    and outputs, and the largest |onnxruntime - torch| difference measured on
                    random inputs at a batch size other than the one traced

Every graph has a dynamic batch axis. Nothing random lives inside a graph: a planner built on
these (CEM) draws its noise outside and feeds candidates in. An action block A' is ``frameskip``
raw env actions concatenated in time order; run them one per env step. Needs the ``export``
extra (``pip install 'reverie[export]'``: onnx, onnxruntime).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from reverie.io import ReverieError, atomic_write_json, sha256_file

EXTRA_HINT = (
    "ONNX export needs the 'export' extra: pip install 'reverie[export]' (onnx, onnxruntime)"
)
PARITY_ATOL = 1e-4


@dataclass(frozen=True)
class ExportConfig:
    """Export a checkpoint's modules to ONNX (see the module docstring for the files)."""

    checkpoint: Path
    """Run directory of the trained world model."""
    out: Path
    """Directory to write (refused if it exists, unless --overwrite)."""
    policy_run: Path | None = None
    """A policy run for this checkpoint (``reverie policy train``) to export as policy.onnx."""
    horizon: int = 5
    """H of rollout.onnx (the planning horizon the graph unrolls)."""
    opset: int = 17
    """ONNX opset version."""
    overwrite: bool = False
    """Replace an existing --out directory."""
    check: bool = True
    """Run each graph in onnxruntime and record its largest difference from torch."""

    def __post_init__(self) -> None:
        if self.checkpoint is None or self.out is None:
            raise ValueError("--checkpoint RUN and --out DIR are required")
        for name in ("checkpoint", "out", "policy_run"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, Path(getattr(self, name)))
        if not isinstance(self.horizon, int) or self.horizon < 1:
            raise ValueError(f"--horizon must be an integer >= 1, got {self.horizon}")
        if not 13 <= self.opset <= 21:
            raise ValueError(f"--opset must be in [13, 21], got {self.opset}")


def require_onnx() -> tuple[Any, Any]:
    """(onnx, onnxruntime), or a one-line error naming the extra."""
    try:
        import onnx
        import onnxruntime
    except ImportError:
        raise ReverieError(EXTRA_HINT) from None
    return onnx, onnxruntime


# ------------------------------------------------------------------------------------- graphs
class EncoderGraph(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.model.encode(obs)


class PredictorGraph(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, z_hist: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.model.predict(z_hist, action)


class RolloutGraph(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, z_context: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.model.rollout(z_context, actions)


class PolicyGraph(nn.Module):
    def __init__(self, policy: nn.Module) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, z_hist: torch.Tensor, z_goal: torch.Tensor) -> torch.Tensor:
        return self.policy(z_hist, z_goal)


@dataclass
class Graph:
    """One graph to export: the module, example inputs (batch 2) and a check batch (3)."""

    name: str
    module: nn.Module
    inputs: dict[str, torch.Tensor]
    check: dict[str, torch.Tensor]
    output: str


def _example(shape: tuple[int, ...], gen: torch.Generator, kind: str = "z") -> torch.Tensor:
    if kind == "obs":
        return torch.randint(0, 256, shape, generator=gen, dtype=torch.uint8)
    if kind == "action":
        return torch.rand(shape, generator=gen) * 2 - 1
    return torch.randn(shape, generator=gen)


def graphs(
    model: Any, decoder: nn.Module | None, policy: nn.Module | None, horizon: int
) -> list[Graph]:
    """The graphs a checkpoint exports, with example and check inputs of the right shapes."""
    gen = torch.Generator().manual_seed(0)
    s, k, D, A = model.image_size, model.history, model.embed_dim, model.action_dim

    def both(**shapes: tuple[tuple[int, ...], str]) -> tuple[dict, dict]:
        first = {n: _example((2, *shape), gen, kind) for n, (shape, kind) in shapes.items()}
        second = {n: _example((3, *shape), gen, kind) for n, (shape, kind) in shapes.items()}
        return first, second

    out = [
        Graph("encoder", EncoderGraph(model), *both(obs=((3, s, s), "obs")), "z"),
        Graph(
            "predictor",
            PredictorGraph(model),
            *both(z_hist=((k, D), "z"), action=((A,), "action")),
            "z_next",
        ),
        Graph(
            "rollout",
            RolloutGraph(model),
            *both(z_context=((k, D), "z"), actions=((horizon, A), "action")),
            "z",
        ),
    ]
    if decoder is not None:
        out.append(Graph("decoder", decoder, *both(z=((D,), "z")), "image"))
    if policy is not None:
        inputs = both(z_hist=((k, D), "z"), z_goal=((D,), "z"))
        out.append(Graph("policy", PolicyGraph(policy), *inputs, "action"))
    return out


def export_graph(graph: Graph, path: Path, opset: int) -> None:
    """Trace ``graph.module`` (in eval mode) to ONNX at ``path`` with a dynamic batch axis."""
    names = list(graph.inputs)
    axes = {n: {0: "batch"} for n in [*names, graph.output]}
    module = graph.module.eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer notes about Python-side shape checks
        torch.onnx.export(
            module,
            tuple(graph.inputs.values()),
            str(path),
            input_names=names,
            output_names=[graph.output],
            dynamic_axes=axes,
            opset_version=opset,
            dynamo=False,
        )
    module.eval()  # the exporter restores the wrapper's (training) mode: keep everything eval


def parity(graph: Graph, path: Path) -> float:
    """Largest |onnxruntime - torch| on the check inputs (a batch size not traced)."""
    _, ort = require_onnx()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {n: v.numpy() for n, v in graph.check.items()})[0]
    with torch.no_grad():
        want = graph.module.eval()(*graph.check.values()).float().numpy()
    if got.shape != want.shape:
        raise ReverieError(f"{path.name}: onnxruntime gave {got.shape}, torch {want.shape}")
    return float(np.abs(got - want).max())


def _describe(graph: Graph) -> dict[str, Any]:
    def spec(t: torch.Tensor) -> dict[str, Any]:
        return {"shape": ["batch", *t.shape[1:]], "dtype": str(t.dtype).removeprefix("torch.")}

    with torch.no_grad():
        y = graph.module.eval()(*graph.inputs.values())
    return {
        "inputs": {n: spec(v) for n, v in graph.inputs.items()},
        "outputs": {graph.output: spec(y.float())},
    }


def export(cfg: ExportConfig) -> dict[str, Any]:
    """Write the ONNX bundle for ``cfg.checkpoint``; returns export.json's content (plus out)."""
    onnx, ort = require_onnx()
    from reverie.checkpoint import load_checkpoint
    from reverie.models.decoder import load_decoder
    from reverie.policies import load_policy

    if cfg.out.exists() and not cfg.overwrite:
        raise ReverieError(f"{cfg.out} exists: pass --overwrite to replace it, or another --out")
    model, meta = load_checkpoint(cfg.checkpoint)
    model.requires_grad_(False).eval()
    skipped: dict[str, str] = {}
    try:
        decoder, _ = load_decoder(cfg.checkpoint)
        decoder.requires_grad_(False).eval()
    except ReverieError as e:
        decoder, skipped["decoder.onnx"] = None, str(e)
    policy, policy_meta = None, {}
    if cfg.policy_run is not None:
        policy, policy_meta = load_policy(cfg.policy_run, meta)
        policy.requires_grad_(False)
    else:
        skipped["policy.onnx"] = "no --policy-run given"

    todo = graphs(model, decoder, policy, cfg.horizon)
    cfg.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{cfg.out.name}.", dir=cfg.out.parent))
    try:
        files, errors, described = {}, {}, {}
        for graph in todo:
            path = tmp / f"{graph.name}.onnx"
            export_graph(graph, path, cfg.opset)
            onnx.checker.check_model(str(path))
            if cfg.check:
                errors[path.name] = parity(graph, path)
            files[path.name] = sha256_file(path)
            described[path.name] = _describe(graph)
        action_space = meta.get("action_space") or {}
        info: dict[str, Any] = {
            "format": "reverie-onnx-export",
            "format_version": 1,
            "env": meta.get("env"),
            "checkpoint": str(cfg.checkpoint),
            "checkpoint_sha256": (meta.get("files") or {}).get("model.safetensors"),
            "checkpoint_step": meta.get("step"),
            "image_size": model.image_size,
            "pixels": "uint8 RGB, (B, 3, Hi, Wi) channels first; encoder.onnx normalises "
            "(x / 255 - 0.5) / 0.25 itself",
            "embed_dim": model.embed_dim,
            "history": model.history,
            "frameskip": model.frameskip,
            "action_dim": model.action_dim,
            "raw_action_dim": model.action_dim // model.frameskip,
            "action_block": "A' = frameskip raw actions concatenated in time order",
            "action_low": action_space.get("low"),
            "action_high": action_space.get("high"),
            "rollout_horizon": cfg.horizon,
            "opset": cfg.opset,
            "versions": _versions(onnx, ort),
            "graphs": described,
            "files": files,
            "skipped": skipped,
            "max_abs_error": errors,
        }
        if policy is not None:
            info["policy"] = {"run": str(cfg.policy_run), "method": policy_meta.get("method")}
        bad = {k: v for k, v in errors.items() if not v <= PARITY_ATOL}
        if bad:
            raise ReverieError(f"ONNX output differs from torch beyond {PARITY_ATOL}: {bad}")
        atomic_write_json(tmp / "export.json", info)
        _replace_dir(tmp, cfg.out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return {**info, "out": str(cfg.out)}


def _versions(onnx: Any, ort: Any) -> dict[str, str]:
    import reverie

    return {
        "reverie": reverie.__version__,
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": ort.__version__,
    }


def _replace_dir(new: Path, out: Path) -> None:
    """Move the finished bundle into place; an old one (overwrite) is moved aside first, so a
    crash leaves either the old bundle or the new one under ``out``."""
    if not out.exists():
        os.replace(new, out)
        return
    old = out.with_name(f".{out.name}.old")
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(old)
    os.replace(out, old)
    os.replace(new, out)
    shutil.rmtree(old, ignore_errors=True)


def load_export(folder: str | Path) -> dict[str, Any]:
    """export.json of an exported bundle (one-line error when missing or not one)."""
    path = Path(folder) / "export.json"
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ReverieError(f"{path}: not a reverie ONNX export ({e})") from None
    if not isinstance(info, dict) or info.get("format") != "reverie-onnx-export":
        raise ReverieError(f"{path}: not a reverie ONNX export")
    return info
