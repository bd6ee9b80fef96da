"""Per-photo evidence on real people, through two cameras, with daylight kept (issue 20, notebook 07).

The photos (:func:`lowlight.data.people_photos`: three that ship with installed packages and nine fetched
from the package registry) have no true matte. Two references stand in for one:

* **the original model's daylight matte** is the specification: "does the model see at night what
  the original sees in daylight?". Every matte -- daylight and dark, every model -- is scored
  against it (SAD over the whole image, / 1000). A fine-tune must also keep it: its own daylight
  matte may not drift from it (:func:`daylight_drift_guard`);
* **the hand-drawn person outlines** (``data/people/outlines.json``) are a reference that does not
  come from MODNet: foreground predicted outside any person (sum of alpha outside the union of the
  person polygons / image area) and person area missed (1 - mean alpha inside them). They are
  coarse (hair, held objects, gaps between arm and body are not cut out), so they compare models
  with each other, not with zero.

Two cameras make the dark inputs, each seeded per photo and EV, the same draw for every model:

* ``"simulator"``: the training simulator, by default as a phone delivers its photo
  (:func:`lowlight.evaluation.exposure.phone`: sensor noise, auto-exposure gain, denoising,
  sharpening, JPEG) at EV -3, -4, -5 -- inside the range the fine-tune was trained on;
* ``"heldout"``: the held-out camera (:mod:`lowlight.evaluation.heldout_camera`: Bayer mosaic,
  Poisson + read + row noise, another tone curve, JPEG 55), written apart from the simulator, at
  EV -3, -5, -7: the degradation is held out along with the content.

Photos are matted at MODNet's operating size (``max_side``, 512 px on the long side): each photo is
first reduced to it (area), rendered and matted there. :func:`score_people` returns one plain record
per (photo, model, camera, EV); :func:`people_table` turns them into per-photo tables and a pooled
change whose interval resamples photos (each with all its EVs) and training seeds -- with fewer than
:data:`lowlight.evaluation.stats.MIN_IMAGES` photos it gives no verdict, only the per-photo values.
"""
from __future__ import annotations

import zlib
from typing import Callable, Mapping, Sequence

import numpy as np
import torch.nn as nn

from ..color import luminance
from . import heldout_camera
from .exposure import CLEAN, phone
from .stats import MIN_IMAGES, clustered_bootstrap, difference_in_differences, error_table, per_seed_medians

__all__ = ["SIM_EVS", "HELDOUT_CAMERA_EVS", "CAMERAS", "DAYLIGHT", "DRIFT_LIMIT", "REFERENCE_MISS_LIMIT", "working_image",
           "camera_input", "score_people", "people_examples", "daylight_drift_guard", "people_table",
           "format_people_table", "people_did", "people_bar", "BAR"]

#: the training simulator's exposures (inside the fine-tune's training range, EV -6.6 .. -2.7)
SIM_EVS = (-3.0, -4.0, -5.0)
#: the held-out camera's exposures (EV -7 lies below the darkest training draw)
HELDOUT_CAMERA_EVS = (-3.0, -5.0, -7.0)
#: the conditions' cameras: the photo as it is, the training simulator, the held-out camera
DAYLIGHT = "daylight"
CAMERAS = (DAYLIGHT, "simulator", "heldout")
#: the issue's criterion: every photo and seed keeps mean |alpha - original's daylight alpha| <= this
DRIFT_LIMIT = 0.02
#: a reference matte that misses more than this share of the outlined person area is a weak
#: specification: :func:`people_table` names those photos
REFERENCE_MISS_LIMIT = 0.5
#: the issue's bar for a night fix, per dark camera: the median per-photo change at most this (%),
#: no photo worse (the seeds' mean), every seed's median per-photo change at most ``seed_median``
BAR = {"median": -40.0, "seed_median": -30.0, "photos_worse": 0}


