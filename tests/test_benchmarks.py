"""Smoke runs of every benchmark script on tiny sizes, so they cannot rot.

Benchmarks time things; tests never do. Each script runs with ``--quick``.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parents[1] / "benchmarks"
MNIST_DIR = BENCH_DIR.parents[0].parent / "shared" / "data" / "mnist"
SCRIPTS = sorted(BENCH_DIR.glob("bench_*.py"))


@pytest.mark.slow
@pytest.mark.skipif(not MNIST_DIR.is_dir(), reason="../shared/data/mnist is not beside the repo")
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_benchmark_quick_run(script):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    result = subprocess.run(
        [sys.executable, str(script), "--quick"],
        cwd=BENCH_DIR, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip(), "the benchmark printed nothing"
