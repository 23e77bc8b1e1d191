"""Small tabular data and parallel searches: where scikit-learn users spend time.

Four parts, everything on the CPU, in one process, each timing the median of
``--repeats`` interleaved runs (so drift and other jobs hit every side alike).
Wall time *and* process CPU time are reported: on a loaded machine the wall
time of a one-thread fit is mostly waiting, and the CPU time ratio is the
more stable figure (it is not meaningful for the parallel parts).

1. ``epoch``: per-epoch fit time (whole fit / epochs, set-up included) of
   ``AutoencoderTransformer(n_components=2, hidden_layer_sizes=(100,))``
   (a 64-100-2-100-64 network on digits, 4-100-2-100-4 on iris) against
   ``MLPRegressor(hidden_layer_sizes=(100, 2, 100))`` fitted on ``(X, X)`` and
   a plain PyTorch loop over the same torch module, same epochs, torch on one
   thread, both stopping rules disabled (every fit runs all epochs). ``skae
   autograd`` is the same skae fit with the hand-written step
   (:mod:`skae._fast_step`) switched off, so that its share shows.
2. ``search``: a 12-fit ``GridSearchCV`` on digits with ``n_jobs=1``, then
   ``n_jobs=2`` (loky processes; the worker pool is started and warmed up
   before timing), joblib's threading backend with 2 jobs, and joblib's dask
   backend on a ``LocalCluster`` of 2 one-thread worker processes (``--dask``;
   workers started and warmed up before timing). The torch threads each fit
   ran with are reported too.
3. ``union``: scikit-learn's ``plot_feature_union`` example (iris, a
   FeatureUnion inside a GridSearchCV) with ``PCA`` and with
   ``AutoencoderTransformer`` in the PCA's place (default settings).
4. The load average (``os.getloadavg``) before and after, so that a reader
   knows how far to trust the figures.

    python benchmarks/bench_small_data.py              # full (several minutes)
    python benchmarks/bench_small_data.py --dask       # and the dask search
    python benchmarks/bench_small_data.py --quick      # smoke run, tiny sizes
"""

import argparse
import os
import statistics
import time
import warnings

import numpy as np
import torch
from sklearn.datasets import load_digits, load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.neural_network import MLPRegressor

from skae import AutoencoderTransformer


def _quiet():
    warnings.simplefilter("ignore", ConvergenceWarning)


