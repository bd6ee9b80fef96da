"""Fix your own matting model for night, on your own photos, no labels: ``python -m lowlight.adapt``.

::

    python -m lowlight.adapt --data-path PHOTOS/ --out runs/night          # fine-tune + report
    python -m lowlight.export --checkpoint runs/night/stage3/last.pt --out night.onnx
    python -m lowlight.predict --onnx night.onnx --input NIGHT_PHOTOS/ --output mattes/

``PHOTOS/`` is a folder of ordinary photos (JPEG/PNG, any sizes, nested folders allowed) of the
kind your service sees. The command

1. reads the folder (:func:`lowlight.data.scan_photo_folder`): unreadable files are listed and
   skipped; a share of the photos, chosen by a hash of each file's name, is held out;
2. fine-tunes the shipped MODNet (or ``--model u2netp``) by **self-distillation**
   (:data:`lowlight.training.NIGHT`): the original's
   matte of each daylight training photo is the target for the same photo made dark by the course's
   camera simulator; a share of the draws stay in daylight, and an L2-SP penalty pulls the weights
   towards the original's, so that daylight mattes stay what they were;
3. scores the original and the fine-tuned model on the **held-out photos** -- in daylight (the
   drift: how far the fine-tuned matte moved from the original's) and made dark by two cameras,
   the training simulator and a held-out camera the fine-tune never saw
   (:mod:`lowlight.evaluation.heldout_camera`) -- against the original's daylight matte;
4. writes ``report.md``, ``report.html`` (figures inline) and ``report.json`` into ``--out``.

The reference is the original's own daylight matte: the report says whether the model sees at
night what it saw in daylight, not whether that matte was right. With a handful of held-out
photos the report gives per-photo values, never a verdict.
"""
from __future__ import annotations

import argparse
import base64
import html
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Sequence

from . import config
from .io import atomic_write_bytes, atomic_write_json, atomic_write_text, cli_error, writable_dir_problem
from .training.recipe import NIGHT

__all__ = ["night_stages", "adapt", "report_on_heldout", "main"]


def night_stages(profile: config.Profile, anchor: float = NIGHT["anchor"], steps: int | None = None,
                 model: str = "modnet") -> list:
    """The night recipe's three stages of ``model`` (a shipped model) with the L2-SP ``anchor``
    (``steps``: per stage, else the profile's)."""
    from .training.recipe import recipe_stages
    from .training.stages import LossSpec

    stages = recipe_stages(profile, model, "night", loss=LossSpec(dynamic="sample"))
    return [replace(s, anchor=float(anchor), steps=steps or s.steps) for s in stages]


def _photo(path: Path, root: Path):
    from .data import read_image

    return SimpleNamespace(id=path.relative_to(root).as_posix(), image=read_image(path))


def adapt(data_path: str | Path, out: str | Path, profile: config.Profile, seed: int = 0,
          heldout_share: float = 0.2, anchor: float = NIGHT["anchor"], steps: int | None = None,
          max_side: int | None = None, model: str = "modnet", log=print) -> dict:
    """Fine-tune ``model`` (a shipped model: ``"modnet"`` or ``"u2netp"``) on the photos of ``data_path``
    (a folder, or a :class:`lowlight.data.PhotoFolder` already read) and write the report into ``out``
    (module docstring); returns the report's data (also ``report.json``). ``max_side``: the long side
    the held-out photos are scored at (default: the model's operating size,
    :data:`lowlight.models.OPERATING_SIDE`)."""
    from .data import PhotoFolder, scan_photo_folder
    from .models import OPERATING_SIDE, create_model
    from .training.data import FinetuneData, build_photo_finetune_set
    from .training.recipe import build_model, train

    prof = config.require_profile(profile, where="adapt")
    if model not in OPERATING_SIDE:
        raise ValueError(f"model: expected one of the shipped models {sorted(OPERATING_SIDE)}, got {model!r}")
    max_side = max_side or OPERATING_SIDE[model]
    out = Path(out)
    photos = data_path if isinstance(data_path, PhotoFolder) else scan_photo_folder(data_path, heldout_share=heldout_share)
    log(photos.describe())
    t0 = time.perf_counter()
    teacher = create_model(model).eval()
    train_set = build_photo_finetune_set(prof, photos, teacher=teacher, seed=seed, cache=out / "teacher_mattes.npz",
                                         log=log)
    train_set = train_set.with_normal(NIGHT["normal_fraction"])
    stages = night_stages(prof, anchor, steps, model=model)
    net = build_model(model, seed)
    results = train(net, stages, FinetuneData(prof, seed, signal="distill", train_set=train_set, val_set=[],
                                              teacher=model),
                    prof, out, seed, batch_size=prof.finetune.batch_size, num_workers=0, log=log)
    return report_on_heldout(out, prof, model, net, photos, train_set, stages, results, seed,
                             time.perf_counter() - t0, max_side=max_side, teacher=teacher, log=log)