def working_image(image: np.ndarray, max_side: int | None = 512) -> np.ndarray:
    """The photo at the size it is rendered and matted at: long side ``max_side`` at most (area)."""
    import cv2

    img = np.ascontiguousarray(image)
    h, w = img.shape[:2]
    if max_side and max(h, w) > max_side:
        s = max_side / max(h, w)
        img = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    return img


def _heldout_rng(photo_id: str, ev: float, seed: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(
        [int(seed), zlib.crc32(f"heldout:{photo_id}".encode()), int(round(float(ev) * 1000)) % (2**31)]))


def camera_input(img: np.ndarray, photo_id: str, camera: str, ev, seed: int = 0,
                 sim_render: Callable = phone) -> np.ndarray:
    """What a model sees of the working image ``img`` under ``camera`` at ``ev``: the photo itself
    (``"daylight"``), ``sim_render(img, ev, seed, photo_id)`` (``"simulator"``), or the held-out
    camera's :func:`~lowlight.evaluation.heldout_camera.render` (``"heldout"``). The noise is
    keyed by (seed, photo, EV): the same draw for every model, independent of evaluation order."""
    if camera == DAYLIGHT:
        return img
    if camera == "simulator":
        return sim_render(img, float(ev), int(seed), photo_id)
    if camera == "heldout":
        return heldout_camera.render(img, float(ev), _heldout_rng(photo_id, ev, seed))
    raise ValueError(f"camera {camera!r}: expected one of {CAMERAS}")


def _conditions(evs_sim: Sequence[float], evs_heldout: Sequence[float]) -> list[tuple[str, object]]:
    return ([(DAYLIGHT, CLEAN)] + [("simulator", float(e)) for e in evs_sim]
            + [("heldout", float(e)) for e in evs_heldout])


def _matte(model: nn.Module, img: np.ndarray, max_side: int | None) -> np.ndarray:
    from ..inference import matte_image

    return matte_image(model, img, max_side=max_side).astype(np.float64) / 255.0


def _outline_counts(alpha: np.ndarray, person: np.ndarray | None) -> dict:
    if person is None:                          # a photo without outlines (your own photos)
        return {"fg_outside": float("nan"), "person_missed": float("nan")}
    inside = float(alpha[person].mean()) if person.any() else float("nan")
    return {"fg_outside": float(alpha[~person].sum() / alpha.size), "person_missed": 1.0 - inside}


def _record(photo_id, model, camera, ev, x, alpha, ref, person, render_name) -> dict:
    diff = np.abs(alpha - ref)
    return {"photo": photo_id, "model": model, "camera": camera, "ev": ev, "render": render_name,
            "luma": float(luminance(x).mean()), "sad": float(diff.sum() / 1000.0), "mad": float(diff.mean()),
            **_outline_counts(alpha, person), "height": int(alpha.shape[0]), "width": int(alpha.shape[1])}


