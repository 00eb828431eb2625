"""Checkpoints: weights in safetensors, everything else in JSON; the only way a model comes back.

A run directory holds the latest checkpoint:

    RUN/
      config.json              format version, package version, model config, env, dataset
                               manifest hash, step, metrics, sha256 of the files below
      model.safetensors        WorldModel weights (and BatchNorm statistics)
      train_state.safetensors  optimizer / EMA / RNG tensors for --resume; the non-tensor part of
                               that state is JSON in the file's metadata (never pickle)

    from reverie.checkpoint import load_checkpoint
    model, meta = load_checkpoint("runs/tworoom")   # eval mode; meta is config.json as a dict

Saving writes every file to a temporary name first, then renames them in order (train state, model,
config.json last), so a crash leaves the previous checkpoint whole; config.json records the sha256
of the others, so a truncated, corrupt or mismatched file is refused with a one-line error. Old
checkpoints are patched forward on load by ``UPGRADES`` hooks keyed on ``format_version``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import reverie
from reverie.io import ReverieError, atomic_path, read_json
from reverie.models.world_model import WorldModel, WorldModelConfig

FORMAT_VERSION = 1
KIND = "reverie-world-model"
CONFIG_FILE = "config.json"
MODEL_FILE = "model.safetensors"
STATE_FILE = "train_state.safetensors"

#: format_version v -> function turning a v config.json dict into a v+1 one (run in sequence).
UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _run_dir(path: str | Path) -> Path:
    path = Path(path)
    return path.parent if path.is_file() else path


def has_checkpoint(run_dir: str | Path) -> bool:
    return (_run_dir(run_dir) / CONFIG_FILE).is_file()


# --------------------------------------------------------------------------- nested state <-> JSON
def flatten_state(obj: Any, prefix: str = "") -> tuple[dict[str, torch.Tensor], Any]:
    """Split a nested state (dicts, lists, tuples, tensors, scalars) into tensors + a JSON skeleton.

    Used for optimizer state dicts (int keys, tuples of betas) so resume needs no pickle.
    """
    tensors: dict[str, torch.Tensor] = {}

    def encode(x: Any, key: str) -> Any:
        if isinstance(x, torch.Tensor):
            # A contiguous snapshot, never a view of live state (channels_last would not save).
            tensors[key] = x.detach().cpu().clone(memory_format=torch.contiguous_format)
            return {"__tensor__": key}
        if isinstance(x, dict):
            if all(isinstance(k, str) for k in x):
                return {"__dict__": {k: encode(v, f"{key}.{k}") for k, v in x.items()}}
            if all(isinstance(k, int) for k in x):
                return {"__int_dict__": {str(k): encode(v, f"{key}.{k}") for k, v in x.items()}}
            raise TypeError(f"cannot store dict with mixed key types at {key!r}")
        if isinstance(x, (list, tuple)):
            items = [encode(v, f"{key}.{i}") for i, v in enumerate(x)]
            return {"__tuple__": items} if isinstance(x, tuple) else items
        if x is None or isinstance(x, (bool, int, float, str)):
            return x
        raise TypeError(f"cannot store {type(x).__name__} at {key!r} in a checkpoint")

    return tensors, encode(obj, prefix or "state")


def unflatten_state(tensors: dict[str, torch.Tensor], skeleton: Any) -> Any:
    """Inverse of ``flatten_state``."""

    def decode(x: Any) -> Any:
        if isinstance(x, list):
            return [decode(v) for v in x]
        if isinstance(x, dict):
            if "__tensor__" in x:
                return tensors[x["__tensor__"]]
            if "__tuple__" in x:
                return tuple(decode(v) for v in x["__tuple__"])
            if "__int_dict__" in x:
                return {int(k): decode(v) for k, v in x["__int_dict__"].items()}
            return {k: decode(v) for k, v in x["__dict__"].items()}
        return x

    return decode(skeleton)


# ----------------------------------------------------------------------------------------- save
def save_checkpoint(
    run_dir: str | Path,
    model: WorldModel,
    *,
    step: int,
    metrics: dict[str, float] | None = None,
    env_name: str | None = None,
    manifest_hash: str | None = None,
    extra: dict[str, Any] | None = None,
    train_state: Any = None,
) -> Path:
    """Write the checkpoint of ``model`` at ``step`` into ``run_dir`` (atomically; see module doc).

    ``extra`` adds JSON keys to config.json (training config, data description, ...).
    ``train_state`` is any nested state ``flatten_state`` accepts; ``load_train_state`` returns it.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "kind": KIND,
        "reverie_version": reverie.__version__,
        "torch_version": torch.__version__,
        "model": model.config.to_dict(),
        "env": env_name,
        "manifest_hash": manifest_hash,
        "step": int(step),
        "metrics": dict(metrics or {}),
        **(extra or {}),
    }
    tag = {"format_version": str(FORMAT_VERSION), "step": str(step)}
    with contextlib.ExitStack() as stack:
        # Entered in reverse so the renames on exit run: train state, model, config.json.
        cfg_tmp = stack.enter_context(atomic_path(run_dir / CONFIG_FILE))
        model_tmp = stack.enter_context(atomic_path(run_dir / MODEL_FILE))
        files = {}
        if train_state is not None:
            state_tmp = stack.enter_context(atomic_path(run_dir / STATE_FILE))
            tensors, skeleton = flatten_state(train_state)
            save_file(tensors, state_tmp, metadata={**tag, "state_json": json.dumps(skeleton)})
            files[STATE_FILE] = _sha256(state_tmp)
        save_file(weights, model_tmp, metadata=tag)
        files[MODEL_FILE] = _sha256(model_tmp)
        meta["files"] = files
        cfg_tmp.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return run_dir


