"""State-dict files, weights-only, and loading them into a model (notebooks 03, 04, 06).

``.pth``/``.pt``/``.bin``/``.ckpt`` through ``torch.load(weights_only=True)`` (no pickled code
runs) and ``.safetensors``, with errors that name the file and say what was expected; an
encoder's weights in either of two layouts (an :class:`~lowlight.models.encoders.Encoder`
state dict or a timm classification checkpoint); and a course training checkpoint's weights
(:func:`load_model_weights`; the checkpoint file itself is read by :mod:`lowlight.io`).
"""
from __future__ import annotations

import os
import pickle
import re
from pathlib import Path

import torch
import torch.nn as nn

from ...io import CheckpointError, load_checkpoint
from ..encoders import Encoder

__all__ = ["WEIGHT_SUFFIXES", "looks_like_weights_path", "as_state_dict", "nonfinite_tensor", "load_weights_file",
           "load_state_dict_checked", "load_encoder_state_dict", "load_model_weights"]

#: file suffixes read as weights files
WEIGHT_SUFFIXES = {".pt", ".pth", ".bin", ".ckpt", ".safetensors"}


def looks_like_weights_path(s: str) -> bool:
    """Whether the string ``s`` names a file (a folder separator, a weights suffix, or it exists)
    rather than a pretrained source such as ``"modnet"``."""
    return os.sep in s or "/" in s or Path(s).suffix.lower() in WEIGHT_SUFFIXES or Path(s).exists()


def as_state_dict(obj, source: str) -> dict[str, torch.Tensor]:
    """Unwrap common checkpoint containers and check that the values are tensors.

    ``{"state_dict_ema" | "model_ema" | "state_dict" | "model": {...}}`` is unwrapped; the
    ``module.`` (DDP) and ``_orig_mod.`` (``torch.compile``) key prefixes are dropped. Raises
    ``ValueError`` naming ``source`` when no state dict of tensors is found.
    """
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


def nonfinite_tensor(state_dict: dict) -> str | None:
    """The first floating-point tensor of ``state_dict`` (in its order) holding NaN or infinite
    values, described (``"tensor 'head.out.bias' holds non-finite values (3 NaN, 0 infinite, of 16)"``);
    ``None`` when every value is finite. Weights of a diverged run give NaN mattes, which 8-bit
    files store as 0: a black matte that looks like a result."""
    for k, v in state_dict.items():
        if isinstance(v, torch.Tensor) and (v.is_floating_point() or v.is_complex()):
            finite = torch.isfinite(v)
            if not bool(finite.all()):
                n_nan = int(torch.isnan(v).sum())
                return (f"tensor {k!r} holds non-finite values ({n_nan} NaN, {int((~finite).sum()) - n_nan} "
                        f"infinite, of {v.numel()})")
    return None


def _read_safetensors(path: Path):
    """The tensors of a ``.safetensors`` file; ``ValueError`` naming the file if it is corrupt."""
    try:
        from safetensors.torch import load_file
        return load_file(str(path), device="cpu")
    except ImportError as exc:  # pragma: no cover - safetensors comes with timm
        raise ValueError(f"weights file {str(path)!r}: reading .safetensors needs the "
                         f"'safetensors' package") from exc
    except Exception as exc:
        raise ValueError(f"weights file {str(path)!r} is corrupt or not a safetensors file "
                         f"({type(exc).__name__}: {exc})") from None


def _read_torch_weights_only(path: Path):
    """``torch.load(weights_only=True)``; a file with pickled Python objects is refused (and
    never executed), a corrupt one named, both as ``ValueError``."""
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
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


def load_weights_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a weights file *weights-only* and return its state dict (tensors on CPU).

    Introduced in notebook 03. ``.safetensors`` files go through safetensors; everything else
    through ``torch.load(weights_only=True)``, which refuses pickled Python objects (a file
    that would run code when unpickled is rejected, never executed). Raises
    ``FileNotFoundError`` for a missing file and ``ValueError`` naming the file for a corrupt
    one, a refused one, one that holds no state dict, or one with NaN/infinite weights.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {str(path)!r} does not exist")
    if path.stat().st_size == 0:
        raise ValueError(f"weights file {str(path)!r} is empty")
    if path.suffix.lower() == ".safetensors":
        obj = _read_safetensors(path)
    else:
        obj = _read_torch_weights_only(path)
    sd = as_state_dict(obj, f"weights file {str(path)!r}")
    problem = nonfinite_tensor(sd)
    if problem:
        raise ValueError(f"weights file {str(path)!r}: {problem}; refused (the weights are unusable)")
    return sd


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


