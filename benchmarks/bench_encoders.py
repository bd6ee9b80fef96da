"""The encoder swap's cost table (notebook 03): CV-UNet with MobileNetV2, ConvNeXt-T and Swin-T,
and MODNet (the course's pretrained original, native PyTorch), side by side on the CPU.

Per model, batch 1, a ``size`` x ``size`` input (512 by default, the article's crop):

* **parameters** of the encoder (MODNet: its MobileNetV2 backbone, 320->1280 head included) and
  of the whole network, and the fp32 **weights** in MiB;
* **MACs** of one forward pass (:func:`lowlight.models.count_macs`; the encoder's and the total);
* **CPU latency**: median and best of ``repeats`` runs (:func:`lowlight.models.measure_latency`),
  *interleaved* -- one run of every model per round -- so that load from other processes hits
  all models alike; torch and onnxruntime get the same ``threads``;
* **forward working memory** (MiB): the rise of the resident set during one forward pass, in a
  fresh process, after one warm-up pass (:func:`lowlight.models.peak_rss_subprocess` with
  ``warmup=True``), so one-time allocations of the first call are not counted;
* **largest activation** (MiB, and the stride it lives at): the largest tensor a module of the
  network takes or returns during that forward pass -- what a batch-1 forward's working memory
  is made of (a few such tensors are alive at once);
* **training throughput** (samples/s) at the profile's crop size and batch
  (:func:`lowlight.models.measure_train_step`: forward, MSE, backward, Adam), median of
  ``train_rounds`` interleaved rounds.

``thread_check`` adds one measurement that the course's other numbers need: the training step of
CV-UNet-MobileNetV2 with 1 thread and with ``thread_check`` threads, alternated, so a rate
measured here can be set beside notebook 06's (which trains with the profile's 2 threads).

MODNet's ONNX export (run by onnxruntime) gets a latency row for reference; its parameters and
MACs come from :func:`lowlight.models.onnx_model_stats` (the same counting convention).

Run: ``python -m benchmarks encoders`` (defaults: 512², 1 thread, 7 repeats) or
``python -m benchmarks.bench_encoders --size 512 --threads 1 --repeats 7 --json out.json``.
Notebook 03 calls :func:`run` and shows :func:`markdown_table`.
"""
from __future__ import annotations

import argparse
import json
import statistics

#: the table's rows: :data:`lowlight.models.MODELS` names
MODEL_NAMES = ("cvunet", "cvunet_convnext", "cvunet_swin", "modnet")
ONNX_ROW = "modnet_onnx"
LABELS = {"cvunet": "CV-UNet, MobileNetV2", "cvunet_convnext": "CV-UNet, ConvNeXt-T",
          "cvunet_swin": "CV-UNet, Swin-T", "modnet": "MODNet (native PyTorch)",
          ONNX_ROW: "MODNet (ONNX, onnxruntime)"}
MIB = 2 ** 20


def _build(name: str):
    from lowlight import models

    # speed and size do not depend on the weights; MODNet gets its real ones (it is the reference)
    return models.create_model(name, pretrained=(name == "modnet")).eval()


def _encoder(net):
    return getattr(net, "encoder", None) or net.backbone


