"""Child process of :func:`lowlight.models.measure.peak_rss_subprocess`: builds one model, resets
the kernel's peak-RSS counter, runs one forward pass and prints the memory as JSON.

Run as ``python -m lowlight.models._rss_child KIND NAME SIZE THREADS WARMUP``.
"""
import json
import resource
import sys

import torch

kind, name, size, threads, warmup = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(threads)


def status_mb(field):
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def reset_peak():
    try:   # Linux >= 4.0: writing 5 resets the peak RSS (VmHWM) to the current RSS
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return status_mb("VmHWM") is not None
    except OSError:
        return False


if kind == "onnx":
    import numpy as np, onnxruntime as ort
    o = ort.SessionOptions(); o.intra_op_num_threads = threads; o.inter_op_num_threads = 1
    s = ort.InferenceSession(name, sess_options=o, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((1, 3, size, size), dtype=np.float32)
    run = lambda: s.run(None, {s.get_inputs()[0].name: x})
else:
    from lowlight.models import create_encoder, create_model
    m = (create_model(name) if kind == "model" else create_encoder(name)).eval()
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    def run():
        with torch.inference_mode():
            m(x)
if warmup:
    run()
exact = reset_peak()
before = status_mb("VmRSS") if exact else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
run()
peak = status_mb("VmHWM") if exact else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
print(json.dumps({"before_mb": before, "peak_mb": peak,
                  "method": "VmHWM reset by /proc/self/clear_refs" if exact else "ru_maxrss"}))
