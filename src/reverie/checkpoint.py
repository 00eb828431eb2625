"""Checkpoints: weights in safetensors, everything else in JSON; one layout for every trained thing.

A run directory holds the latest checkpoint of one trained thing (a world model, a decoder, a
pixel baseline, a policy), its ``kind`` named in config.json:

    RUN/
      config.json              kind, format version, package versions, module config, env,
                               dataset manifest hash, step, metrics, sha256 of the files below
      model.safetensors        the module's weights (and BatchNorm statistics)
      train_state.safetensors  optimizer / EMA / RNG tensors for --resume; the non-tensor part of
                               that state is JSON in the file's metadata (never pickle)

    from reverie.checkpoint import load_checkpoint, load_module
    model, meta = load_checkpoint("runs/tworoom")           # a world model, eval mode
    decoder, meta = load_module("runs/tworoom/decoder", "reverie-decoder")

Saving is crash-safe at every instant. New files are written under temporary names first; the
files of the checkpoint being replaced are hard-linked into ``RUN/.previous/``; then the new files
are renamed into place (config.json last) and ``.previous`` is removed. A crash before the renames
leaves the old checkpoint in place, one during them leaves it whole in ``.previous`` (loading falls
back to it when the files in RUN do not match their checksums), one after them leaves the new one.
config.json records the sha256 of the other files, so a truncated, corrupt or mismatched file is
refused with a one-line error. Old checkpoints are patched forward on load by ``UPGRADES`` hooks
keyed on ``format_version``.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import reverie
from reverie.io import ReverieError, read_json, sha256_file
from reverie.models.world_model import WorldModel

FORMAT_VERSION = 1
KIND = "reverie-world-model"
CONFIG_FILE = "config.json"
MODEL_FILE = "model.safetensors"
STATE_FILE = "train_state.safetensors"
PREVIOUS = ".previous"

#: kind -> "module:Class" of the nn.Module it rebuilds; the class has ``config_class`` with
#: ``from_dict`` (imported lazily, so this module depends on no model but the world model's type).
MODULES: dict[str, str] = {
    KIND: "reverie.models.world_model:WorldModel",
    "reverie-decoder": "reverie.models.decoder:Decoder",
    "reverie-pixel-baseline": "reverie.physics.pixel_baseline:PixelPredictor",
    "reverie-policy": "reverie.policies.model:GoalPolicy",
}

#: format_version v -> function turning a v config.json dict into a v+1 one (run in sequence).
UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def _run_dir(path: str | Path) -> Path:
    path = Path(path)
    return path.parent if path.is_file() else path


def has_checkpoint(run_dir: str | Path) -> bool:
    run_dir = _run_dir(run_dir)
    return (run_dir / CONFIG_FILE).is_file() or (run_dir / PREVIOUS / CONFIG_FILE).is_file()


def _complete(folder: Path) -> bool:
    """Does ``folder`` hold a config.json whose recorded files all exist with their checksums?"""
    try:
        files = json.loads((folder / CONFIG_FILE).read_text()).get("files")
        return isinstance(files, dict) and all(
            sha256_file(folder / name) == digest for name, digest in files.items()
        )
    except (OSError, ValueError, AttributeError):
        return False


def _current(run_dir: Path) -> Path:
    """Where the checkpoint of ``run_dir`` is whole: RUN itself, or RUN/.previous after a crash
    mid-save (RUN when neither is, so the errors name RUN's files)."""
    previous = run_dir / PREVIOUS
    if previous.is_dir() and not _complete(run_dir) and _complete(previous):
        return previous
    return run_dir


def checkpoint_kind(run_dir: str | Path) -> str | None:
    """The ``kind`` in a run directory's config.json (None when it has none or is unreadable)."""
    try:
        meta = json.loads((_current(_run_dir(run_dir)) / CONFIG_FILE).read_text())
    except (OSError, ValueError):
        return None
    return meta.get("kind") if isinstance(meta, dict) else None


def module_config(module: torch.nn.Module) -> dict[str, Any]:
    """The JSON config that rebuilds ``module`` (its frozen dataclass ``config``)."""
    config = module.config
    return config.to_dict() if hasattr(config, "to_dict") else dataclasses.asdict(config)


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
    model: torch.nn.Module,
    *,
    step: int,
    kind: str = KIND,
    metrics: dict[str, float] | None = None,
    env_name: str | None = None,
    manifest_hash: str | None = None,
    extra: dict[str, Any] | None = None,
    train_state: Any = None,
) -> Path:
    """Write the checkpoint of ``model`` at ``step`` into ``run_dir`` (crash-safe; module doc).

    ``extra`` adds JSON keys to config.json (env, manifest_hash, training config, data, ...).
    ``train_state`` is any nested state ``flatten_state`` accepts; ``load_train_state`` returns it.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {
        "env": env_name,
        "manifest_hash": manifest_hash,
        **(extra or {}),
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "reverie_version": reverie.__version__,
        "torch_version": torch.__version__,
        "model": module_config(model),
        "step": int(step),
        "metrics": dict(metrics or {}),
    }
    tag = {"format_version": str(FORMAT_VERSION), "step": str(step)}
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    staged: dict[str, Path] = {}  # final name -> temporary file beside it
    try:
        # Step 1. Every new file under a temporary name, flushed to disk.
        if train_state is not None:
            tensors, skeleton = flatten_state(train_state)
            staged[STATE_FILE] = _temp(run_dir, STATE_FILE)
            save_file(
                tensors, staged[STATE_FILE], metadata={**tag, "state_json": json.dumps(skeleton)}
            )
        staged[MODEL_FILE] = _temp(run_dir, MODEL_FILE)
        save_file(weights, staged[MODEL_FILE], metadata=tag)
        meta["files"] = {name: sha256_file(tmp) for name, tmp in staged.items()}
        staged[CONFIG_FILE] = _temp(run_dir, CONFIG_FILE)
        staged[CONFIG_FILE].write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        for tmp in staged.values():
            _fsync(tmp)
        # Step 2. The checkpoint being replaced, kept whole in .previous (hard links: no copy).
        if _complete(run_dir):
            _keep_previous(run_dir)
        # Step 3. The new files into place, config.json last; then the old one can go.
        for name, tmp in staged.items():
            os.replace(tmp, run_dir / name)
        staged.clear()
        _fsync_dir(run_dir)
        shutil.rmtree(run_dir / PREVIOUS, ignore_errors=True)
    finally:
        for tmp in staged.values():
            tmp.unlink(missing_ok=True)
    return run_dir


def _temp(run_dir: Path, name: str) -> Path:
    return run_dir / f".{name}.{os.getpid()}.tmp"


def _fsync(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())
    os.chmod(path, 0o644)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _keep_previous(run_dir: Path) -> None:
    """Hard-link RUN's whole checkpoint into RUN/.previous (built aside, renamed in one step)."""
    building = run_dir / f"{PREVIOUS}.{os.getpid()}.tmp"
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir()
    files = json.loads((run_dir / CONFIG_FILE).read_text())["files"]
    for name in (*files, CONFIG_FILE):
        try:
            os.link(run_dir / name, building / name)
        except OSError:  # a filesystem without hard links
            shutil.copy2(run_dir / name, building / name)
    _fsync_dir(building)
    shutil.rmtree(run_dir / PREVIOUS, ignore_errors=True)
    os.replace(building, run_dir / PREVIOUS)
    _fsync_dir(run_dir)