# ----------------------------------------------------------------------------------------- load
def read_meta(run_dir: str | Path) -> dict[str, Any]:
    """config.json of a checkpoint, validated and upgraded to the current format."""
    run_dir = _run_dir(run_dir)
    if not run_dir.exists():
        raise ReverieError(f"checkpoint not found: {run_dir}")
    meta = read_json(run_dir / CONFIG_FILE, "checkpoint config")
    if not isinstance(meta, dict) or meta.get("kind") != KIND:
        raise ReverieError(f"{run_dir / CONFIG_FILE} is not a reverie world-model checkpoint")
    version = meta.get("format_version")
    if not isinstance(version, int):
        raise ReverieError(f"{run_dir / CONFIG_FILE} has no integer format_version")
    if version > FORMAT_VERSION:
        raise ReverieError(
            f"checkpoint {run_dir} has format_version {version}, newer than this reverie "
            f"understands ({FORMAT_VERSION}): upgrade reverie"
        )
    while version < FORMAT_VERSION:
        if version not in UPGRADES:
            raise ReverieError(
                f"checkpoint {run_dir} has format_version {version}, which this reverie "
                f"({FORMAT_VERSION}) cannot upgrade"
            )
        meta = UPGRADES[version](meta)
        version = meta["format_version"] = version + 1
    missing = [k for k in ("model", "step", "files") if k not in meta]
    if missing:
        raise ReverieError(f"{run_dir / CONFIG_FILE} lacks keys {missing}")
    return meta


def _verified(run_dir: Path, meta: dict[str, Any], name: str) -> Path:
    path = run_dir / name
    if not path.is_file():
        raise ReverieError(f"checkpoint file missing: {path}")
    expected = meta["files"].get(name)
    if expected is None:
        raise ReverieError(f"{run_dir / CONFIG_FILE} records no checksum for {name}")
    if _sha256(path) != expected:
        raise ReverieError(
            f"{path} does not match the checksum in config.json (truncated, corrupt, or from an "
            "interrupted save)"
        )
    return path


def load_checkpoint(
    run_dir: str | Path, device: str | torch.device = "cpu"
) -> tuple[WorldModel, dict[str, Any]]:
    """Rebuild the world model saved in ``run_dir`` (eval mode, on ``device``) and its metadata.

    Refuses, with a one-line ``ReverieError``, a missing, truncated, corrupt or incompatible
    checkpoint.
    """
    run_dir = _run_dir(run_dir)
    meta = read_meta(run_dir)
    path = _verified(run_dir, meta, MODEL_FILE)
    try:
        config = WorldModelConfig.from_dict(meta["model"])
    except (TypeError, ValueError) as e:
        raise ReverieError(f"checkpoint {run_dir} has an incompatible model config: {e}") from None
    model = load_weights(WorldModel(config), path, "model")
    return model.to(device).eval(), meta


def load_weights(module: torch.nn.Module, path: Path, what: str) -> torch.nn.Module:
    """Fill ``module`` from a safetensors file; unreadable or mismatched weights raise one line."""
    try:
        weights = load_file(path)
    except Exception as e:  # safetensors raises several types for bad files
        raise ReverieError(f"cannot read {path}: {e}") from None
    try:
        module.load_state_dict(weights, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise ReverieError(f"weights in {path} do not fit the {what} config: {first}") from None
    return module


def load_train_state(run_dir: str | Path) -> tuple[Any, dict[str, Any]]:
    """(train state as saved, config.json dict) of the checkpoint in ``run_dir``, for resuming."""
    run_dir = _run_dir(run_dir)
    meta = read_meta(run_dir)
    path = _verified(run_dir, meta, STATE_FILE)
    try:
        with safe_open(str(path), "pt") as f:
            header = f.metadata() or {}
        tensors = load_file(path)
        skeleton = json.loads(header["state_json"])
    except Exception as e:
        raise ReverieError(f"cannot read training state {path}: {e}") from None
    if header.get("step") != str(meta["step"]):
        raise ReverieError(
            f"{path} is from step {header.get('step')}, config.json from "
            f"{meta['step']} (interrupted save?)"
        )
    return unflatten_state(tensors, skeleton), meta
