"""Shared numpydoc fragments, so five estimators document one parameter list.

A class docstring writes ``{base_parameters}`` or ``{base_attributes}`` on a
line of its own where the shared text goes (indented as the parameter list
is) and decorates the class with :func:`fill_doc`.
"""

BASE_PARAMETERS = """\
n_components : int, default=2
    Width of the code (the number of output features of ``transform``).
    Must not exceed ``n_features``.

hidden_layer_sizes : array-like of int or int, default=(100,)
    Widths of the encoder's hidden layers, input side first. The decoder
    mirrors them. ``()`` gives a one-layer encoder ``h = f(b + W x)``.

activation : {'identity', 'logistic', 'tanh', 'relu'}, default='relu'
    Activation of the hidden layers ('identity' is linear, 'logistic' is
    the sigmoid), as in :class:`~sklearn.neural_network.MLPRegressor`.

code_activation : {'identity', 'logistic', 'tanh', 'relu'}, default='identity'
    Activation of the code layer. Linear by default, as in deep
    autoencoders; 'logistic' with ``hidden_layer_sizes=()`` gives the
    classic one-layer sigmoid code ``h(x) = sigm(b + W x)``.

output_activation : {'identity', 'logistic', 'tanh', 'relu'} or None, \
default=None
    Activation of the reconstruction. None picks 'identity' for
    ``loss='squared_error'``, 'logistic' for ``loss='log_loss'`` and exp
    for ``loss='poisson'`` (which accepts only None).

loss : {'squared_error', 'log_loss', 'poisson'}, default='squared_error'
    Reconstruction loss ``-log p(x | x_hat)``, per sample summed over
    features: ``||x - x_hat||^2`` (Gaussian), the binary cross-entropy
    ``-sum_j x_j log x_hat_j + (1 - x_j) log(1 - x_hat_j)`` for data in
    [0, 1] (anything outside [0, 1] raises a ValueError), or for counts
    the Poisson ``sum_j x_hat_j - x_j log x_hat_j + log(x_j!)``: the
    decoder outputs log-rates, ``inverse_transform`` the rates
    ``x_hat``, and X must hold non-negative integers (no normalisation).

normalize : {'auto', 'global', 'feature'} or None, default='auto'
    Input scaling done inside the estimator and undone by
    ``inverse_transform``. 'global' centres each feature and divides by
    one global scale (the root mean feature variance), so the objective
    is still squared error in the user's units, as PCA minimises;
    'feature' standardises each feature (constant features are only
    centred); None uses X as given. 'auto' is 'global' for
    ``loss='squared_error'`` and None for ``loss='log_loss'`` and
    ``loss='poisson'`` (which accept only 'auto' or None).

tied_weights : bool, default=False
    If True, each decoder layer uses the transposed weight of its mirror
    encoder layer (one shared parameter); only biases are separate. Only
    for the fully connected network (``encoder=None``): a ValueError
    otherwise.

alpha : float, default=1e-4
    L2 penalty on the weights (every parameter tensor of dimension >= 2:
    also convolution kernels and a user module's weights; not the
    biases), added as
    ``0.5 * alpha * sum ||W||^2 / batch_size`` exactly as
    :class:`~sklearn.neural_network.MLPRegressor` does.

sparsity_weight : float, default=0.0
    Weight of the L1 penalty on the code, ``sparsity_weight * mean_i
    ||h(x_i)||_1``: a sparse autoencoder.

solver : {'adam', 'sgd'}, default='adam'
    Optimiser. 'sgd' uses Nesterov momentum 0.9, as MLP does.

batch_size : int or 'auto', default='auto'
    Mini-batch size; 'auto' is ``min(200, n_samples)``. Larger values are
    clipped to ``n_samples`` with a warning.

learning_rate_init : float, default=1e-3
    Learning rate of the optimiser.

max_iter : int, default=200
    Maximum number of epochs. A fit that reaches it before the stopping
    rule ends training raises a ConvergenceWarning, reported at the
    caller's line (``fit``, ``fit_transform``, a Pipeline or an in-process
    search alike).

tol : float, default=1e-4
    Improvement threshold of the stopping rule (see
    ``n_iter_no_change``), absolute, in the units of the training loss:
    the per-sample loss summed over features, on the normalised input
    (with the default normalisation and 'squared_error', reconstructing
    every row by the mean costs about ``n_features``). MLPRegressor's loss
    is half the mean over samples *and* outputs, so on the same
    (normalised) data ``MLPRegressor(...).fit(X, X)`` with ``tol=t``
    applies the same rule as ``tol = 2 * n_features * t`` here: the
    default is ``2 * n_features`` times stricter than MLPRegressor's.

n_iter_no_change : int, default=10
    Training stops when the training loss (or, with ``early_stopping``,
    the validation score) has not improved by ``tol`` for more than
    ``n_iter_no_change`` consecutive epochs, as in MLP.

early_stopping : bool, default=False
    Hold out ``validation_fraction`` of the data, stop when the
    validation score stops improving, and restore the best weights.
    Without it nothing is held out.

validation_fraction : float, default=0.1
    Fraction of the training data held out when ``early_stopping=True``.

shuffle : bool, default=True
    Shuffle the samples every epoch.

random_state : int, RandomState instance or None, default=None
    Seeds weight initialisation, shuffling, the validation split and any
    training noise. An int makes fits reproducible on the CPU. torch's
    global generator is left untouched.

verbose : int, default=0
    0 prints nothing; 1 shows progress over epochs (elapsed time, an upper
    bound on the time left, the best epoch) and a one-line summary: epochs
    run, the best epoch, the time and why training stopped; 2 or more print
    a table, one row per epoch. ``train_error`` is the training
    reconstruction error in the units of :meth:`score` (see
    ``skae._logging`` for every column). Output goes to stdout.

warm_start : bool, default=False
    Continue training the existing network when ``fit`` is called again
    (the architecture parameters must not change).

device : str, default='auto'
    Where the network trains and runs: 'auto' (CUDA when available, else
    CPU), 'cpu', 'cuda' or 'cuda:N'. On the CPU a fit uses torch's thread
    count of the calling thread (which honours ``OMP_NUM_THREADS``,
    ``torch.set_num_threads``, ``threadpoolctl.threadpool_limits`` and
    joblib's per-worker limits), at most ``cpu_count // k`` while ``k``
    skae fits run in the process at once; the environment variable
    ``SKAE_NUM_THREADS`` overrides it. The setting is restored after the
    fit.

callbacks : list of skorch callbacks or None, default=None
    Extra :mod:`skorch.callbacks` (e.g. ``Checkpoint``, ``LoadInitState``,
    ``EarlyStopping``, ``LRScheduler``, ``GradientNormClipping``,
    ``ProgressBar``) added to the training net, after skae's own. The
    history has ``train_loss`` and ``train_loss_best`` every epoch, and
    ``valid_loss`` (minus :meth:`score` on the held-out rows) and
    ``valid_loss_best`` with ``early_stopping=True``; skorch's
    ``EarlyStopping`` ends training normally (no warning). ``save`` stores
    skorch's built-in callbacks with plain parameters and refuses others.

distributed : bool, default=False
    Data-parallel training with :mod:`torch.distributed`: inside an
    initialised process group (one process per device, e.g. under
    ``torchrun --standalone --nproc-per-node=2 train.py`` with
    ``torch.distributed.init_process_group('gloo')``, 'nccl' on GPUs),
    every rank calls ``fit``/``partial_fit`` with the same X and trains on
    its own shard of the rows through
    :class:`~torch.nn.parallel.DistributedDataParallel`, as
    :class:`~torch.utils.data.DistributedSampler` shards them (rows
    repeated so that every rank gets ``ceil(n_samples / world)``).
    ``batch_size`` is per rank; the ranks' batches together make one
    optimiser step, and every rank ends with the same model.
    ``device='cuda'`` means the GPU of the rank's ``LOCAL_RANK``. Without
    a process group, fit raises a ValueError. See ``doc/scaling.rst``.

encoder : None, 'conv' or torch.nn.Module, default=None
    The encoder network. None is the fully connected network of
    ``hidden_layer_sizes``. 'conv' is the built-in convolutional stack
    for images (needs ``input_shape``): one stride-2 convolution
    (``kernel_size``, padding ``kernel_size // 2``) plus ``activation``
    per entry of ``conv_channels``, then a linear code layer (with
    ``code_activation``); the decoder mirrors it with transposed
    convolutions. A module maps a batch ``(n, n_features)`` of normalised
    rows to codes ``(n, n_components)`` (``(n, 2 * n_components)`` for
    :class:`~skae.VariationalAE`: posterior mean, then log-variance); a
    deep copy is trained, never the object passed. See "Bring your own
    module" in the user guide. ``hidden_layer_sizes`` is then unused.

decoder : None, 'conv' or torch.nn.Module, default=None
    The decoder network: None with ``encoder=None`` or 'conv' (the
    mirror of the encoder); with a user encoder a module mapping codes
    ``(n, n_components)`` to decoder *pre-activations*
    ``(n, n_features)`` (skae applies the output activation).

input_shape : tuple of int or None, default=None
    Shape of one sample for ``encoder='conv'``: ``(channels, height,
    width)`` (2-D convolutions) or ``(channels, length)`` (1-D). X stays
    2-D, one flattened sample per row (C order, as
    ``images.reshape(n, -1)``); its product must equal ``n_features``.

conv_channels : tuple of int, default=(32, 64)
    Channels of the convolutions of ``encoder='conv'``, input side first;
    each halves the spatial size.

kernel_size : int, default=3
    Kernel size of the convolutions of ``encoder='conv'``."""