def report_on_heldout(out: str | Path, profile: config.Profile, model: str, net, photos, train_set, stages, results,
                      seed: int, train_seconds: float, max_side: int | None = None, teacher=None, log=print) -> dict:
    """Score the shipped ``model`` (``teacher``, else built) and its fine-tuned ``net`` on the held-out
    photos of ``photos`` (a :class:`lowlight.data.PhotoFolder`) and write ``report.md``, ``report.html``,
    ``report_mattes.png`` and ``report.json`` into ``out``; returns the report's data. ``train_set``,
    ``stages`` and ``results``: what the fine-tune trained on and how (:func:`lowlight.training.train`).
    Used by :func:`adapt` and by ``python -m lowlight.training --data-path PHOTOS/``."""
    from .evaluation.people import score_people
    from .models import OPERATING_SIDE, create_model

    prof = config.require_profile(profile, where="report_on_heldout")
    out, t0 = Path(out), time.perf_counter()
    max_side = max_side or OPERATING_SIDE[model]
    held = [_photo(p, photos.root) for p in photos.heldout]
    net = getattr(net, "module", net)
    models = {"original": teacher if teacher is not None else create_model(model).eval(), "fine-tuned": net.eval()}
    records = score_people(models, held, seed=seed, max_side=max_side, outlines=False) if held else []
    report = {"model": model, "data_path": str(photos.root), "out": str(out), "profile": prof.name, "seed": seed,
              "train_photos": [str(p) for p in photos.train], "heldout_photos": [p.id for p in held],
              "skipped": [[str(p), why] for p, why in photos.skipped], "crops": len(train_set),
              "crop_size": prof.finetune.size, "normal_fraction": train_set.normal_fraction,
              "stages": [{"name": s.name, "train": s.train, "lr": s.lr, "steps": s.steps, "anchor": s.anchor,
                          "seconds": r.seconds} for s, r in zip(stages, results)],
              "train_seconds": train_seconds, "checkpoint": str(out / stages[-1].name / "last.pt"),
              "records": records, "max_side": max_side}
    report["eval_seconds"] = time.perf_counter() - t0
    _write_report(report, models, held, out, seed, max_side)
    log(f"report on {len(held)} held-out photo(s): {out / 'report.html'}")
    return report


def _write_report(report: dict, models, held, out: Path, seed: int, max_side: int) -> None:
    from .evaluation.people import DRIFT_LIMIT, people_examples
    from .viz.report import before_after_grid, figure_png

    figure = None
    if held:
        examples = people_examples(models, held[:4], seed=seed, max_side=max_side, outlines=False)
        figure = figure_png(before_after_grid(examples))
        atomic_write_bytes(out / "report_mattes.png", figure)
    blocks = _blocks(report, DRIFT_LIMIT, figure is not None)
    atomic_write_text(out / "report.md", _markdown(blocks))
    atomic_write_text(out / "report.html", _html(blocks, figure))
    atomic_write_json(out / "report.json", report)


def _mean(records, **match) -> float:
    vals = [r["sad"] if match.get("camera") != "daylight" else r["mad"] for r in records
            if all(r[k] == v for k, v in match.items())]
    return sum(vals) / len(vals) if vals else float("nan")