# --------------------------------------------------------------------------- encoders
def load_encoder_state_dict(encoder: Encoder, state_dict: dict, source: str, **timm_kwargs) -> Encoder:
    """Load ``state_dict`` into ``encoder`` (in place, strictly); returns it.

    Two layouts: an :class:`Encoder` state dict (keys ``body.*``, as saved by
    ``torch.save(encoder.state_dict(), path)``) and a timm classification checkpoint of the
    encoder's architecture (e.g. a ``model.safetensors`` of the timm release), which timm's own
    checkpoint filter adapts. ``timm_kwargs``: those the encoder was built with. Errors name
    ``source`` and what does not fit; ``encoder.pretrained_from`` becomes ``source``.
    """
    if any(k.startswith("body.") for k in state_dict):
        load_state_dict_checked(encoder, state_dict, source=source)
    else:
        _load_timm_checkpoint(encoder, state_dict, source, timm_kwargs)
    encoder.pretrained_from = source
    return encoder


def _load_timm_checkpoint(encoder: Encoder, state_dict: dict, source: str, timm_kwargs: dict) -> None:
    """A timm classification checkpoint into the features-only ``encoder.body``, offline."""
    import timm

    spec = encoder.spec
    kwargs = dict(spec.timm_kwargs)
    kwargs.update(timm_kwargs)
    # Let timm load the checkpoint into the *full* model first: it applies the model's own
    # checkpoint filter (e.g. the original Swin release layout) and loads strictly (timm is
    # lenient with features_only models, where a wrong file would silently stay random).
    try:
        full = timm.create_model(
            spec.timm_name, pretrained=True,
            pretrained_cfg_overlay=dict(state_dict=state_dict, file=None, url="", hf_hub_id=None),
            **kwargs)
    except (RuntimeError, KeyError, ValueError, AssertionError) as exc:
        raise ValueError(
            f"weights {source} do not fit encoder {spec.name!r} (read as a timm checkpoint of "
            f"{spec.timm_name!r}): {_summarize_load_error(exc)}") from None
    full_sd = full.state_dict()
    mapped = {}
    for key in encoder.body.state_dict():
        mapped[key] = full_sd[_full_key(key, full_sd)]
    load_state_dict_checked(encoder.body, mapped, source=source)


def _summarize_load_error(exc: Exception, limit: int = 3) -> str:
    """Shorten torch's ``load_state_dict`` error (it lists every key) to counts and examples."""
    msg = str(exc)
    if not isinstance(exc, RuntimeError) or "state_dict" not in msg:
        return f"{type(exc).__name__}: {msg}"
    parts = []
    sizes = re.findall(r"size mismatch for ([^:]+): copying a param with shape torch\.Size\((\[[^\]]*\])\) "
                       r"from checkpoint, the shape in current model is torch\.Size\((\[[^\]]*\])\)", msg)
    if sizes:
        k, a, b = sizes[0]
        more = f" (and {len(sizes) - 1} more)" if len(sizes) > 1 else ""
        parts.append(f"shape mismatch for key {k!r}: weights have {a}, the model expects {b}{more}")
    for label in ("Missing key(s)", "Unexpected key(s)"):
        m = re.search(re.escape(label) + r" in state_dict: (.*?)\.\s*(?:\n|$)", msg)
        if m:
            keys = re.findall(r'"([^"]+)"', m.group(1))
            parts.append(f"{len(keys)} {label.lower().replace('(s)', 's')} (first: {keys[:limit]})")
    return "; ".join(parts) if parts else msg.splitlines()[0]


def _full_key(key: str, full_sd: dict) -> str:
    """Name in the full timm model of a features-only parameter: timm's FeatureListNet
    flattens the first level of nested Sequentials (``stages.0.x`` -> ``stages_0.x``)."""
    if key in full_sd:
        return key
    head, _, rest = key.partition(".")
    for i, ch in enumerate(head):
        if ch == "_":
            cand = f"{head[:i]}.{head[i + 1:]}.{rest}" if rest else f"{head[:i]}.{head[i + 1:]}"
            if cand in full_sd:
                return cand
    raise KeyError(f"no counterpart of features-only key {key!r} in the full timm model")


# --------------------------------------------------------------------------- training checkpoints
def load_model_weights(model: nn.Module, path: str | os.PathLike, state: dict | None = None,
                       model_name: str | None = None) -> dict:
    """Load a course checkpoint's model weights into ``model`` (strict); returns the checkpoint.

    The file is read weights-only by :func:`lowlight.io.load_checkpoint` (which raises
    :class:`~lowlight.io.CheckpointError` naming it when it is not a course checkpoint), unless
    its contents are given as ``state``. Weights with NaN or infinite values are refused, naming
    the file and the first such tensor, before ``model`` is touched; weights that do not fit
    ``model`` raise ``CheckpointError`` naming the file and ``model_name`` (the registry name of
    ``model``) or else the model the checkpoint was saved for.
    """
    state = load_checkpoint(path) if state is None else state
    problem = nonfinite_tensor(state["model"])
    if problem:
        raise CheckpointError(f"checkpoint {path}: {problem}; the weights are unusable (a diverged training "
                              "run?) -- use an earlier checkpoint")
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        which = (f"model {model_name!r}" if model_name else
                 f"this model (saved for model {state.get('model_name', '?')!r})")
        raise CheckpointError(f"checkpoint {path}: its weights do not fit {which} ({first[:300]})") from None
    return state