def score_people(models: Mapping[str, nn.Module], photos: Sequence, evs_sim: Sequence[float] = SIM_EVS,
                 evs_heldout: Sequence[float] = HELDOUT_CAMERA_EVS, seed: int = 0, max_side: int | None = 512,
                 reference: str = "original", sim_render: Callable = phone, outlines: bool = True) -> list[dict]:
    """Score every model on every photo in daylight and in the dark, through both cameras.

    ``models``: ``{name: nn.Module}`` (RGB in [0, 1] -> alpha), ``reference`` among them (the
    original: its daylight matte is the target). ``photos``: :class:`lowlight.data.people.PeoplePhoto`
    (or anything with ``id`` and ``image``; ``id`` must have outlines unless ``outlines=False``, which
    leaves ``fg_outside`` and ``person_missed`` NaN -- e.g. for your own photos). Each photo is reduced to
    ``max_side`` (:func:`working_image`), rendered (:func:`camera_input`) and matted at that size
    with 8-bit mattes (:func:`lowlight.inference.matte_image`).

    Returns one record per (photo, model, camera, EV) -- the daylight one has ``camera="daylight"``
    and ``ev="clean"`` -- with ``sad`` (sum |alpha - reference| / 1000 over the whole image),
    ``mad`` (its mean; in daylight: the drift), ``fg_outside``, ``person_missed`` (module docstring),
    ``luma`` (mean Rec. 709 luminance of the input), ``render`` (the simulator's function name or
    ``"heldout_camera"``) and the working size. Deterministic given ``seed``."""
    from ..data import person_mask

    if reference not in models:
        raise ValueError(f"score_people: models has no reference {reference!r} (its daylight matte is the "
                         f"target); got {list(models)}")
    names = {DAYLIGHT: "none", "simulator": getattr(sim_render, "__name__", "simulator"),
             "heldout": "heldout_camera"}
    records = []
    for photo in photos:
        img = working_image(np.asarray(photo.image), max_side)
        person = person_mask(photo.id, img.shape[:2]) if outlines else None
        ref = _matte(models[reference], img, max_side)
        for camera, ev in _conditions(evs_sim, evs_heldout):
            x = camera_input(img, photo.id, camera, ev, seed, sim_render)
            for name, model in models.items():
                alpha = ref if (name == reference and camera == DAYLIGHT) else _matte(model, x, max_side)
                records.append(_record(photo.id, name, camera, ev, x, alpha, ref, person, names[camera]))
    return records


def people_examples(models: Mapping[str, nn.Module], photos: Sequence, conditions: Sequence[tuple] | None = None,
                    seed: int = 0, max_side: int | None = 512, sim_render: Callable = phone,
                    outlines: bool = True) -> list[dict]:
    """The inputs and mattes behind :func:`score_people`'s records, for a figure: per photo
    ``{"id", "mask" (person union, bool), "panels": [{"camera", "ev", "image", "mattes": {model:
    alpha}}]}``. ``conditions``: ``(camera, ev)`` pairs, default daylight and the darkest EV of each
    camera. The renders are the same draws as :func:`score_people`'s with the same ``seed``."""
    from ..data import person_mask

    conditions = conditions or [(DAYLIGHT, CLEAN), ("simulator", min(SIM_EVS)), ("heldout", min(HELDOUT_CAMERA_EVS))]
    out = []
    for photo in photos:
        img = working_image(np.asarray(photo.image), max_side)
        panels = []
        for camera, ev in conditions:
            x = camera_input(img, photo.id, camera, ev, seed, sim_render)
            panels.append({"camera": camera, "ev": ev, "image": x,
                           "mattes": {k: _matte(m, x, max_side) for k, m in models.items()}})
        mask = person_mask(photo.id, img.shape[:2]) if outlines else None
        out.append({"id": photo.id, "mask": mask, "panels": panels})
    return out


def daylight_drift_guard(records: Sequence[dict], limit: float = DRIFT_LIMIT,
                         reference: str = "original") -> dict[tuple[str, str], float]:
    """``{(photo, model): drift}`` for every model other than ``reference`` whose daylight matte
    differs from the reference's by more than ``limit`` on average (mean |alpha difference| over
    the image). Empty when the issue's criterion holds: for every photo and every seed, drift <= 0.02."""
    out = {}
    for r in records:
        if r["camera"] == DAYLIGHT and r["model"] != reference and r["mad"] > limit:
            out[(r["photo"], r["model"])] = float(r["mad"])
    return out


# ---------------------------------------------------------------------------------------- tables
def _cell(records, camera, photo, model, key) -> float:
    vals = [r[key] for r in records if r["camera"] == camera and r["photo"] == photo and r["model"] == model]
    return float(np.mean(vals)) if vals else float("nan")


def _change(base: float, new: float) -> float:
    return 100.0 * (new / base - 1.0) if base > 0 else float("nan")


