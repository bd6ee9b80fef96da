"""Weight files, offline and weights-only (notebook 03).

``.pth``/``.pt``/``.bin``/``.ckpt`` through ``torch.load(weights_only=True)`` (no pickled code
runs) and ``.safetensors``, with errors that name the file and say what was expected.
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch
import torch.nn as nn


_WEIGHT_SUFFIXES = {".pt", ".pth", ".bin", ".ckpt", ".safetensors"}


def _as_state_dict(obj, source: str) -> dict[str, torch.Tensor]:
    """Unwrap common checkpoint containers and check that the values are tensors."""
    if isinstance(obj, dict):
        for key in ("state_dict_ema", "model_ema", "state_dict", "model"):
            if isinstance(obj.get(key), dict) and obj[key] and all(isinstance(k, str) for k in obj[key]):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj:
        raise ValueError(f"{source} does not contain a state dict (got {type(obj).__name__})")
    out = {}
    for k, v in obj.items():
        if not isinstance(k, str) or not isinstance(v, torch.Tensor):
            raise ValueError(f"{source} is not a state dict of tensors: entry {k!r} is "
                             f"{type(v).__name__}")
        for prefix in ("module.", "_orig_mod."):    # DDP / torch.compile wrappers
            if k.startswith(prefix):
                k = k[len(prefix):]
        out[k] = v
    return out


def load_weights_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a weights file *weights-only* and return its state dict (tensors on CPU).

    Introduced in notebook 03. ``.safetensors`` files go through safetensors; everything else
    through ``torch.load(weights_only=True)``, which refuses pickled Python objects (a file
    that would run code when unpickled is rejected, never executed). Raises
    ``FileNotFoundError`` for a missing file and ``ValueError`` naming the file for a corrupt
    one, a refused one, or one that holds no state dict.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {str(path)!r} does not exist")
    if path.stat().st_size == 0:
        raise ValueError(f"weights file {str(path)!r} is empty")
    if path.suffix.lower() == ".safetensors":
        try:
            from safetensors.torch import load_file
            obj = load_file(str(path), device="cpu")
        except ImportError as exc:  # pragma: no cover - safetensors comes with timm
            raise ValueError(f"weights file {str(path)!r}: reading .safetensors needs the "
                             f"'safetensors' package") from exc
        except Exception as exc:
            raise ValueError(f"weights file {str(path)!r} is corrupt or not a safetensors file "
                             f"({type(exc).__name__}: {exc})") from None
        return _as_state_dict(obj, f"weights file {str(path)!r}")
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        msg = str(exc)
        if "GLOBAL" in msg or "global" in msg:
            detail = next((ln.strip() for ln in msg.splitlines() if "GLOBAL" in ln or "global" in ln), "")
            raise ValueError(
                f"refused to load weights file {str(path)!r}: it contains pickled Python objects, "
                f"not only tensors, and weights-only loading does not execute them ({detail})") from None
        raise ValueError(f"weights file {str(path)!r} is corrupt or not a PyTorch weights file "
                         f"(unpickling failed)") from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"weights file {str(path)!r} is corrupt or truncated ({first})") from None
    return _as_state_dict(obj, f"weights file {str(path)!r}")


def load_state_dict_checked(module: nn.Module, state_dict: dict, source: str = "state dict",
                            strict: bool = True) -> None:
    """``module.load_state_dict`` with errors that name the key: a shape mismatch raises
    ``ValueError("... key 'x': file has (a, b), model expects (c, d)")``; missing or unexpected
    keys (when ``strict``) raise ``ValueError`` listing them. Introduced in notebook 03."""
    own = module.state_dict()
    for k, v in state_dict.items():
        if k in own and tuple(own[k].shape) != tuple(v.shape):
            raise ValueError(f"{source}: shape mismatch for key {k!r}: weights have "
                             f"{tuple(v.shape)}, the model expects {tuple(own[k].shape)}")
    if strict:
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if missing or unexpected:
            parts = []
            if missing:
                parts.append(f"{len(missing)} missing keys (first: {missing[:5]})")
            if unexpected:
                parts.append(f"{len(unexpected)} unexpected keys (first: {unexpected[:5]})")
            raise ValueError(f"{source} does not match the model: " + "; ".join(parts))
    module.load_state_dict(state_dict, strict=strict)
