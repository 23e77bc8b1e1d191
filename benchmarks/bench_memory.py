"""Peak memory of ``fit`` on MNIST-sized data, against the size of the data.

Each configuration runs in a fresh child process: warm up (one tiny fit, so
that torch's kernels and allocator are loaded), build the training matrix
(the MNIST test images tiled to ``--n-samples`` rows of 784 pixels), reset
the kernel's peak-RSS counter (``/proc/self/clear_refs``), fit for one
epoch, and read the peak resident set size (``VmHWM``). The table reports
the extra peak memory of ``fit`` in MB and as a multiple of one float32 copy
of the data (what the network trains on): about 1.0 means the data was
copied once onto the (CPU) device and nothing else of its size was held.
On a CUDA machine the GPU columns give ``torch.cuda.max_memory_allocated``
during ``fit`` the same way.

    python benchmarks/bench_memory.py            # MNIST-sized (60,000 x 784)
    python benchmarks/bench_memory.py --quick    # smoke run, tiny sizes

Linux only for the host columns (``/proc``); elsewhere they read "n/a".
"""

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CONFIGS = [
    # (estimator, input dtype, extra parameters)
    ("AutoencoderTransformer", "uint8", {}),
    ("AutoencoderTransformer", "float32", {}),
    ("AutoencoderTransformer", "float64", {}),
    ("AutoencoderTransformer", "float32", {"early_stopping": True}),
    ("DenoisingAE", "float32", {}),
    ("ContractiveAE", "float32", {}),
    ("VariationalAE", "float32", {}),
    ("StackedAE", "float32", {"pretrain_max_iter": 1}),
]
QUICK_CONFIGS = CONFIGS[:1]


def _rss_kb(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # Linux >= 4.0: reset VmHWM to the current RSS
        return True
    except OSError:
        return False


def child(cfg):
    """Measure one configuration; print one JSON line."""
    import torch
    from _data import load_mnist_test

    import skae

    torch.set_num_threads(cfg["threads"])
    warnings.simplefilter("ignore")
    cls = getattr(skae, cfg["estimator"])
    params = dict(
        n_components=2,
        hidden_layer_sizes=(64,),
        max_iter=1,
        random_state=0,
        device=cfg["device"],
        **cfg["params"],
    )
    images, _ = load_mnist_test(cfg["mnist_dir"])
    cls(**params).fit(images[:256])  # warm-up
    reps = -(-cfg["n_samples"] // len(images))
    X = np.tile((images * 255).round().astype(np.uint8), (reps, 1))[: cfg["n_samples"]]
    if cfg["dtype"] != "uint8":
        X = (X.astype(cfg["dtype"]) / 255).astype(cfg["dtype"], copy=False)
    del images
    cuda = cfg["device"].startswith("cuda")
    est = cls(**params)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        gpu_before = torch.cuda.memory_allocated()
    rss_before = _rss_kb("VmRSS")
    reset = _reset_peak()
    start = time.perf_counter()
    est.fit(X)
    seconds = time.perf_counter() - start
    peak = _rss_kb("VmHWM") if reset else None
    out = {
        "input_mb": X.nbytes / 2**20,
        "f32_mb": X.size * 4 / 2**20,
        "host_extra_mb": None if peak is None else (peak - rss_before) / 1024,
        "seconds": seconds,
    }
    if cuda:
        torch.cuda.synchronize()
        out["gpu_extra_mb"] = (torch.cuda.max_memory_allocated() - gpu_before) / 2**20
    print(json.dumps(out))


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--mnist-dir", default=None)
    parser.add_argument("--n-samples", type=int, default=60000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="'cpu' or 'cuda'")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        sys.path.insert(0, str(HERE))
        child(json.loads(args.child))
        return None

    n_samples = 2000 if args.quick else args.n_samples
    configs = QUICK_CONFIGS if args.quick else CONFIGS
    print(
        f"fit(X) for one epoch, X: {n_samples} x 784 MNIST pixels, "
        f"device={args.device}, "
        "hidden_layer_sizes=(64,), batch_size='auto'"
    )
    gpu = args.device.startswith("cuda")
    head = f"{'estimator':<24}{'extra':<22}{'X dtype':>8}{'X MB':>8}{'f32 MB':>8}"
    head += f"{'host +MB':>10}{'x f32':>7}" + (
        f"{'GPU +MB':>10}{'x f32':>7}" if gpu else ""
    )
    print(head)
    rows = []
    # A fixed mmap threshold makes glibc return every large block to the
    # system when it is freed, so the warm-up's freed memory cannot hide
    # the allocations of the measured fit.
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(args.threads),
        "MALLOC_MMAP_THRESHOLD_": "65536",
    }
    for name, dtype, params in configs:
        cfg = dict(
            estimator=name,
            dtype=dtype,
            params=params,
            n_samples=n_samples,
            threads=args.threads,
            device=args.device,
            mnist_dir=args.mnist_dir,
        )
        result = subprocess.run(
            [sys.executable, __file__, "--child", json.dumps(cfg)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode:
            raise RuntimeError(f"{name} {dtype}: {result.stderr[-2000:]}")
        r = json.loads(result.stdout.strip().splitlines()[-1])
        extra = ",".join(f"{k}={v}" for k, v in params.items()) or "-"
        host = r["host_extra_mb"]
        line = (
            f"{name:<24}{extra:<22}{dtype:>8}{r['input_mb']:>8.1f}{r['f32_mb']:>8.1f}"
        )
        line += (
            f"{host:>10.1f}{host / r['f32_mb']:>7.2f}"
            if host is not None
            else f"{'n/a':>10}{'n/a':>7}"
        )
        if gpu:
            line += f"{r['gpu_extra_mb']:>10.1f}{r['gpu_extra_mb'] / r['f32_mb']:>7.2f}"
        print(line)
        rows.append((name, extra, dtype, r))
    return rows


if __name__ == "__main__":
    main()