def _timed(fn):
    """(wall seconds, process CPU seconds) of ``fn()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def skae_fit(X, epochs):
    est = AutoencoderTransformer(
        n_components=2, hidden_layer_sizes=(100,), max_iter=epochs, tol=0.0,
        n_iter_no_change=epochs + 1, random_state=0,
    )
    with warnings.catch_warnings():
        _quiet()
        est.fit(X)
    return est


def skae_autograd_fit(X, epochs):
    """:func:`skae_fit` through autograd: the net finds no fast step plan."""
    from skae import _net

    plan = _net.fast_step_plan
    _net.fast_step_plan = lambda net: None
    try:
        return skae_fit(X, epochs)
    finally:
        _net.fast_step_plan = plan


def mlp_fit(X, epochs):
    est = MLPRegressor(
        hidden_layer_sizes=(100, 2, 100), max_iter=epochs, tol=0.0,
        n_iter_no_change=epochs + 1, random_state=0,
    )
    with warnings.catch_warnings():
        _quiet()
        est.fit(X, X)
    return est


def torch_loop(X, epochs, batch_size=200):
    """The loop a PyTorch user writes for the same module and optimiser."""
    torch.manual_seed(0)
    est = AutoencoderTransformer(n_components=2, hidden_layer_sizes=(100,))
    module = est._build_module(X.shape[1])
    X_t = torch.tensor(X, dtype=torch.float32)
    X_t = (X_t - X_t.mean(0)) / X_t.std(0).clamp_min(1e-12)
    opt = torch.optim.Adam(module.parameters(), lr=1e-3)
    n = len(X_t)
    bs = min(batch_size, n)
    for _ in range(epochs):
        perm = torch.randperm(n)
        for start in range(0, n, bs):
            xb = X_t[perm[start : start + bs]]
            opt.zero_grad(set_to_none=True)
            loss = (module(xb)[0] - xb).pow(2).sum(1).mean()
            loss.backward()
            opt.step()


def part_epoch(datasets, epochs, repeats):
    print(f"Part 1: per-epoch fit time, {epochs} epochs, torch on 1 thread, median of {repeats}")
    print(f"{'data':<7} {'side':<13} {'wall ms/ep':>10} {'cpu ms/ep':>10} "
          f"{'wall vs MLP':>11} {'cpu vs MLP':>10}")
    sides = {"skae": skae_fit, "skae autograd": skae_autograd_fit,
             "MLPRegressor": mlp_fit, "torch loop": torch_loop}
    from skae import _net

    if not hasattr(_net, "fast_step_plan"):  # a skae without the fast step
        del sides["skae autograd"]
    for name, X in datasets.items():
        times = {side: [] for side in sides}
        for fn in sides.values():  # one untimed run each (lazy start-up)
            fn(X, 2)
        for _ in range(repeats):
            for side, fn in sides.items():
                times[side].append(_timed(lambda fn=fn, X=X: fn(X, epochs)))
        med = {s: [statistics.median(t[i] for t in ts) * 1e3 / epochs for i in (0, 1)]
               for s, ts in times.items()}
        for side, (wall, cpu) in med.items():
            ref = med["MLPRegressor"]
            print(f"{name:<7} {side:<13} {wall:10.2f} {cpu:10.2f} "
                  f"{wall / ref[0]:11.2f} {cpu / ref[1]:10.2f}")


# doc/scaling.rst: glibc's eager trimming (dask's nanny default) costs page
# faults per fit; a 16 MiB threshold brings them back to a plain process's.
_WORKER_ENV = {"OMP_NUM_THREADS": "1", "MALLOC_TRIM_THRESHOLD_": str(16 * 2**20)}
_QUIET_DASK = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.admin.system-monitor.interval": "1s",
}


def _search(X, n_jobs, max_iter, backend=None):
    import joblib

    est = AutoencoderTransformer(hidden_layer_sizes=(100,), max_iter=max_iter, random_state=0)
    search = GridSearchCV(est, {"n_components": [2, 4, 8, 16]}, cv=3, n_jobs=n_jobs)
    with warnings.catch_warnings():
        _quiet()
        if backend is None:
            return search.fit(X)
        with joblib.parallel_backend(backend):
            return search.fit(X)


def _threads_seen():
    """torch's thread count in this process, as a fit inside it would see it."""
    return torch.get_num_threads()


def part_search(X, max_iter, repeats, with_dask):
    print(f"Part 2: GridSearchCV, 12 fits (4 candidates x 3 folds) on {X.shape}, "
          f"max_iter={max_iter}, median of {repeats}")
    import joblib
    from joblib import Parallel, delayed

    runs = {
        "n_jobs=1": lambda: _search(X, 1, max_iter),
        "n_jobs=2 (loky)": lambda: _search(X, 2, max_iter),
        "n_jobs=2 (threads)": lambda: _search(X, 2, max_iter, "threading"),
    }
    _search(X, 2, max_iter)  # start and warm the loky workers
    loky_threads = Parallel(n_jobs=2)(delayed(_threads_seen)() for _ in range(2))
    times = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            times[name].append(_timed(run)[0])
    threads = {"n_jobs=1": [torch.get_num_threads()], "n_jobs=2 (loky)": loky_threads,
               "n_jobs=2 (threads)": ["cpu_count // 2 per fit"]}
    if with_dask:
        import dask
        from distributed import Client, LocalCluster

        # dask's statistical profiler samples every task thread every 10 ms
        # (``distributed.worker.profile``), taking the GIL from a fit made of
        # many small torch calls: measured on this search (max_iter=200,
        # quiet machine, serial on one torch thread) 1.42x with it, 1.58x
        # without, 1.60x also with _WORKER_ENV. _QUIET_DASK also slows the
        # event loops' 20 ms ticks and 100-500 ms monitors, which kept an idle
        # 2-worker cluster at 6.5-7% of a core (1.3-1.7% with it), CPU the
        # fits share on 2 cores. doc/scaling.rst recommends these settings;
        # the workers inherit the config.
        with (
            dask.config.set(_QUIET_DASK),
            LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                         dashboard_address=None, env=_WORKER_ENV) as cluster,
            Client(cluster) as client,
        ):
            client.run(lambda: _search(X[:60], 1, 1))  # warm the workers
            profiled = client.run(lambda: dask.config.get("distributed.worker.profile.enabled"))
            assert not any(profiled.values()), profiled
            threads["2 dask workers"] = list(client.run(_threads_seen).values())
            times["2 dask workers"] = [
                _timed(lambda: _search(X, -1, max_iter, "dask"))[0] for _ in range(repeats)
            ]
    serial = statistics.median(times["n_jobs=1"])
    print(f"{'search':<20} {'wall s':>8} {'speed-up':>9}  torch threads")
    for name, ts in times.items():
        t = statistics.median(ts)
        print(f"{name:<20} {t:8.2f} {serial / t:9.2f}  {threads[name]}")
    joblib.externals.loky.get_reusable_executor().shutdown(wait=True)


