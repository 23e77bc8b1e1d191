"""Each fit draws from its own torch generators; the global one is never used.

torch's default generator is process-wide: shared by every thread, and the
user's. A fit that seeded it (or forked it) made concurrent fits
irreproducible and changed the user's ``torch.rand`` stream. Instead,
:func:`fit_generators` gives the running fit private ``torch.Generator``
objects (one per device, seeded from the estimator's ``random_state``),
visible to the code of that fit's thread through :func:`current`: weight
initialisation (:func:`build_module`), shuffling, the early-stopping split,
input corruption and the VAE's sampling all draw from it.
"""

import contextlib
import threading

import torch
from torch import nn

_local = threading.local()


@contextlib.contextmanager
def fit_generators(seed):
    """Run the body with private generators seeded with ``seed`` (per device,
    created on first use) as this thread's :func:`current` ones."""
    previous = getattr(_local, "generators", None)
    _local.generators = {"seed": int(seed)}
    try:
        yield
    finally:
        _local.generators = previous


def current(device="cpu"):
    """This thread's fit generator for ``device``; None outside a fit (then
    torch's global generator is used, as torch itself would)."""
    generators = getattr(_local, "generators", None)
    if generators is None:
        return None
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    key = str(device)
    generator = generators.get(key)
    if generator is None:
        generator = generators[key] = torch.Generator(device=device)
        generator.manual_seed(generators["seed"])
    return generator


def build_module(factory, *args, **kwargs):
    """``factory(*args, **kwargs)`` built without drawing a random number from
    torch's global generator, then initialised from :func:`current` (CPU).

    The module is built on the meta device (no memory, no draws), moved to
    empty CPU memory and initialised: by its ``reset_weights(generator)``
    when it has one, Glorot-uniform weights and zero biases for a plain
    ``nn.Linear``. Outside a fit (a model being loaded, whose weights are
    overwritten) a fixed private generator is used.
    """
    if torch.get_default_device().type == "meta":  # shapes only (a file check)
        return factory(*args, **kwargs)
    with torch.device("meta"):
        module = factory(*args, **kwargs)
    generator = current("cpu") or torch.Generator().manual_seed(0)
    if not (hasattr(module, "reset_weights") or type(module) is nn.Linear):
        # A module that cannot initialise from a generator: build it for
        # real under a forked, seeded global generator (the older way).
        seed = int(torch.randint(2**31 - 1, (), generator=generator))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return factory(*args, **kwargs)
    module = module.to_empty(device="cpu")
    with torch.no_grad():
        if hasattr(module, "reset_weights"):
            module.reset_weights(generator)
        else:
            nn.init.xavier_uniform_(module.weight, generator=generator)
            nn.init.zeros_(module.bias)
    return module