# ----------------------------------------------------------------------------------------- load
KIND_NAMES = {
    KIND: "world-model",
    "reverie-decoder": "decoder",
    "reverie-pixel-baseline": "pixel-baseline",
    "reverie-policy": "policy",
}


def read_meta(run_dir: str | Path, kind: str = KIND) -> dict[str, Any]:
    """config.json of a ``kind`` checkpoint, validated and upgraded to the current format."""
    return _read_meta(_run_dir(run_dir), kind)[1]


def _read_meta(run_dir: Path, kind: str) -> tuple[Path, dict[str, Any]]:
    """(the folder holding the whole checkpoint, its config.json) — see ``_current``."""
    if not run_dir.exists():
        raise ReverieError(f"checkpoint not found: {run_dir}")
    folder = _current(run_dir)
    meta = read_json(folder / CONFIG_FILE, "checkpoint config")
    if not isinstance(meta, dict) or meta.get("kind") != kind:
        found = meta.get("kind") if isinstance(meta, dict) else None
        what = KIND_NAMES.get(kind, kind)
        hint = f" (it holds a {KIND_NAMES.get(found, found)})" if found in KIND_NAMES else ""
        raise ReverieError(f"{folder / CONFIG_FILE} is not a reverie {what} checkpoint{hint}")
    version = meta.get("format_version")
    if not isinstance(version, int):
        raise ReverieError(f"{folder / CONFIG_FILE} has no integer format_version")
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
    if missing or not isinstance(meta["files"], dict):
        raise ReverieError(f"{folder / CONFIG_FILE} lacks keys {missing or ['files']}")
    return folder, meta


def _verified(folder: Path, meta: dict[str, Any], name: str) -> Path:
    path = folder / name
    if not path.is_file():
        raise ReverieError(f"checkpoint file missing: {path}")
    expected = meta["files"].get(name)
    if expected is None:
        raise ReverieError(f"{folder / CONFIG_FILE} records no checksum for {name}")
    if sha256_file(path) != expected:
        raise ReverieError(
            f"{path} does not match the checksum in config.json (truncated, corrupt, or from an "
            "interrupted save)"
        )
    return path


def load_module(
    run_dir: str | Path, kind: str, device: str | torch.device = "cpu"
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild the ``kind`` module saved in ``run_dir`` (eval mode, on ``device``) and its metadata.

    Refuses, with a one-line ``ReverieError``, a missing, truncated, corrupt or incompatible
    checkpoint, or one of another kind.
    """
    run_dir = _run_dir(run_dir)
    folder, meta = _read_meta(run_dir, kind)
    path = _verified(folder, meta, MODEL_FILE)
    module_path, cls_name = MODULES[kind].split(":")
    cls = getattr(importlib.import_module(module_path), cls_name)
    try:
        config = cls.config_class.from_dict(meta["model"])
    except (TypeError, ValueError, KeyError) as e:
        raise ReverieError(f"checkpoint {run_dir} has an incompatible model config: {e}") from None
    module = load_weights(cls(config), path, KIND_NAMES.get(kind, kind))
    return module.to(device).eval(), meta


def load_checkpoint(
    run_dir: str | Path, device: str | torch.device = "cpu"
) -> tuple[WorldModel, dict[str, Any]]:
    """Rebuild the world model saved in ``run_dir`` (eval mode, on ``device``) and its metadata."""
    model, meta = load_module(run_dir, KIND, device)
    assert isinstance(model, WorldModel)
    return model, meta


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


def load_train_state(run_dir: str | Path, kind: str | None = None) -> tuple[Any, dict[str, Any]]:
    """(train state as saved, config.json dict) of the checkpoint in ``run_dir``, for resuming."""
    run_dir = _run_dir(run_dir)
    folder, meta = _read_meta(run_dir, kind or checkpoint_kind(run_dir) or KIND)
    path = _verified(folder, meta, STATE_FILE)
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