def _per_photo(records, camera, photos, reference, finetuned) -> dict:
    """``{photo: {metric: {"original", "finetuned", "change_pct", "seeds": {model: value}}}}``."""
    out = {}
    for p in photos:
        out[p] = {}
        for key in ("sad", "mad", "fg_outside", "person_missed"):
            base = _cell(records, camera, p, reference, key)
            seeds = {m: _cell(records, camera, p, m, key) for m in finetuned}
            mean = float(np.mean(list(seeds.values())))
            out[p][key] = {"original": base, "finetuned": mean, "change_pct": _change(base, mean), "seeds": seeds,
                           "seed_changes": {m: _change(base, v) for m, v in seeds.items()}}
    return out


def _pooled(records, camera, reference, finetuned, metric, n_boot, boot_seed) -> dict:
    recs = [dict(r, item=r["photo"]) for r in records if r["camera"] == camera]
    base = error_table(recs, reference, metric)
    new = error_table(recs, finetuned, metric, conditions=base.conditions)
    try:
        change = clustered_bootstrap(base.values, new.values, n_boot=n_boot, seed=boot_seed, images=base.images,
                                     seeds=new.seeds)
    except ValueError as exc:          # e.g. the original equals its own target on every EV of a photo
        return {"change": None, "seed_medians": {}, "evs": list(base.conditions), "error": str(exc)}
    return {"change": change, "seed_medians": per_seed_medians(base.values, new.values, seeds=new.seeds),
            "evs": list(base.conditions), "error": None}


def people_table(records: Sequence[dict], reference: str = "original", finetuned: Sequence[str] | None = None,
                 metric: str = "sad", limit: float = DRIFT_LIMIT, n_boot: int = 10000, boot_seed: int = 0) -> dict:
    """Per-photo evidence from :func:`score_people`'s records.

    ``finetuned``: the fine-tuned model's training seeds (default: every model but ``reference``).
    Returns ``{"photos", "finetuned", "per_photo": {camera: {photo: {metric: {"original", "finetuned"
    (the seeds' mean), "change_pct", "seeds", "seed_changes"}}}}`` (each value the mean over the
    camera's EVs), ``"drift": {photo: {model: mean |alpha - reference|}}`` in daylight,
    ``"reference_missed": {photo: person area the reference's daylight matte misses}`` (above
    :data:`REFERENCE_MISS_LIMIT` the specification itself is wrong on that photo),
    ``"flagged"`` (:func:`daylight_drift_guard`), ``"pooled": {camera: {"change"``
    (:class:`~lowlight.evaluation.stats.Change` of ``metric``: photos resampled with all their EVs
    together, seeds resampled; ``None`` with the reason in ``"error"`` where no relative change
    exists), ``"seed_medians"``, ``"evs"}}``, ``"verdict_withheld"`` (fewer than
    :data:`~lowlight.evaluation.stats.MIN_IMAGES` photos: read the per-photo values), ``"text"``."""
    photos = list(dict.fromkeys(r["photo"] for r in records))
    models = list(dict.fromkeys(r["model"] for r in records))
    finetuned = [m for m in models if m != reference] if finetuned is None else list(finetuned)
    if reference not in models or not finetuned or any(m not in models for m in finetuned):
        raise ValueError(f"people_table: records hold models {models}; need the reference {reference!r} and "
                         f"the fine-tuned seeds {finetuned}")
    cams = [c for c in CAMERAS if any(r["camera"] == c for r in records)]
    table = {"photos": photos, "finetuned": finetuned, "reference": reference, "metric": metric, "limit": limit,
             "per_photo": {c: _per_photo(records, c, photos, reference, finetuned) for c in cams},
             "drift": {p: {m: _cell(records, DAYLIGHT, p, m, "mad") for m in finetuned} for p in photos},
             "flagged": daylight_drift_guard(records, limit, reference),
             "reference_missed": {p: _cell(records, DAYLIGHT, p, reference, "person_missed") for p in photos},
             "pooled": {c: _pooled(records, c, reference, finetuned, metric, n_boot, boot_seed)
                        for c in cams if c != DAYLIGHT},
             "evs": {c: sorted({r["ev"] for r in records if r["camera"] == c and r["ev"] != CLEAN}, reverse=True)
                     for c in cams},
             "verdict_withheld": len(photos) < MIN_IMAGES}
    table["text"] = format_people_table(table)
    return table


