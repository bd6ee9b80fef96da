"""Evaluation runs on disk: which checkpoint each row needs, the test items, running the exposure
grid and saving its results atomically under ``runs/<profile>/eval/`` (notebook 07)."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch.nn as nn

from .. import config
from ..io import atomic_write_json, atomic_write_text, csv_text
from ..models.weights import load_model_weights
from .exposure import ALL_METRICS, EVS, score_grid

__all__ = ["FINETUNED", "checkpoint_path", "load_llie", "load_row", "row_key", "llmatte_items", "photo_items",
           "run_grid", "save_grid"]

#: rows that come from notebook 06's training runs: row -> (recipe folder, stage)
FINETUNED = {
    "stage1": ("staged", "stage1"), "stage2": ("staged", "stage2"), "staged": ("staged", "stage3"),
    "onestage": ("onestage", "full"), "onestage_peak": ("onestage_peak", "full"), "distill": ("staged_distill", "stage3"),
    "staged_raw": ("staged_raw", "stage3"), "night": ("night", "stage3"), "night_clean": ("night_clean", "stage3"),
}


def row_key(row: str, seed: int | None = None) -> str:
    """``"staged/s1"`` for a trained row and seed; the row itself otherwise."""
    return row if seed is None else f"{row}/s{int(seed)}"


def checkpoint_path(profile: config.Profile, row: str, seed: int = 0) -> Path:
    """Where notebook 06 writes the checkpoint of a fine-tuned row (see :data:`FINETUNED`)."""
    if row not in FINETUNED:
        raise ValueError(f"row {row!r}: expected one of {list(FINETUNED)}")
    recipe, stage = FINETUNED[row]
    return config.RunLayout.of(profile).checkpoint("modnet", recipe, seed, stage)


def _require(path: Path, what: str, profile: config.Profile, notebook: str) -> Path:
    if path.is_file():
        return path
    raise FileNotFoundError(f"{what}: checkpoint {path} not found; notebook {notebook} writes it: "
                            f"python -m lowlight.reproduce --only {notebook} --profile {profile.name}")


def load_llie(profile: config.Profile, path: str | Path | None = None, scale: float = 1.0) -> nn.Module:
    """The pretrained Zero-DCE++ of notebook 04 (eval mode), from ``path`` or the profile's run folder;
    ``scale``: its curve-estimation downscale factor (``ZeroDCEpp(scale=...)``) for larger images."""
    from ..models.llie import ZeroDCEpp

    p = config.require_profile(profile, where="load_llie")
    path = Path(path) if path else _require(config.RunLayout.of(p).llie_checkpoint, "Zero-DCE++", p, "04")
    m = ZeroDCEpp(scale=scale)
    load_model_weights(m, path)
    return m.eval()


def load_row(profile: config.Profile, row: str, seed: int = 0, device=None) -> nn.Module:
    """A row's model in eval mode: ``"original"`` is MODNet as shipped; the others are notebook 06's
    checkpoints (``FileNotFoundError`` naming the notebook when missing)."""
    from ..models import create_model, model_from_checkpoint

    p = config.require_profile(profile, where="load_row")
    if row == "original":
        model = create_model("modnet").eval()
    else:
        model = model_from_checkpoint(_require(checkpoint_path(p, row, seed), f"row {row!r} seed {seed}", p, "06"))
    return model.to(config.get_device(device)).eval()


def llmatte_items(profile: config.Profile, split: str = "test") -> list[dict]:
    """The fine-tuning LL-Matte's ``split`` (portraits, ``profile.finetune.size`` px) as test items with
    their true alpha and stored trimap (:func:`lowlight.evaluation.exposure.score_grid`)."""
    from ..data import LLMatteDataset, finetune_llmatte

    p = config.require_profile(profile, where="llmatte_items")
    ds = LLMatteDataset(split, p, mode="normal", path=finetune_llmatte(p))
    items = []
    for i in range(len(ds)):
        r = ds.raw(i, None)
        items.append({"name": r["meta"]["id"], "image": r["normal"], "alpha": r["alpha"], "trimap": r["trimap"]})
    return items


def photo_items(max_side: int = 512) -> list[dict]:
    """The held-out real photos of people (:data:`lowlight.data.PEOPLE_PHOTOS`), long side
    ``max_side`` (area), without a matte: they are scored against the original's clean matte."""
    import cv2

    from ..data import PEOPLE_PHOTOS, load_photo

    items = []
    for name in PEOPLE_PHOTOS:
        img = load_photo(name)
        h, w = img.shape[:2]
        s = max_side / max(h, w)
        if s < 1:
            img = cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
        items.append({"name": name, "image": np.ascontiguousarray(img)})
    return items


def run_grid(matters: Mapping, items: Sequence[dict], evs: Sequence[float] = EVS, seeds: Sequence[int] = (0,),
             out_dir: str | Path | None = None, name: str = "grid", **kw) -> list[dict]:
    """:func:`~lowlight.evaluation.exposure.score_grid`, saved as ``<name>.csv`` in ``out_dir``."""
    records = score_grid(matters, items, evs, seeds, **kw)
    if out_dir is not None:
        save_grid(records, Path(out_dir) / f"{name}.csv")
    return records


def save_grid(records: Sequence[dict], path: str | Path) -> Path:
    """Per-record CSV (model, item, target, ev, seed, luma, metrics, mad)."""
    keys = ["model", "item", "target", "ev", "seed", "luma", *ALL_METRICS, "mad"]
    return atomic_write_text(path, csv_text(records, keys))


def save_json(obj, path: str | Path) -> Path:
    """Atomically written JSON (NaN as null)."""
    return atomic_write_json(path, obj)