def _blocks(rep: dict, drift_limit: float, has_figure: bool) -> list[tuple]:
    """The report as blocks: ``("h", text)``, ``("p", text)``, ``("table", header, rows)``,
    ``("figure", alt)``, ``("code", text)``."""
    recs = rep["records"]
    st = rep["stages"]
    name = {"modnet": "MODNet", "u2netp": "U²-Netp"}.get(rep.get("model", "modnet"), rep.get("model"))
    blocks = [("h", f"Night fine-tune of {name} on {rep['data_path']}"),
              ("p", f"Trained on {len(rep['train_photos'])} photos ({rep['crops']} square crops of "
                    f"{rep['crop_size']} px, {rep['normal_fraction']:.0%} of the draws in daylight, the rest darkened by "
                    f"the course's simulator), targets: the original's daylight mattes (self-distillation). Profile "
                    f"{rep['profile']}, seed {rep['seed']}, {rep['train_seconds']:.0f} s of training and teacher "
                    f"mattes, {rep['eval_seconds']:.0f} s of evaluation."),
              ("table", ["stage", "trains", "learning rate", "steps", "L2-SP weight", "seconds"],
               [[s["name"], s["train"], f"{s['lr']:g}", str(s["steps"]), f"{s['anchor']:g}", f"{s['seconds']:.0f}"]
                for s in st])]
    if rep["skipped"]:
        blocks.append(("p", f"{len(rep['skipped'])} file(s) skipped: "
                            + "; ".join(f"{Path(p).name} ({why})" for p, why in rep["skipped"])))
    if not recs:
        blocks.append(("p", "No photo was held out (--heldout-share 0): nothing to report on unseen photos."))
    else:
        photos = rep["heldout_photos"]
        blocks += [("h2", "Daylight: does the fine-tune keep the original's mattes?"),
                   ("p", f"Mean |alpha difference| between the fine-tuned and the original model's mattes of each "
                         f"held-out daylight photo (0 = identical; the course's limit is {drift_limit})."),
                   ("table", ["held-out photo", "daylight drift", f"within {drift_limit}"],
                    [[p, f"{_mean(recs, photo=p, model='fine-tuned', camera='daylight'):.4f}",
                      "yes" if _mean(recs, photo=p, model="fine-tuned", camera="daylight") <= drift_limit else "NO"]
                     for p in photos])]
        for camera, what in (("simulator", "the training simulator (as a phone delivers it)"),
                             ("heldout", "a held-out camera the fine-tune never saw")):
            evs = sorted({r["ev"] for r in recs if r["camera"] == camera}, reverse=True)
            rows = []
            for p in photos:
                for ev in evs:
                    o = _mean(recs, photo=p, model="original", camera=camera, ev=ev)
                    f = _mean(recs, photo=p, model="fine-tuned", camera=camera, ev=ev)
                    rows.append([p, f"{ev:g}", f"{o:.2f}", f"{f:.2f}", f"{100 * (f / o - 1):+.0f} %" if o > 0 else "n/a"])
            blocks += [("h2", f"Dark inputs through {what}"),
                       ("p", "SAD (sum of |alpha - the original's daylight alpha| / 1000, whole photo at "
                             f"{rep['max_side']} px long side): lower is better."),
                       ("table", ["held-out photo", "EV", "original", "fine-tuned", "change"], rows)]
        blocks.append(("p", f"{len(photos)} held-out photo(s): per-photo values, not a statistical verdict. The "
                            "reference is the original's own daylight matte, not a true matte."))
    if has_figure:
        blocks += [("h2", "Before and after"), ("figure", "held-out photos: input, original's and fine-tuned matte")]
    blocks += [("h2", "Use it"),
               ("code", f"python -m lowlight.export --checkpoint {rep['checkpoint']} --out night.onnx\n"
                        "python -m lowlight.predict --onnx night.onnx --input NIGHT_PHOTOS/ --output mattes/")]
    return blocks


