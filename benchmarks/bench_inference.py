"""Inference latency: ``transform`` against PCA.transform and a bare forward pass.

* one-row ``transform`` latency of AutoencoderTransformer / PCA.transform
  (both pay scikit-learn's input validation);
* 2,000-row ``transform`` time / the bare ``module.encode`` on a ready tensor
  (what the estimator adds: validation, normalisation, conversion).

* with onnxruntime and skl2onnx installed (``pip install skae[onnx]``):
  one-row and 2,000-row latency of the model converted by
  ``skl2onnx.to_onnx`` in an onnxruntime session, against ``transform``
  and ``PCA.transform`` (skipped, with a note, when either is missing);
  in these rows the first time column is onnxruntime's;
* the same for a conv stack (``encoder='conv'``, ``input_shape=(1, 28, 28)``,
  ``conv_channels=(32, 64)``, float32), plus the two ways to its graph:
  ``to_onnx`` writing Conv/ConvTranspose nodes (skae's route) against the
  same fitted network exported by ``torch.onnx.export(dynamo=False)`` (the
  route of user modules): build time and onnxruntime time, side by side.

All on the MNIST test images (784 pixels), float32 and float64 input.

    python benchmarks/bench_inference.py
    python benchmarks/bench_inference.py --quick
"""

import argparse
import copy
import statistics
import time
import warnings

import numpy as np
import torch
from _data import load_mnist_test
from sklearn.decomposition import PCA

from skae import AutoencoderTransformer


