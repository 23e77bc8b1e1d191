"""Quality per second: the best 30-D MNIST reconstruction within a time budget.

The split is the benchmarks' convention (first 8,000 MNIST test images train,
last 2,000 test, pixels in [0, 1]); the score is the average per-image sum of
squared errors on the 2,000 held-out images at 30 dimensions (PCA-30: 14.33).
Each recipe is fitted with a wall-clock budget: a callback ends (fine-)tuning
before an epoch that would not finish in time (the epoch time is estimated
from the previous one), so the whole ``fit`` -- validation, set-up,
StackedAE's pretraining included -- stays within the budget. The model keeps
the weights of the last finished epoch.

    python benchmarks/bench_quality.py --budget 120        # the 2-minute table
    python benchmarks/bench_quality.py --budget 600        # the 10-minute table
    python benchmarks/bench_quality.py --recipes stacked --budget 120
    python benchmarks/bench_quality.py --curve --device cuda   # error vs epoch
    python benchmarks/bench_quality.py --quick             # smoke run
    python benchmarks/bench_quality.py --recipes conv-32-64 --budget 600
    python benchmarks/bench_quality.py --recipes conv-32-64-b64-a1-cos --budget 600 --clock cpu

``--clock cpu`` counts the budget in this process's CPU time instead of wall
time, so a run on a shared machine is not cut short by other processes (with
one torch thread, CPU time is the time a quiet machine would take). Recipes
whose name ends in ``-cos`` decay the learning rate along a cosine that
reaches 0 when the budget is spent.

``--curve`` ignores the budget and prints the test error every 10 epochs
(with the time per epoch), which is how the recipes were explored: on a GPU
the whole grid takes minutes, then the CPU time per epoch says how far each
recipe gets within a CPU budget.
"""

import argparse
import ast
import math
import time
import warnings

import numpy as np
import torch
from _data import mnist_split
from sklearn.decomposition import PCA
from skorch.callbacks import Callback, LRScheduler

from skae import AutoencoderTransformer, DenoisingAE, StackedAE

DEEP = (1000, 500, 250)


def recipes(max_iter, pretrain):
    """name -> unfitted estimator; ``max_iter`` caps (fine-)tuning epochs."""
    common = dict(loss="log_loss", max_iter=max_iter, random_state=0)

    def conv(cls=AutoencoderTransformer, **params):
        """A 30-D conv-stack recipe for 28x28 images; ``params`` override."""
        params = {"encoder": "conv", "input_shape": (1, 28, 28), "conv_channels": (32, 64),
                  **common, **params}
        return lambda: cls(30, **params)

    return {
        "ae-256": lambda: AutoencoderTransformer(
            30, hidden_layer_sizes=(256,), alpha=1e-4, **common
        ),
        "ae-256-a1": lambda: AutoencoderTransformer(
            30, hidden_layer_sizes=(256,), alpha=1.0, **common
        ),
        "ae-256-a1-tied": lambda: AutoencoderTransformer(
            30, hidden_layer_sizes=(256,), alpha=1.0, tied_weights=True, **common
        ),
        "ae-256-a3": lambda: AutoencoderTransformer(
            30, hidden_layer_sizes=(256,), alpha=3.0, **common
        ),
        "ae-512-a1": lambda: AutoencoderTransformer(
            30, hidden_layer_sizes=(512,), alpha=1.0, **common
        ),
        "dae-256-a1": lambda: DenoisingAE(
            30, hidden_layer_sizes=(256,), alpha=1.0, noise_level=0.1, **common
        ),
        "ae-deep-a3": lambda: AutoencoderTransformer(
            30, hidden_layer_sizes=DEEP, alpha=3.0, **common
        ),
        "ae-512-256-a1": lambda: AutoencoderTransformer(
            30, hidden_layer_sizes=(512, 256), alpha=1.0, **common
        ),
        "dae-deep-a1": lambda: DenoisingAE(
            30, hidden_layer_sizes=DEEP, alpha=1.0, noise_level=0.2, **common
        ),
        "stacked-deep": lambda: StackedAE(
            30,
            hidden_layer_sizes=DEEP,
            alpha=3.0,
            noise="masking",
            noise_level=0.3,
            pretrain_max_iter=pretrain,
            **common,
        ),
        "stacked-512-256": lambda: StackedAE(
            30,
            hidden_layer_sizes=(512, 256),
            alpha=3.0,
            noise="masking",
            noise_level=0.3,
            pretrain_max_iter=pretrain,
            **common,
        ),
        # Convolutional stacks (encoder='conv'): stride-2 3x3 convolutions
        # 28 -> 14 -> 7, a linear 30-D code, the mirror transposed stack.
        "conv-32-64": conv(),
        "conv-16-32": conv(conv_channels=(16, 32)),
        "conv-32-64-b64": conv(batch_size=64),
        # The same with MLP's weight penalty and a cosine learning-rate
        # decay that ends with the budget (CosineToDeadline); with batches
        # of 32, the recipe of the user guide.
        "conv-32-64-b64-a1-cos": conv(batch_size=64, alpha=1.0),
        "conv-32-64-b32-a1-cos": conv(batch_size=32, alpha=1.0),
        "conv-32-64-b16-a1-cos": conv(batch_size=16, alpha=1.0),
        "dconv-32-64-b64-a1-cos": conv(
            DenoisingAE, batch_size=64, alpha=1.0, noise="masking", noise_level=0.1
        ),
        "conv-32-64-b64-a3-cos": conv(batch_size=64, alpha=3.0),
    }


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


