"""Scaling up: streamed training throughput and distributed search speed-up.

Part 1 trains one AutoencoderTransformer on the MNIST test images for the same
number of epochs three ways and reports rows/second (rows seen per second of
training, epochs included):

- ``fit``: in memory, ``max_iter=epochs``;
- ``memmap``: a loop of ``partial_fit`` over chunks read from a ``numpy.memmap``
  of the same data on disk (one epoch per chunk, so one pass over the file per
  epoch);
- ``Incremental``: ``dask_ml.wrappers.Incremental`` over a dask array split into
  blocks of the same size (threads scheduler), ``partial_fit`` once per epoch.

Part 2 runs the same GridSearchCV serially in this process (``n_jobs=1``) and
with joblib's dask backend on a ``distributed.LocalCluster`` of 2 worker
processes (one thread each, torch at one thread), and reports the wall time
and speed-up (cluster start-up and worker warm-up excluded). A 1-worker
cluster is not timed: joblib then runs the fits in this process anyway.

Part 3 trains with ``distributed=True`` (DistributedDataParallel, gloo on
127.0.0.1) on 1 and 2 ranks, each rank a process with one torch thread, and
reports training samples/second (rows of X per second of the slowest rank's
``fit``, epochs included); a plain ``fit`` with the same per-rank batch and
one with the 2-rank global batch run in the 1-rank processes for reference.
Launches alternate between 1 and 2 ranks, ``--repeats`` times.

Each timing is the median of ``--repeats`` runs. Everything runs on the CPU.

    python benchmarks/bench_scaling.py            # full table (~2-3 min)
    python benchmarks/bench_scaling.py --quick    # smoke run, tiny sizes
    python benchmarks/bench_scaling.py --only-distributed   # part 3 only
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from _data import DEFAULT_MNIST_DIR, load_mnist_test
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV

from skae import AutoencoderTransformer


def make_estimator(max_iter=1, **params):
    return AutoencoderTransformer(
        16, hidden_layer_sizes=(128,), max_iter=max_iter, random_state=0, **params
    )


def time_fit(X, epochs):
    est = make_estimator(max_iter=epochs)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X)
    return time.perf_counter() - start, est


def time_memmap(mm, epochs, chunk):
    est = make_estimator()
    start = time.perf_counter()
    for _ in range(epochs):
        for i in range(0, mm.shape[0], chunk):
            est.partial_fit(mm[i : i + chunk])
    return time.perf_counter() - start, est


def time_incremental(Xd, epochs):
    import dask
    from dask_ml.wrappers import Incremental

    inc = Incremental(make_estimator(), shuffle_blocks=False)
    start = time.perf_counter()
    with dask.config.set(scheduler="threads"):
        for _ in range(epochs):
            inc.partial_fit(Xd)
    return time.perf_counter() - start, inc.estimator_


def _warm_up():
    """One tiny fit, so that torch's lazy start-up is not timed."""
    rng = np.random.RandomState(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        make_estimator(max_iter=2).fit(rng.rand(50, 784).astype(np.float32))


def time_search(X, n_workers, grid, max_iter, repeats):
    """Wall times of ``repeats`` searches on one cluster of ``n_workers``.

    ``n_workers=0`` is the serial search in this process (``n_jobs=1``). Note
    that joblib's dask backend on a 1-worker cluster also runs the fits in
    this process (one effective job means sequential execution), so a
    "1 worker" figure would not time a worker at all.
    """
    import joblib
    from distributed import Client, LocalCluster

    est = AutoencoderTransformer(hidden_layer_sizes=(64,), max_iter=max_iter, random_state=0)
    times = []
    if n_workers == 0:
        for _ in range(repeats):
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                GridSearchCV(est, grid, cv=3, n_jobs=1).fit(X)
            times.append(time.perf_counter() - start)
        return times
    with (
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            env={"OMP_NUM_THREADS": "1"},
        ) as cluster,
        Client(cluster) as client,
    ):
        # Warm the workers (torch import, first fit) before timing.
        client.run(_warm_up)
        for _ in range(repeats):
            start = time.perf_counter()
            with warnings.catch_warnings(), joblib.parallel_backend("dask"):
                warnings.simplefilter("ignore", ConvergenceWarning)
                GridSearchCV(est, grid, cv=3, n_jobs=-1).fit(X)
            times.append(time.perf_counter() - start)
    return times


DDP_BATCH = 128


def _ddp_worker(args):
    """One rank of part 3: time distributed (and, alone, plain) fits."""
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    X, _ = load_mnist_test(args.mnist_dir)
    X = np.ascontiguousarray(X[: args.ddp_rows])
    _warm_up()
    with warnings.catch_warnings():  # and the first DDP wrapping, gloo's first messages
        warnings.simplefilter("ignore", ConvergenceWarning)
        make_estimator(max_iter=1, distributed=True).fit(X[:256])
    world = dist.get_world_size()
    runs = {f"distributed=True, {world} rank(s)": dict(distributed=True, batch_size=DDP_BATCH)}
    if world == 1:
        runs["plain fit, 1 process"] = dict(batch_size=DDP_BATCH)
        runs["plain fit, 1 process, 2x batch"] = dict(batch_size=2 * DDP_BATCH)
    times = {}
    for name, params in runs.items():
        est = make_estimator(max_iter=args.ddp_epochs, **params)
        dist.barrier()
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X)
        elapsed = torch.tensor([time.perf_counter() - start], dtype=torch.float64)
        dist.all_reduce(elapsed, op=dist.ReduceOp.MAX)  # the slowest rank
        times[name] = (float(elapsed), -est.score(X))
    if dist.get_rank() == 0:
        print(json.dumps(times))
    dist.destroy_process_group()