def largest_activation(net, x) -> dict:
    """The largest feature map any leaf module of ``net`` takes or returns in one forward pass of
    a square ``x`` (side a multiple of 32): ``{"mib": size in MiB, "stride": input side / map
    side, "module": its name}``. Tensors that are not feature maps (attention matrices of
    Swin's windows) are not counted."""
    import torch

    best = {"bytes": 0, "stride": None, "module": None}
    side = x.shape[-1]

    sides = {side // 2 ** k: 2 ** k for k in range(6)}   # feature sides at strides 1 ... 32

    def stride_of(shape):
        # NCHW (CNNs) or NHWC (Swin, ConvNeXt's MLPs): two neighbouring dims of a feature side
        for d in (2, 1):
            if shape[d] == shape[d + 1] and shape[d] in sides:
                return sides[shape[d]]
        return None

    def visit(name, tensors):
        for t in tensors:
            if isinstance(t, torch.Tensor) and t.ndim == 4:
                nbytes = t.numel() * t.element_size()
                stride = stride_of(t.shape)
                if stride is not None and nbytes > best["bytes"]:
                    best.update(bytes=nbytes, stride=stride, module=name)

    hooks = [m.register_forward_hook(lambda mod, inp, out, n=n: visit(n, list(inp) + (
        list(out) if isinstance(out, (list, tuple)) else [out])))
        for n, m in net.named_modules() if not list(m.children())]
    try:
        with torch.inference_mode():
            net(x)
    finally:
        for h in hooks:
            h.remove()
    return {"mib": best["bytes"] / MIB, "stride": best["stride"], "module": best["module"]}


def run(size: int = 512, threads: int = 1, repeats: int = 7, train_size: int = 128, train_batch: int = 8,
        train_steps: int = 3, train_rounds: int = 2, memory: bool = True, onnx: bool = True,
        thread_check: int | None = 2, names=MODEL_NAMES, progress=print) -> dict:
    """Measure every model of ``names`` (module docstring); returns ``{"config", "rows", "threads"}``.

    ``progress``: a function given one short line per phase (``None``: silent).
    """
    import time

    import numpy as np
    import torch

    from lowlight import assets, models

    say = progress or (lambda *_: None)
    t_start = time.perf_counter()
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
        nets = {}
        rows = {}
        for name in names:
            torch.manual_seed(0)
            net = nets[name] = _build(name)
            enc = _encoder(net)
            act = largest_activation(net, x)
            rows[name] = dict(
                label=LABELS.get(name, name),
                params_enc=models.count_parameters(enc), params=models.count_parameters(net),
                gmacs_enc=models.count_macs(enc, x) / 1e9,
                gmacs=models.count_macs(net, x) / 1e9,
                largest_act_mib=act["mib"], largest_act_stride=act["stride"], largest_act_module=act["module"])
        fns = dict(nets)
        if onnx:
            import onnxruntime as ort

            path = assets.fetch("modnet")
            stats = models.onnx_model_stats(path, size=size)
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
            sess = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
            feed = {sess.get_inputs()[0].name: (x.numpy() * 2 - 1).astype(np.float32)}
            fns[ONNX_ROW] = lambda: sess.run(None, feed)
            rows[ONNX_ROW] = dict(label=LABELS[ONNX_ROW], params_enc=None, params=stats["params"], gmacs_enc=None,
                                  gmacs=stats["macs"] / 1e9, largest_act_mib=None, largest_act_stride=None,
                                  largest_act_module=None)

        say(f"latency: {repeats} interleaved rounds of {len(fns)} models at {size}x{size}, {threads} thread(s)")
        times = {k: [] for k in fns}
        for k, fn in fns.items():      # one warm-up each
            models.measure_latency(fn, *((x,) if k in nets else ()), repeats=1, warmup=0)
        for _ in range(repeats):
            for k, fn in fns.items():
                times[k] += models.measure_latency(fn, *((x,) if k in nets else ()), repeats=1, warmup=0)["times_s"]
        for k, ts in times.items():
            rows[k].update(median_s=statistics.median(ts), best_s=min(ts), times_s=ts)

        if memory:
            say(f"memory: {len(names)} fresh processes, one warm forward pass each")
            for name in names:
                r = models.peak_rss_subprocess("model", name, size, threads, warmup=True)
                rows[name].update(mem_mib=r["forward_mb"], rss_before_mib=r["before_mb"])

        if train_rounds:
            say(f"training: {train_rounds} round(s) x {train_steps} steps, {train_size}x{train_size}, "
                f"batch {train_batch}, {threads} thread(s)")
            rates = {name: [] for name in names}
            for _ in range(train_rounds):
                for name in names:
                    torch.manual_seed(0)
                    net = _build(name)     # a throw-away copy: the step changes the weights
                    rates[name].append(models.measure_train_step(net, batch_size=train_batch, size=train_size,
                                                                 steps=train_steps)["samples_per_s"])
            for name, r in rates.items():
                rows[name]["train"] = statistics.median(r)

        scaling = None
        if thread_check and "cvunet" in names:
            say(f"threads: CV-UNet-MobileNetV2 training step, 1 vs {thread_check} threads, alternated")
            per = {1: [], thread_check: []}
            for _ in range(max(1, train_rounds) + 1):
                for t in per:
                    torch.set_num_threads(t)
                    torch.manual_seed(0)
                    per[t].append(models.measure_train_step(_build("cvunet"), batch_size=train_batch,
                                                            size=train_size, steps=train_steps)["samples_per_s"])
            torch.set_num_threads(threads)
            scaling = {str(t): statistics.median(v) for t, v in per.items()}
    finally:
        torch.set_num_threads(prev_threads)
    cfg = dict(size=size, threads=threads, repeats=repeats, train_size=train_size, train_batch=train_batch,
               train_steps=train_steps, train_rounds=train_rounds, memory=memory, torch=torch.__version__,
               seconds=round(time.perf_counter() - t_start, 1))
    return {"config": cfg, "rows": rows, "threads": scaling}


def _fmt(v, f):
    return "–" if v is None else format(v, f)


def markdown_table(result: dict) -> str:
    """The table of :func:`run`'s result, as GitHub markdown."""
    c, rows = result["config"], result["rows"]
    head = (f"| model at {c['size']}², {c['threads']} thread(s) | encoder params (M) | total params (M) | "
            f"weights (MiB) | encoder GMACs | total GMACs | CPU latency median / best (s) | "
            f"forward working memory (MiB) | largest activation (MiB @ stride) | "
            f"training (samples/s, {c['train_size']}², batch {c['train_batch']}) |")
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows.values():
        act = "–" if r.get("largest_act_mib") is None else f"{r['largest_act_mib']:.0f} @ {r['largest_act_stride']}"
        pe = r["params_enc"] and r["params_enc"] / 1e6
        lines.append(f"| {r['label']} | {_fmt(pe, '.2f')} | {r['params'] / 1e6:.2f} | {r['params'] * 4 / MIB:.1f} | "
                     f"{_fmt(r['gmacs_enc'], '.2f')} | {r['gmacs']:.2f} | {r['median_s']:.3f} / {r['best_s']:.3f} | "
                     f"{_fmt(r.get('mem_mib'), '.0f')} | {act} | {_fmt(r.get('train'), '.1f')} |")
    return "\n".join(lines)


def save(result: dict, path) -> None:
    from lowlight.io import atomic_write_text

    atomic_write_text(path, json.dumps(result, indent=1) + "\n")


def main(size: int = 512, threads: int = 1, repeats: int = 7, memory: bool = True, json_path=None, **kw) -> dict:
    res = run(size=size, threads=threads, repeats=repeats, memory=memory, **kw)
    print(markdown_table(res))
    if res["threads"]:
        print("CV-UNet-MobileNetV2 training, samples/s by thread count:",
              {t: round(v, 1) for t, v in res["threads"].items()})
    print(f"({res['config']['seconds']:.0f} s)")
    if json_path:
        save(res, json_path)
    return res


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--train-size", type=int, default=128)
    ap.add_argument("--train-batch", type=int, default=8)
    ap.add_argument("--no-memory", action="store_true", help="skip the fresh-process memory measurement")
    ap.add_argument("--json", default=None, help="also write the result as JSON here")
    a = ap.parse_args()
    main(size=a.size, threads=a.threads, repeats=a.repeats, memory=not a.no_memory, json_path=a.json,
         train_size=a.train_size, train_batch=a.train_batch)