# ------------------------------------------------------------------------------------------ text
_CAMERA_TITLES = {DAYLIGHT: "daylight (the photo as it is)",
                  "simulator": "the training simulator", "heldout": "the held-out camera"}


def _ev_text(evs) -> str:
    return ", ".join(f"{e:g}" for e in evs)


def _sad_lines(table: dict, camera: str) -> list[str]:
    ft = table["finetuned"]
    lines = [f"SAD vs the original's daylight matte (whole image, /1000), mean over EV {_ev_text(table['evs'][camera])}"
             f" -- {_CAMERA_TITLES[camera]}",
             f"{'photo':<15}{'original':>9}{'fine-tuned':>11}{'change':>8}  " + "".join(f"{m:>20}" for m in ft)]
    for p, cell in table["per_photo"][camera].items():
        s = cell["sad"]
        seeds = "".join(f"{s['seeds'][m]:>11.2f} ({s['seed_changes'][m]:+4.0f}%)" for m in ft)
        lines.append(f"{p:<15}{s['original']:>9.2f}{s['finetuned']:>11.2f}{s['change_pct']:>+7.0f}%  {seeds}")
    return lines


def _outline_lines(table: dict) -> list[str]:
    cams = list(table["per_photo"])
    head = "".join(f"{c + ' orig':>15}{'ft':>7}" for c in cams)
    lines = ["Against the hand-drawn outlines (%; fine-tuned = mean of the seeds; dark cameras: mean over their EVs)"]
    for key, title in (("fg_outside", "foreground outside any person (% of the image)"),
                       ("person_missed", "person area missed (% of the person area)")):
        lines += [f"  {title}", f"  {'photo':<15}{head}"]
        for p in table["photos"]:
            vals = "".join(f"{100 * table['per_photo'][c][p][key]['original']:>15.1f}"
                           f"{100 * table['per_photo'][c][p][key]['finetuned']:>7.1f}" for c in cams)
            lines.append(f"  {p:<15}{vals}")
    weak = {p: v for p, v in table["reference_missed"].items() if v > REFERENCE_MISS_LIMIT}
    if weak:
        lines.append("the original's own daylight matte misses most of the outlined people on "
                     + ", ".join(f"{p} ({100 * v:.0f}%)" for p, v in weak.items())
                     + ": there the specification is itself wrong, and a SAD against it says little")
    return lines


def _drift_lines(table: dict) -> list[str]:
    ft = table["finetuned"]
    lines = [f"Daylight drift: mean |alpha - original's daylight alpha| per photo and seed (limit {table['limit']})",
             f"{'photo':<15}" + "".join(f"{m:>14}" for m in ft)]
    for p, row in table["drift"].items():
        lines.append(f"{p:<15}" + "".join(f"{row[m]:>14.4f}" for m in ft))
    worst = max((v, p, m) for p, row in table["drift"].items() for m, v in row.items())
    flagged = table["flagged"]
    lines.append(f"largest: {worst[0]:.4f} ({worst[1]}, {worst[2]}); "
                 + (f"{len(flagged)} (photo, seed) pair(s) above the limit: "
                    + ", ".join(f"{p}/{m} {v:.4f}" for (p, m), v in flagged.items())
                    if flagged else "every photo and seed within the limit"))
    return lines