class Deadline(Callback):
    """End training before an epoch that would end after ``deadline``.

    ``deadline`` is a value of ``clock`` (:func:`time.perf_counter` for wall
    time, :func:`time.process_time` for this process's CPU time). The
    estimate of the next epoch is the last one's duration;
    ``KeyboardInterrupt`` at the start of an epoch is skae's clean stop
    (nothing of that epoch has run).
    """

    def __init__(self, deadline, clock=time.perf_counter):
        self.deadline = deadline
        self.clock = clock

    def on_epoch_begin(self, net, **kwargs):
        now = self.clock()
        last = getattr(self, "_last", None)
        if last is not None and now + (now - last) > self.deadline:
            raise KeyboardInterrupt
        self._last = now


class CosineToDeadline(Callback):
    """Cosine learning-rate decay from the initial rate to 0 at the deadline.

    The budgeted form of ``LRScheduler(policy='CosineAnnealingLR',
    T_max=max_iter)``: at the start of each epoch the rate is
    ``lr0 * (1 + cos(pi * used / budget)) / 2``, ``used`` the time spent
    since ``start`` on ``clock``, so the schedule ends with the budget
    whatever the machine's speed. Used by the ``*-cos`` recipes.
    """

    def __init__(self, start, budget, clock=time.perf_counter):
        self.start, self.budget, self.clock = start, budget, clock

    def on_train_begin(self, net, **kwargs):
        self._lr0 = [g["lr"] for g in net.optimizer_.param_groups]

    def on_epoch_begin(self, net, **kwargs):
        used = min(1.0, (self.clock() - self.start) / self.budget)
        factor = (1 + math.cos(math.pi * used)) / 2
        for group, lr0 in zip(net.optimizer_.param_groups, self._lr0):
            group["lr"] = lr0 * factor


class Curve(Callback):
    """Print the held-out error every ``every`` epochs (exploration mode)."""

    def __init__(self, X_test, every=10):
        self.X_test = X_test
        self.every = every

    def on_train_begin(self, net, **kwargs):
        self._start = time.perf_counter()

    def on_epoch_end(self, net, **kwargs):
        epoch = len(net.history)
        if epoch % self.every:
            return
        m = net.module_
        m.eval()
        with torch.no_grad():
            x = torch.as_tensor(self.X_test, device=next(m.parameters()).device)
            x_hat = m.denormalize(m.decode(m.encode(m.normalize(x))))
            err = float(((x_hat - x) ** 2).sum(1).mean())
        m.train()
        per_epoch = (time.perf_counter() - self._start) / epoch
        print(f"    epoch {epoch:4d}  test SSE {err:7.3f}  ({per_epoch:.3f} s/epoch)", flush=True)