def _launch_ranks(world, args):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
           "WORLD_SIZE": str(world), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, __file__, "--ddp-worker", "--mnist-dir", str(args.mnist_dir),
           "--ddp-rows", str(args.ddp_rows), "--ddp-epochs", str(args.ddp_epochs)]
    procs = [
        subprocess.Popen(cmd, env={**env, "RANK": str(r), "LOCAL_RANK": str(r)},
                         stdout=subprocess.PIPE, text=True)
        for r in range(world)
    ]
    outs = [p.communicate(timeout=900)[0] for p in procs]
    if any(p.returncode for p in procs):
        raise RuntimeError(f"a rank of the {world}-rank run failed")
    return json.loads(outs[0].strip().splitlines()[-1])


def part_distributed(args, repeats):
    rows, epochs = args.ddp_rows, args.ddp_epochs
    times = {}
    for _ in range(repeats):  # alternating launches, so drift hits both alike
        for world in (1, 2):
            for label, value in _launch_ranks(world, args).items():
                times.setdefault(label, []).append(value)
    print()
    print(f"Part 3: distributed=True (DDP, gloo, CPU, 1 thread per rank), {rows} MNIST rows, "
          f"784-128-16, {epochs} epoch(s), batch {DDP_BATCH} per rank, median of {repeats}")
    print(f"{'run':<34} {'batch':>6} {'seconds':>8} {'samples/s':>10} {'recon. error':>13}")
    for label, values in times.items():
        t = statistics.median(v[0] for v in values)
        batch = 2 * DDP_BATCH if "2 rank" in label or "2x" in label else DDP_BATCH
        error = values[-1][1]
        print(f"{label:<34} {batch:>6} {t:8.2f} {rows * epochs / t:10.0f} {error:13.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--mnist-dir", type=Path, default=DEFAULT_MNIST_DIR)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--skip-search", action="store_true", help="no part 2")
    parser.add_argument("--only-distributed", action="store_true", help="part 3 only")
    parser.add_argument("--ddp-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--ddp-rows", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--ddp-epochs", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if args.ddp_worker:
        return _ddp_worker(args)
    if args.ddp_rows is None:
        args.ddp_rows, args.ddp_epochs = (1_000, 1) if args.quick else (10_000, 3)
    if args.only_distributed:
        return part_distributed(args, args.repeats or (1 if args.quick else 3))
    import torch

    torch.set_num_threads(1)

    X, _ = load_mnist_test(args.mnist_dir)
    if args.quick:
        n_rows, epochs, chunk, repeats = 1_000, 1, 250, 1
        grid, search_rows, search_iter = {"n_components": [2, 4]}, 300, 2
    else:
        n_rows, epochs, chunk, repeats = 10_000, 3, 1_000, 3
        grid = {"n_components": [2, 8, 32], "alpha": [1e-4, 1e-2]}
        search_rows, search_iter = 2_000, 10
    repeats = args.repeats or repeats
    X = np.ascontiguousarray(X[:n_rows])
    _warm_up()

    import dask.array as da

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mnist.f32"
        mm = np.memmap(path, dtype=np.float32, mode="w+", shape=X.shape)
        mm[:] = X
        mm.flush()
        mm = np.memmap(path, dtype=np.float32, mode="r", shape=X.shape)
        Xd = da.from_array(X, chunks=(chunk, X.shape[1]))

        runs = {
            "fit (in memory)": lambda: time_fit(X, epochs),
            "memmap partial_fit": lambda mm=mm: time_memmap(mm, epochs, chunk),
            "dask-ml Incremental": lambda: time_incremental(Xd, epochs),
        }
        times = {name: [] for name in runs}
        errors = {}
        for _ in range(repeats):  # interleaved, so drift hits all alike
            for name, run in runs.items():
                elapsed, est = run()
                times[name].append(elapsed)
                errors[name] = -est.score(X)
        del mm

    print(
        f"Part 1: {n_rows} MNIST rows x {X.shape[1]}, model 784-128-16, {epochs} epoch(s), "
        f"chunks of {chunk} rows, median of {repeats}"
    )
    print(f"{'method':<22} {'seconds':>8} {'rows/s':>9} {'vs fit':>7} {'recon. error':>13}")
    base = statistics.median(times["fit (in memory)"])
    for name, ts in times.items():
        t = statistics.median(ts)
        print(
            f"{name:<22} {t:8.2f} {n_rows * epochs / t:9.0f} {base / t:7.2f} {errors[name]:13.2f}"
        )

    part_distributed(args, repeats)
    if args.skip_search:
        return
    Xs = X[:search_rows]
    n_fits = 3 * int(np.prod([len(v) for v in grid.values()]))
    print()
    print(
        f"Part 2: GridSearchCV, {n_fits} fits of 784-64-k on {search_rows} rows, "
        f"max_iter={search_iter}, joblib dask backend on a LocalCluster, "
        f"median of {repeats} on one cluster"
    )
    print(f"{'search':<34} {'seconds':>8} {'speed-up':>9}")
    search_times = {n: time_search(Xs, n, grid, search_iter, repeats) for n in (0, 2)}
    serial = statistics.median(search_times[0])
    labels = {0: "serial, in process (n_jobs=1)", 2: "2 dask worker processes"}
    for n_workers, ts in search_times.items():
        t = statistics.median(ts)
        print(f"{labels[n_workers]:<34} {t:8.2f} {serial / t:9.2f}")


if __name__ == "__main__":
    main()