def people_did(records: Sequence[dict], treatment: Sequence[str], control: Sequence[str], camera: str,
               reference: str = "original", metric: str = "sad", n_boot: int = 10000, boot_seed: int = 0):
    """The difference in differences of ``metric`` under ``camera`` (a dark one): the ``treatment``
    seeds' change from ``reference`` minus the ``control`` seeds' change, in percentage points, with
    photos resampled with all their EVs (the same photos for both arms) and each arm's seeds
    resampled (:func:`lowlight.evaluation.stats.difference_in_differences`). Negative: the treatment
    lowers the error by more than the control does."""
    if camera == DAYLIGHT:
        raise ValueError("people_did: camera must be a dark one ('simulator' or 'heldout'), not daylight")
    recs = [dict(r, item=r["photo"]) for r in records if r["camera"] == camera]
    base = error_table(recs, reference, metric)
    t = error_table(recs, list(treatment), metric, conditions=base.conditions)
    c = error_table(recs, list(control), metric, conditions=base.conditions)
    return difference_in_differences(base.values, t.values, c.values, n_boot=n_boot, seed=boot_seed,
                                     images=base.images, seeds=[m.split("/")[-1] for m in t.seeds]
                                     if len(t.seeds) == len(c.seeds) else None)


def people_bar(table: dict) -> dict:
    """The issue's bar (:data:`BAR`, :data:`DRIFT_LIMIT`) read off a :func:`people_table`, photo by
    photo and seed by seed: ``{camera: {"median_change", "photos_worse", "n", "seed_medians"},
    "drift_max", "drift_over", "pairs", "met"}`` for each dark camera (``met``: every part holds)."""
    out, met = {}, True
    for cam in (c for c in table["per_photo"] if c != DAYLIGHT):
        changes = [v[table["metric"]]["change_pct"] for v in table["per_photo"][cam].values()]
        seeds = table["pooled"][cam]["seed_medians"]
        out[cam] = {"median_change": float(np.median(changes)), "photos_worse": int(sum(x > 0 for x in changes)),
                    "n": len(changes), "seed_medians": dict(seeds)}
        met &= (out[cam]["median_change"] <= BAR["median"] and out[cam]["photos_worse"] <= BAR["photos_worse"]
                and bool(seeds) and max(seeds.values()) <= BAR["seed_median"])
    drifts = [v for row in table["drift"].values() for v in row.values()]
    out["drift_max"], out["pairs"] = float(max(drifts)), len(drifts)
    out["drift_over"] = int(sum(v > table["limit"] for v in drifts))
    out["met"] = bool(met and out["drift_over"] == 0)
    return out


def _pooled_lines(table: dict) -> list[str]:
    lines = []
    for camera, res in table["pooled"].items():
        ch = res["change"]
        if ch is None:
            lines.append(f"{_CAMERA_TITLES[camera]}: no pooled change ({res['error']})")
            continue
        medians = ", ".join(f"{k} {v:+.0f}%" for k, v in res["seed_medians"].items())
        lines += [f"{_CAMERA_TITLES[camera]}, EV {_ev_text(sorted(res['evs'], reverse=True))}, "
                  f"original -> fine-tuned ({table['metric'].upper()}): {ch.text()}",
                  "  per seed (ratio of means): " + ", ".join(f"{k} {v:+.0f}%" for k, v in ch.per_seed.items()),
                  f"  per-seed median per-photo change: {medians}",
                  f"  resampling: {ch.units}"]
    if table["verdict_withheld"]:
        lines.append(f"{len(table['photos'])} photos are fewer than {MIN_IMAGES}: no pooled verdict; the interval "
                     "is not shown and the per-photo values above are the evidence.")
    return lines


def format_people_table(table: dict) -> str:
    """:func:`people_table`'s result as text: per camera the per-photo SAD table (each seed), the
    outline counts, the daylight drift table and the pooled change with its footer."""
    parts = [_sad_lines(table, c) for c in table["per_photo"] if c != DAYLIGHT]
    parts += [_outline_lines(table), _drift_lines(table), _pooled_lines(table)]
    return "\n\n".join("\n".join(p) for p in parts)
