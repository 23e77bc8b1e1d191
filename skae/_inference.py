"""Inference: per-dtype fitted modules and bounded-memory chunking.

``transform``, ``inverse_transform``, ``score_samples``, ``denoise`` and
``ContractiveAE.jacobian`` all run through :func:`run`. Nothing here knows
about estimators: it receives the fitted module and the normalisation.
"""

import copy
import threading
from typing import Callable, NamedTuple

import numpy as np
import torch

# Rows per chunk are chosen so that one activation matrix holds about this
# many numbers (bounded memory for any n_samples).
CHUNK_ELEMENTS = 2**22
TORCH_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}

# The C++ guard behind ``torch.inference_mode()``, without that context
# manager's Python wrapper, which alone costs several microseconds a call (a
# one-row transform is latency-bound); the public context manager otherwise.
_inference_guard = getattr(torch._C, "_InferenceMode", None) or (
    lambda enabled: torch.inference_mode(enabled)
)


class Inference(NamedTuple):
    """What inference on one dtype needs, resolved once."""

    module: torch.nn.Module  # eval mode, in the dtype
    device: torch.device
    on_cpu: bool
    width: int  # widest layer, for the chunk size
    encode: Callable  # x -> code, normalisation included
    decode: Callable  # code -> x in the input's units


class InferenceCache:
    """Per-dtype :class:`Inference` entries.

    float64 input runs through a float64 copy of the fitted module, built
    lazily with the exact float64 normalisation statistics, so results do not
    depend on how rows are batched (scikit-learn's subset-invariance checks
    compare at 1e-7). Resolving the device, the widest layer and the plain
    encode/decode functions once keeps a one-row ``transform`` from walking
    the module every call. Equality is identity, so ``check_dict_unchanged``
    does not see a lazily filled cache as a changed estimator; a lock makes
    concurrent first calls from several threads build one copy.
    """

    def __init__(self):
        self._entries = {}
        self._lock = threading.Lock()

    def get(self, module, dtype, mean, scale):
        """The entry for numpy ``dtype`` (float32 or float64)."""
        dtype = TORCH_DTYPES[np.dtype(dtype)]
        entry = self._entries.get(dtype)
        if entry is None:
            with self._lock:
                entry = self._entries.get(dtype)
                if entry is None:
                    entry = self._entries[dtype] = _resolve(module, dtype, mean, scale)
        return entry


def _resolve(module, dtype, mean, scale):
    params = list(module.parameters())
    if params[0].dtype != dtype:
        module = copy.deepcopy(module).to(dtype).eval()
        # Exact statistics, not the float32 buffers upcast.
        module.set_normalization(mean, scale)
    widths = [p.shape[0] for p in params if p.dim() == 2]
    widths.append(getattr(module, "activation_width", 1))  # conv feature maps
    device = params[0].device
    return Inference(
        module, device, device.type == "cpu", max(widths, default=1), *module.plain_functions()
    )


def _run_chunk(fn, entry, chunk):
    """``fn(entry, x)`` on one numpy chunk, back as a numpy array."""
    if hasattr(chunk, "toarray"):  # scipy.sparse: one chunk dense at a time
        chunk = chunk.toarray()
    x = torch.from_numpy(chunk if chunk.flags.writeable else chunk.copy())
    if entry.on_cpu:  # no device round trip: each call costs microseconds
        out = fn(entry, x)
    else:
        out = fn(entry, x.to(entry.device)).cpu()
    return out.detach().numpy()


def run(entry, X, fn, out_dtype=None, row_elements=None, autograd=False):
    """Apply ``fn(entry, x_tensor)`` to X in bounded chunks.

    Parameters
    ----------
    entry : Inference
        The dtype's entry (module and plain encode/decode functions).
    X : ndarray of shape (n_samples, n_features)
        Validated input, float32 or float64.
    fn : callable
        ``fn(entry, x)`` returns a tensor with one leading row per input row.
    out_dtype : numpy dtype or None
        Output dtype; X's when None.
    row_elements : int or None
        Numbers one row of ``fn``'s work holds (for the chunk size); the
        widest layer or X's width when None.
    autograd : bool
        Run with autograd available (``jacobian``); otherwise under
        inference mode, the fast path.

    Inputs that fit in one chunk (the usual case) take the shortest path: a
    one-row call is latency-bound.
    """
    width = row_elements or max(entry.width, X.shape[1])
    step = max(1, CHUNK_ELEMENTS // width)
    with _inference_guard(not autograd):
        if X.shape[0] <= step:
            out = _run_chunk(fn, entry, X)
        else:
            out = np.concatenate(
                [
                    _run_chunk(fn, entry, X[start : start + step])
                    for start in range(0, X.shape[0], step)
                ]
            )
    return out.astype(out_dtype or X.dtype, copy=False)