def feature_union_search(transformer, X, y, grid):
    """scikit-learn's ``plot_feature_union`` example with ``transformer``."""
    from sklearn.feature_selection import SelectKBest
    from sklearn.pipeline import FeatureUnion, Pipeline
    from sklearn.svm import SVC

    union = FeatureUnion([("reduce", transformer), ("univ_select", SelectKBest(k=1))])
    pipe = Pipeline([("features", union), ("svm", SVC(kernel="linear"))])
    with warnings.catch_warnings():
        _quiet()
        return GridSearchCV(pipe, param_grid=grid, verbose=0).fit(X, y)


def part_union(repeats, quick):
    from sklearn.decomposition import PCA

    X, y = load_iris(return_X_y=True)
    grid = {
        "features__reduce__n_components": [1, 2] if quick else [1, 2, 3],
        "features__univ_select__k": [1] if quick else [1, 2],
        "svm__C": [1] if quick else [0.1, 1, 10],
    }
    n_fits = 5 * int(np.prod([len(v) for v in grid.values()])) + 1
    sides = {
        "PCA": lambda: PCA(),
        "AutoencoderTransformer": lambda: AutoencoderTransformer(
            random_state=0, **({"max_iter": 5} if quick else {})),
    }
    print(f"Part 3: plot_feature_union on iris, {n_fits} fits per search, median of {repeats}")
    times, scores = {s: [] for s in sides}, {}
    for _ in range(repeats):
        for side, make in sides.items():
            holder = {}
            times[side].append(_timed(lambda make=make, holder=holder: holder.setdefault(
                "s", feature_union_search(make(), X, y, grid))))
            scores[side] = holder["s"].best_score_
    med = {s: [statistics.median(t[i] for t in ts) for i in (0, 1)] for s, ts in times.items()}
    base = med["PCA"]
    print(f"{'transformer':<24} {'wall s':>8} {'cpu s':>8} {'wall vs PCA':>11} "
          f"{'cpu vs PCA':>10} {'best CV accuracy':>17}")
    for side, (wall, cpu) in med.items():
        print(f"{side:<24} {wall:8.2f} {cpu:8.2f} {wall / base[0]:11.1f} {cpu / base[1]:10.1f} "
              f"{scores[side]:17.3f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--parts", default="epoch,search,union",
                        help="comma-separated subset of epoch,search,union")
    parser.add_argument("--dask", action="store_true", help="also time 2 dask workers")
    args = parser.parse_args()
    torch.set_num_threads(1)  # part 1; the searches set their own
    repeats = args.repeats or (1 if args.quick else 5)
    parts = set(args.parts.split(","))
    print(f"load average before: {os.getloadavg()}, {os.cpu_count()} CPUs")
    digits = load_digits().data
    iris = load_iris().data
    if "epoch" in parts:
        part_epoch({"digits": digits, "iris": iris}, 3 if args.quick else 100, repeats)
        print()
    if "search" in parts:
        torch.set_num_threads(os.cpu_count())  # a user's default process
        # max_iter=200 is the estimator's default, as in the search.
        part_search(digits[:300] if args.quick else digits, 2 if args.quick else 200,
                    repeats, args.dask)
        print()
    if "union" in parts:
        part_union(repeats, args.quick)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