BASE_ATTRIBUTES = """\
n_components_ : int
    Width of the code.

n_features_in_ : int
    Number of features seen during fit.

feature_names_in_ : ndarray of shape (n_features,)
    Names of features seen during fit, when X has string feature names.

module_ : torch.nn.Module
    The trained network (see ``skae._modules`` for its interface).

mean_ : ndarray of shape (n_features,)
    Per-feature mean removed before encoding (zeros without
    normalisation).

scale_ : ndarray of shape (n_features,)
    Per-feature divisor applied after centring (ones without
    normalisation).

loss_curve_ : list of float
    Mean training objective of each epoch.

best_loss_ : float or None
    Lowest training objective reached; None with early stopping.

validation_scores_ : list of float or None
    With early stopping, the validation score of each epoch: the mean of
    ``score_samples`` on the held-out samples (see ``score``); else None.

best_validation_score_ : float or None
    Best validation score with early stopping, else None.

n_iter_ : int
    Number of epochs run.

t_ : int
    Number of training samples seen.

batch_size_ : int
    The batch size used.

device_ : str
    The device the network lives on."""


_FRAGMENTS = {"{base_parameters}": BASE_PARAMETERS, "{base_attributes}": BASE_ATTRIBUTES}


def fill_doc(cls):
    """Insert the shared parameter and attribute text into ``cls.__doc__``.

    A line holding only a placeholder (``{base_parameters}`` or
    ``{base_attributes}``) is replaced by the fragment, indented like the
    placeholder. Nothing else in the docstring is touched, so braces (LaTeX,
    sets of options) are written as they are, never doubled.
    """
    lines = []
    for line in cls.__doc__.splitlines():
        fragment = _FRAGMENTS.get(line.strip())
        if fragment is None:
            lines.append(line)
        else:
            indent = line[: len(line) - len(line.lstrip())]
            lines.extend(indent + row if row else row for row in fragment.splitlines())
    cls.__doc__ = "\n".join(lines)
    return cls