def sse(model, X):
    """Average per-image sum of squared errors of the reconstruction."""
    return float(((X - model.inverse_transform(model.transform(X))) ** 2).sum(1).mean())


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--budget", type=float, default=120.0, help="seconds per fit")
    parser.add_argument("--recipes", nargs="*", default=None, help="names (default: all)")
    parser.add_argument("--pretrain", type=int, default=None, help="epochs per layer")
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="PARAM=VALUE",
        help="override estimator parameters, e.g. alpha=0.3 batch_size=64 (Python literals)",
    )
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="wall",
        help="what the budget counts: wall time, or this process's CPU time",
    )
    parser.add_argument("--curve", action="store_true", help="error vs epoch, no budget")
    parser.add_argument("--max-iter", type=int, default=300, help="with --curve")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--mnist-dir", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    X_train, X_test, _, _ = mnist_split(args.mnist_dir)
    if args.quick:
        X_train, X_test, args.budget, args.max_iter = X_train[:200], X_test[:50], 3.0, 2
    pretrain = args.pretrain
    if pretrain is None:  # a tenth of a 2-minute budget; 30 epochs for longer ones
        pretrain = 1 if args.quick else (10 if args.budget <= 120 else 30)
    max_iter = args.max_iter if args.curve else 100_000
    table = recipes(max_iter, pretrain)
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = ast.literal_eval(value)
    names = args.recipes or list(table)
    if args.quick:
        names = names[:1] + ["stacked-512-256", "conv-16-32"]
    where = torch.cuda.get_device_name(args.device) if args.device != "cpu" else (
        f"CPU, {torch.get_num_threads()} thread(s)"
    )
    mode = "error vs epoch" if args.curve else f"budget {args.budget:.0f} s per fit"
    if overrides:
        mode += f"; overrides {overrides}"
    print(f"{len(X_train)} train / {len(X_test)} test MNIST images; {where}; {mode}")
    pca = PCA(30, random_state=0).fit(X_train)
    print(f"{'PCA-30':<18}{'test SSE':>9} {sse(pca, X_test):7.3f}")
    rows = []
    for name in names:
        model = table[name]()
        clock = CLOCKS[args.clock]
        if args.curve:
            callbacks = [Curve(X_test)]
            if name.endswith("-cos"):
                callbacks.append(LRScheduler(policy="CosineAnnealingLR", T_max=args.max_iter))
            print(f"{name} (pretrain {pretrain}/layer where it applies)", flush=True)
        else:
            start = clock()
            callbacks = [Deadline(start + args.budget, clock)]
            if name.endswith("-cos"):
                callbacks.append(CosineToDeadline(start, args.budget, clock))
        model.set_params(callbacks=callbacks, device=args.device, **overrides)
        if args.curve:
            model.set_params(n_iter_no_change=args.max_iter)  # no early end
        start, cpu_start = time.perf_counter(), time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the stop is a (clean) interrupt
            model.fit(X_train)
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
        test = sse(model, X_test)
        pre = getattr(model, "pretrain_loss_curves_", None)
        epochs = f"{model.n_iter_}" + (f" + {len(pre)}x{len(pre[0])} pretraining" if pre else "")
        rows.append((name, test, elapsed, epochs))
        print(
            f"{name:<18}{'test SSE':>9} {test:7.3f}  fit {elapsed:6.1f} s wall, "
            f"{cpu:6.1f} s CPU  epochs {epochs}"
        )
    best = min(rows, key=lambda r: r[1])
    print(f"best: {best[0]} {best[1]:.3f} in {best[2]:.1f} s")
    return rows


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