def _markdown(blocks) -> str:
    out = []
    for b in blocks:
        if b[0] == "h":
            out.append(f"# {b[1]}")
        elif b[0] == "h2":
            out.append(f"## {b[1]}")
        elif b[0] == "p":
            out.append(b[1])
        elif b[0] == "table":
            out += ["| " + " | ".join(b[1]) + " |", "|" + "---|" * len(b[1])]
            out += ["| " + " | ".join(r) + " |" for r in b[2]]
        elif b[0] == "figure":
            out.append(f"![{b[1]}](report_mattes.png)")
        elif b[0] == "code":
            out.append(f"```\n{b[1]}\n```")
        out.append("")
    return "\n".join(out)


def _html(blocks, figure: bytes | None) -> str:
    e = html.escape
    out = ["<!doctype html><html><head><meta charset='utf-8'><title>night fine-tune report</title>",
           "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}td,th{padding:2px 8px;"
           "border-bottom:1px solid #ddd;text-align:left}</style></head><body>"]
    for b in blocks:
        if b[0] in ("h", "h2"):
            out.append(f"<h{1 if b[0] == 'h' else 2}>{e(b[1])}</h{1 if b[0] == 'h' else 2}>")
        elif b[0] == "p":
            out.append(f"<p>{e(b[1])}</p>")
        elif b[0] == "table":
            out.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in b[1]) + "</tr>")
            out += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in b[2]]
            out.append("</table>")
        elif b[0] == "figure" and figure is not None:
            data = base64.b64encode(figure).decode("ascii")
            out.append(f"<img alt='{e(b[1])}' src='data:image/png;base64,{data}' style='max-width:100%'>")
        elif b[0] == "code":
            out.append(f"<pre>{e(b[1])}</pre>")
    out.append("</body></html>")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lowlight.adapt",
                                 description="Fine-tune MODNet (or U²-Netp) for night on a folder of your own photos (no labels) "
                                             "and write a report on held-out photos.")
    ap.add_argument("--data-path", required=True, help="a folder of ordinary photos (JPEG/PNG, nested folders allowed)")
    ap.add_argument("--out", default=None, help="run folder (default runs/<profile>/adapt/<folder name>)")
    ap.add_argument("--model", default="modnet", choices=["modnet", "u2netp"],
                    help="the shipped model to fine-tune (its daylight mattes are the targets)")
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--heldout-share", type=float, default=0.2, help="share of the photos kept for the report")
    ap.add_argument("--anchor", type=float, default=NIGHT["anchor"], help="L2-SP weight (0: none)")
    ap.add_argument("--steps", type=int, default=None, help="optimisation steps per stage (default: the profile's)")
    args = ap.parse_args(argv)

    from .data import PhotoFolderError, scan_photo_folder

    try:
        prof = config.get_profile(args.profile)
    except ValueError as exc:
        return cli_error(f"--profile: {exc}")
    if not 0 <= args.heldout_share < 1:
        return cli_error(f"--heldout-share {args.heldout_share}: expected a number in [0, 1)")
    if not 0 <= args.anchor < float("inf"):
        return cli_error(f"--anchor {args.anchor}: expected a finite number >= 0")
    if args.steps is not None and args.steps < 1:
        return cli_error(f"--steps {args.steps}: expected an integer >= 1")
    try:                                           # read the folder before anything is created
        photos = scan_photo_folder(args.data_path, heldout_share=args.heldout_share)
    except PhotoFolderError as exc:
        return cli_error(str(exc))
    out = Path(args.out) if args.out else config.RunLayout.of(prof).root / "adapt" / Path(args.data_path).name
    problem = writable_dir_problem(out, "--out")
    if problem:
        return cli_error(problem)
    err = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    with warnings.catch_warnings():
        warnings.showwarning = lambda message, *_a, **_k: err(f"warning: {message}")
        rep = adapt(photos, out, prof, seed=args.seed, anchor=args.anchor, steps=args.steps, model=args.model,
                    log=err)
    print(f"report: {out / 'report.html'} (and report.md); checkpoint: {rep['checkpoint']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