def paired(fn_a, fn_b, repeats, inner):
    """Median per-call times of ``fn_a`` and ``fn_b`` and the median ratio.

    The two run in alternating blocks of ``inner`` calls, ``repeats`` times,
    so a neighbour's load on this shared machine hits both alike; the ratio
    is taken per round, then the median over rounds.
    """
    times_a, times_b = [], []
    for _ in range(repeats):
        for fn, times in ((fn_a, times_a), (fn_b, times_b)):
            start = time.perf_counter()
            for _ in range(inner):
                fn()
            times.append((time.perf_counter() - start) / inner)
    ratios = [a / b for a, b in zip(times_a, times_b)]
    return statistics.median(times_a), statistics.median(times_b), statistics.median(ratios)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--mnist-dir", default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="'cpu' or 'cuda'")
    args = parser.parse_args(argv)
    gpu = args.device != "cpu"
    torch.set_num_threads(args.threads)
    repeats, inner = (3, 20) if args.quick else (41, 100)

    X, _ = load_mnist_test(args.mnist_dir)
    X_train = X[:2000]
    pca = PCA(n_components=30).fit(X_train)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ae = AutoencoderTransformer(
            30, hidden_layer_sizes=(256,), max_iter=1, random_state=0, device=args.device
        ).fit(X_train)
    where = torch.cuda.get_device_name(args.device) if gpu else f"{args.threads} thread(s)"
    print(f"torch {torch.__version__}, {where}; model 784-256-30")
    if gpu:
        print("(on the GPU, transform includes the copies to and from the device)")
    print(f"{'measure':<44}{'dtype':>8}{'skae ms':>10}{'ref ms':>10}{'ratio':>8}")
    for dtype in (np.float32, np.float64):
        one = X[2000:2001].astype(dtype)
        many = X[2000:4000].astype(dtype)
        t_ae, t_pca, ratio = paired(
            lambda one=one: ae.transform(one), lambda one=one: pca.transform(one), repeats, inner
        )
        print(
            f"{'1-row transform vs PCA.transform':<44}{np.dtype(dtype).name:>8}"
            f"{1e3 * t_ae:>10.3f}{1e3 * t_pca:>10.3f}{ratio:>8.2f}"
        )
        ae.transform(many)  # builds the float64 copy once
        module = ae._inference_module(dtype)
        x_ready = module.normalize(torch.from_numpy(many).to(args.device))

        def bare(module=module, x_ready=x_ready):
            with torch.inference_mode():
                module.encode(x_ready)
            if gpu:
                torch.cuda.synchronize()

        t_big, t_bare, ratio = paired(
            lambda many=many: ae.transform(many), bare, repeats, max(1, inner // 20)
        )
        print(
            f"{'2,000-row transform vs bare module.encode':<44}{np.dtype(dtype).name:>8}"
            f"{1e3 * t_big:>10.3f}{1e3 * t_bare:>10.3f}{ratio:>8.2f}"
        )
        onnx_rows(ae, pca, one, many, args.threads, repeats, inner)
    conv_rows(X, args, repeats, inner)


def onnx_session(ae, sample, threads):
    """An onnxruntime session running ``ae.transform``, or None without onnxruntime."""
    try:
        import onnxruntime as ort
        from skl2onnx import to_onnx
    except ImportError:
        return None
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    model = to_onnx(ae, sample).SerializeToString()
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def onnx_rows(ae, pca, one, many, threads, repeats, inner):
    """The onnxruntime rows: the converted model against transform and PCA."""
    dtype = np.dtype(one.dtype).name
    session = onnx_session(ae, one, threads)
    if session is None:
        print(f"(onnxruntime rows skipped for {dtype}: pip install skae[onnx])")
        return
    name = session.get_inputs()[0].name
    for label, X, rounds, calls in (
        ("1-row", one, repeats, inner),
        ("2,000-row", many, repeats, max(1, inner // 20)),
    ):
        run = lambda X=X: session.run(None, {name: X})  # noqa: E731
        for ref_name, ref in (("transform", ae.transform), ("PCA.transform", pca.transform)):
            t_onnx, t_ref, ratio = paired(run, lambda X=X, ref=ref: ref(X), rounds, calls)
            print(
                f"{label + ' onnxruntime vs ' + ref_name:<44}{dtype:>8}"
                f"{1e3 * t_onnx:>10.3f}{1e3 * t_ref:>10.3f}{ratio:>8.2f}"
            )


def conv_rows(X, args, repeats, inner):
    """The conv stack's ONNX rows (float32): onnxruntime and the two routes."""
    try:
        from skl2onnx import to_onnx
    except ImportError:
        print("(conv onnxruntime rows skipped: pip install skae[onnx])")
        return
    X = X.astype(np.float32)
    one, many = X[2000:2001], X[2000:4000]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        conv = AutoencoderTransformer(
            30,
            encoder="conv",
            input_shape=(1, 28, 28),
            conv_channels=(32, 64),
            max_iter=1,
            random_state=0,
            device=args.device,
        ).fit(X[: 500 if args.quick else 2000])
    # The same fitted network, converted as user modules are: torch.onnx.
    traced = copy.copy(conv)
    traced.encoder, traced.decoder = conv.module_.encoder, conv.module_.decoder
    print("conv stack 1x28x28 -> (32, 64) -> 30, float32:")
    t_built, t_traced, ratio = paired(
        lambda: to_onnx(conv, one), lambda: to_onnx(traced, one), repeats, max(1, inner // 20)
    )
    print(
        f"{'to_onnx: Conv nodes vs torch.onnx export':<44}{'float32':>8}"
        f"{1e3 * t_built:>10.3f}{1e3 * t_traced:>10.3f}{ratio:>8.2f}"
    )
    built = onnx_session(conv, one, args.threads)
    via_torch = onnx_session(traced, one, args.threads)
    name = built.get_inputs()[0].name
    for label, rows, calls in (("1-row", one, inner), ("2,000-row", many, max(1, inner // 20))):
        run = lambda rows=rows: built.run(None, {name: rows})  # noqa: E731
        for ref_name, ref in (
            ("transform", lambda rows=rows: conv.transform(rows)),
            ("traced graph", lambda rows=rows: via_torch.run(None, {name: rows})),
        ):
            t_onnx, t_ref, ratio = paired(run, ref, repeats, calls)
            print(
                f"{'conv ' + label + ' onnxruntime vs ' + ref_name:<44}{'float32':>8}"
                f"{1e3 * t_onnx:>10.3f}{1e3 * t_ref:>10.3f}{ratio:>8.2f}"
            )


if __name__ == "__main__":
    main()
