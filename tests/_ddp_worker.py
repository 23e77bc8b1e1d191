"""One rank of the multi-process tests of ``distributed=True`` (test_distributed.py).

Run by :func:`launch` as ``world`` processes with torchrun's environment
(``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR=127.0.0.1``,
``MASTER_PORT``). Reads a JSON list of cases, fits each with
``distributed=True`` on the gloo backend, and writes per rank and case an
``.npz`` of the fitted module's state and history, or the error it raised.
"""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(cases, out_dir, world=2, timeout=240, pg_timeout=60):
    """Run the cases on ``world`` ranks; return each rank's (returncode, stderr)."""
    out_dir = Path(out_dir)
    (out_dir / "cases.json").write_text(json.dumps(cases))
    repo = str(Path(__file__).resolve().parents[1])
    env = {
        **os.environ,
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(free_port()),
        "WORLD_SIZE": str(world),
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([repo, os.environ.get("PYTHONPATH", "")]),
        "SKAE_PG_TIMEOUT": str(pg_timeout),
    }
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, str(out_dir)],
            env={**env, "RANK": str(r), "LOCAL_RANK": str(r)},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for r in range(world)
    ]
    deadline, results = time.monotonic() + timeout, []
    for p in procs:
        try:
            _, err = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise AssertionError(f"ranks still running after {timeout} s (deadlock?)") from None
        results.append((p.returncode, err))
    return results


def _run_case(case, rank, out_dir):
    import contextlib
    import io
    import pickle
    import warnings

    import numpy as np
    import torch

    import skae

    X = np.load(case["data"], mmap_mode="r" if case.get("memmap") else None)
    if case.get("bad_rank") == rank:
        X = np.array(X)
        if case["bad"] == "nan":
            X[0, 0] = np.nan
        else:  # fewer rows than the other ranks
            X = X[:-3]
    y = np.load(case["y"]) if case.get("y") else None
    import skae._modules

    standard_normal = skae._modules.standard_normal
    if case.get("zero_eps"):  # the VAE's draws, made deterministic (this case only)
        skae._modules.standard_normal = torch.zeros_like
    est = getattr(skae, case["cls"])(distributed=True, **case["params"])
    result = {}
    log = io.StringIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(log):
            warnings.simplefilter("ignore")
            for _ in range(case.get("calls", 1)):
                getattr(est, case.get("method", "fit"))(X, y)
    except Exception as exc:  # recorded for the test to read
        result["error"] = np.array(f"{type(exc).__name__}: {exc}")
    finally:
        skae._modules.standard_normal = standard_normal
    if "error" not in result:
        est = pickle.loads(pickle.dumps(est))  # the unwrapped module pickles
        for k, v in est.module_.state_dict().items():
            result["w." + k] = v.detach().cpu().numpy()
        result["loss_curve"] = np.array(est.loss_curve_)
        if est.validation_scores_ is not None:
            result["validation_scores"] = np.array(est.validation_scores_)
        result["code"] = est.transform(np.asarray(X[:20]))
    result["stdout"] = np.array(log.getvalue())
    np.savez(out_dir / f"{case['name']}.rank{rank}.npz", **result)


def main(out_dir):
    import datetime

    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    out_dir = Path(out_dir)
    timeout = datetime.timedelta(seconds=float(os.environ["SKAE_PG_TIMEOUT"]))
    dist.init_process_group("gloo", timeout=timeout)
    rank = dist.get_rank()
    for case in json.loads((out_dir / "cases.json").read_text()):
        if case.get("die_rank") == rank:  # a rank that dies in training
            from skae import _distributed

            _distributed.DataParallel.iterator = lambda *a, **k: os._exit(3)
        _run_case(case, rank, out_dir)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
