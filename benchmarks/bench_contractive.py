"""Cost of ContractiveAE's exact Jacobian penalty, relative to a plain step.

One training step (forward, loss, backward, Adam update) of the same deep
encoder, 784-256-128-k with a mirrored decoder, on a batch of 128 MNIST
images, is timed with and without the contractive penalty, in one process,
interleaved, and the median of the repeats is reported. The issue's budget is
``(k + 2)`` plain steps. Every way of computing the exact penalty is timed
beside the one ContractiveAE uses, to justify the choice:

* ``skae``: what ContractiveAE does (k batched VJPs stopped at the first
  layer's output ``a = W1 x + b1``, then ``||G W1||^2`` directly or through
  ``W1 W1^T``, whichever needs fewer multiplications);
* ``vjp->x direct``, ``vjp->a direct``, ``vjp->a Gram``: batched reverse mode
  all the way to x, or stopped at ``a`` with each finish forced;
* ``vjp loop``: k separate ``autograd.grad`` calls instead of one batched;
* ``func.jacrev``: ``vmap(jacrev(encode))``;
* ``func.jacfwd``: forward mode, ``vmap(jacfwd(encode))``, one JVP per
  input feature (784).

    python benchmarks/bench_contractive.py            # full table
    python benchmarks/bench_contractive.py --quick    # smoke run, tiny sizes
"""

import argparse
import statistics
import time
import warnings

import torch
from _data import mnist_split

from skae import ContractiveAE
from skae._losses import contractive_penalty


def _vjp_loop(module, x):
    x = x.detach().requires_grad_(True)
    h = module.encode(x)
    total = 0.0
    for j in range(h.shape[1]):
        (g,) = torch.autograd.grad(h[:, j].sum(), x, create_graph=True)
        total = total + g.pow(2).sum(dim=1)
    return total


def _func(transform):
    def penalty(module, x):
        jac = torch.func.vmap(transform(module.encode))(x.detach())
        return jac.pow(2).sum(dim=(1, 2))

    return penalty


def _first(module):
    return module.encoder_layers()[0]


VARIANTS = {
    "skae": None,  # ContractiveAE's own _contraction
    "vjp->x direct": lambda m, x: contractive_penalty(m.encode, x),
    "vjp->a direct": lambda m, x: contractive_penalty(
        m.encode, x, _first(m), gram=False
    ),
    "vjp->a Gram": lambda m, x: contractive_penalty(m.encode, x, _first(m), gram=True),
    "vjp loop": _vjp_loop,
    "func.jacrev": _func(torch.func.jacrev),
    "func.jacfwd": _func(torch.func.jacfwd),
}


def make_estimator(X, k, hidden, batch_size):
    """A ContractiveAE whose training net is initialised (one short fit)."""
    cae = ContractiveAE(
        k, hidden_layer_sizes=hidden, batch_size=batch_size, max_iter=1,
        contraction_weight=0.1, random_state=0, device="cpu",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cae.fit(X[: 2 * batch_size])
    cae._net.module_.train()
    return cae


def step_timer(cae, variant, xb):
    """A callable running one training step with the given penalty variant."""
    net = cae._net
    if variant == "plain":
        weight, override = 0.0, None
    else:
        weight, override = 0.1, VARIANTS[variant]

    def run():
        cae.contraction_weight = weight
        if override is None:
            cae.__dict__.pop("_contraction", None)
        else:
            cae._contraction = lambda module, x_in, code: override(module, x_in)
        start = time.perf_counter()
        net.train_step((xb, None))
        return time.perf_counter() - start

    return run


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--mnist-dir", default=None)
    parser.add_argument("--ks", type=int, nargs="+", default=[2, 30])
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 128])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=31)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--no-jacfwd", action="store_true", help="skip forward mode (784 JVPs, slow)"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    hidden, ks, repeats = tuple(args.hidden), args.ks, args.repeats
    if args.quick:
        hidden, ks, repeats = (32, 16), [2, 3], 2

    X_train, _, _, _ = mnist_split(args.mnist_dir)
    variants = [v for v in VARIANTS if not (args.no_jacfwd and v == "func.jacfwd")]
    arch = "-".join(str(s) for s in (784, *hidden))
    print(
        f"torch {torch.__version__}, {args.threads} thread(s), encoder {arch}-k, "
        f"batch {args.batch_size} of MNIST, median of {repeats} interleaved repeats"
    )
    header = "".join(f"{v:>15}" for v in variants)
    print(f"{'k':>3}{'budget k+2':>11}{'plain ms':>10}  {header}")
    rows = []
    for k in ks:
        cae = make_estimator(X_train, k, hidden, args.batch_size)
        module = cae._net.module_
        xb = module.normalize(torch.tensor(X_train[: args.batch_size])).float()
        # The variants compute the same number: check before timing them.
        ref = cae._contraction(module, xb, None).detach()
        for name in variants[1:]:
            value = VARIANTS[name](module, xb).detach()
            err = float((value - ref).abs().max() / ref.abs().max())
            assert err < 1e-4, (name, err)
        runners = {v: step_timer(cae, v, xb) for v in ["plain", *variants]}
        times = {v: [] for v in runners}
        for run in runners.values():  # warm-up
            run()
        for _ in range(repeats):
            for name, run in runners.items():
                times[name].append(run())
        plain = statistics.median(times["plain"])
        ratios = {v: statistics.median(times[v]) / plain for v in variants}
        rows.append((k, plain, ratios))
        print(
            f"{k:>3}{k + 2:>11}{1e3 * plain:>10.2f}  "
            + "".join(f"{ratios[v]:>14.2f}x" for v in variants)
        )
    return rows


if __name__ == "__main__":
    main()
