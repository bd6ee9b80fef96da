"""Measuring models: parameters, MACs, latency, training throughput, peak memory (notebook 03).

Peak memory is measured in a fresh process (:mod:`._rss_child`), because ``tracemalloc``
does not see torch's allocations.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from .weights import onnx_conv_weights


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (notebook 03)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


@torch.no_grad()
def count_macs(model: nn.Module, *inputs) -> int:
    """Multiply-accumulates of one forward pass, counted by ``torch.utils.flop_counter``.

    Introduced in notebook 03. ``FlopCounterMode`` counts the matrix products of convolutions,
    linear layers, matmuls and attention (2 FLOPs per MAC, so MACs = FLOPs / 2); element-wise
    operations, normalisation and resampling are not counted.
    """
    from torch.utils.flop_counter import FlopCounterMode

    was = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter:
            model(*inputs)
    finally:
        model.train(was)
    return int(counter.get_total_flops()) // 2


def measure_latency(fn, *inputs, repeats: int = 5, warmup: int = 1) -> dict:
    """Wall-clock seconds of ``fn(*inputs)`` (a module is put in eval and inference mode).

    Introduced in notebook 03. Returns ``{"median_s", "min_s", "times_s"}``. Uses the current
    ``torch.get_num_threads()``; pass the same threads to everything you compare.
    """
    if isinstance(fn, nn.Module):
        fn.eval()
    times = []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            t0 = time.perf_counter()
            fn(*inputs)
            dt = time.perf_counter() - t0
            if i >= warmup:
                times.append(dt)
    return {"median_s": statistics.median(times), "min_s": min(times), "times_s": times}


def measure_train_step(model: nn.Module, batch_size: int = 8, size: int = 128, steps: int = 3,
                       warmup: int = 1, seed: int = 0) -> dict:
    """Training throughput of ``model`` (an RGB -> alpha network) on random data, CPU or GPU.

    Introduced in notebook 03. Runs ``warmup + steps`` full steps (forward, MSE loss, backward,
    Adam update) on a ``batch_size x 3 x size x size`` batch and returns
    ``{"samples_per_s", "step_s"}`` (median step). The model's parameters are changed:
    pass a throw-away copy.
    """
    g = torch.Generator().manual_seed(seed)
    dev = next(model.parameters()).device
    x = torch.rand(batch_size, 3, size, size, generator=g).to(dev)
    y = torch.rand(batch_size, 1, size, size, generator=g).to(dev)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    model.train()
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        loss = F.mse_loss(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    step = statistics.median(times)
    return {"samples_per_s": batch_size / step, "step_s": step}


def peak_rss_subprocess(kind: str, name: str, size: int = 512, threads: int = 2,
                        warmup: bool = False, timeout: float = 300.0) -> dict:
    """Peak resident memory of one batch-1 forward pass, measured in a fresh Python process.

    Introduced in notebook 03. ``kind``: ``"encoder"`` (``name`` = encoder name), ``"model"``
    (``name`` = a :func:`lowlight.models.create_model` name) or ``"onnx"`` (``name`` = path of an ONNX model, run by onnxruntime). The child builds
    the model and its input (and runs one warm-up pass if ``warmup``), resets the kernel's
    peak-RSS counter (``/proc/self/clear_refs``, Linux), runs one forward pass and reports the
    resident set size before it (``before_mb``) and the peak during it (``peak_mb``);
    ``forward_mb`` is the difference: the working memory of the forward pass. glibc's mmap
    threshold is fixed so that freed tensors leave the resident set. Where the counter cannot
    be reset, ``ru_maxrss`` is used instead (``method`` says which) and memory used while
    building the model may hide the forward's peak. ``tracemalloc`` would not see torch's
    allocations, hence a separate process and the kernel's own count.
    """
    import json

    if kind not in ("encoder", "model", "onnx"):
        raise ValueError(f"peak_rss_subprocess: kind must be 'encoder', 'model' or 'onnx', got {kind!r}")
    # a fixed mmap threshold stops glibc from keeping freed tensor memory resident, so that the
    # resident set follows the live tensors (glibc raises the threshold dynamically otherwise)
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072")
    proc = subprocess.run([sys.executable, "-m", "lowlight.models._rss_child", kind, str(name), str(int(size)), str(int(threads)),
                           str(int(warmup))],
                          capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"peak_rss_subprocess({kind!r}, {name!r}) failed:\n{proc.stderr[-2000:]}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["forward_mb"] = res["peak_mb"] - res["before_mb"]
    return res


def onnx_model_stats(path: str | os.PathLike, size: int = 512) -> dict:
    """Parameters and convolution MACs of an ONNX model for a (1, 3, size, size) input.

    Introduced in notebook 03 (MODNet's row of the encoder table). Parameters are the float
    initializers; MACs count every ``Conv`` (output elements x input channels per group x
    kernel area), with output shapes taken from one onnxruntime run -- the same convention as
    :func:`count_macs` for convolutions (MatMul/Gemm are added when present).
    """
    import numpy as np
    import onnx
    from onnx import numpy_helper

    from .. import assets

    model = onnx.load(str(path))
    params = sum(int(np.prod(t.dims)) for t in model.graph.initializer
                 if t.data_type == onnx.TensorProto.FLOAT)
    convs = onnx_conv_weights(path)
    x = np.random.default_rng(0).random((1, 3, size, size), dtype=np.float32)
    mm_nodes = [n for n in model.graph.node if n.op_type in ("MatMul", "Gemm")]
    outs = assets.onnx_run(path, {model.graph.input[0].name: x},
                           [c["output"] for c in convs] + [n.output[0] for n in mm_nodes])
    macs = 0
    for c in convs:
        o = outs[c["output"]]
        k = int(np.prod(c["weight"].shape[1:]))        # in_channels / group * kh * kw
        macs += int(np.prod(o.shape)) * k
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for n in mm_nodes:
        w = inits.get(n.input[1])
        if w is not None:
            macs += int(np.prod(outs[n.output[0]].shape)) * int(w.shape[0])
    return {"params": params, "macs": macs, "convs": len(convs)}
