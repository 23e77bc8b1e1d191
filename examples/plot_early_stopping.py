"""
====================================
Loss curves and early stopping
====================================

With few samples a large autoencoder overfits. ``early_stopping=True`` holds
out ``validation_fraction`` of the training data, stops when the validation
score (minus the mean reconstruction error) has not improved for
``n_iter_no_change`` epochs, and restores the best weights. The fitted
``loss_curve_`` and ``validation_scores_`` show what happened.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from skae import AutoencoderTransformer

X, _ = load_digits(return_X_y=True)
X_train, X_test = X[:400], X[400:]

common = dict(
    n_components=8,
    hidden_layer_sizes=(512, 256),
    learning_rate_init=3e-3,
    max_iter=150,
    tol=0.0,
    random_state=0,
)
plain = AutoencoderTransformer(**common, n_iter_no_change=150)
stopped = AutoencoderTransformer(**common, early_stopping=True, n_iter_no_change=10)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    plain.fit(X_train)
    stopped.fit(X_train)

for name, model in [("no early stopping", plain), ("early stopping", stopped)]:
    print(f"{name:<18} epochs {model.n_iter_:>3}   held-out error {-model.score(X_test):7.1f}")

# %%
# ``loss_curve_`` is the training objective, computed on the normalised data
# the network sees; ``validation_scores_`` are in the data's own units (minus
# the squared error per image), like ``score``. Hence two axes.
fig, ax = plt.subplots(figsize=(7, 4))
ax.plot(np.arange(1, plain.n_iter_ + 1), plain.loss_curve_, label="training objective, no stopping")
ax.plot(
    np.arange(1, stopped.n_iter_ + 1),
    stopped.loss_curve_,
    label="training objective, early stopping",
)
ax.set_yscale("log")
ax.set_xlabel("epoch")
ax.set_ylabel("training objective (normalised units)")
ax2 = ax.twinx()
ax2.plot(
    np.arange(1, stopped.n_iter_ + 1),
    -np.asarray(stopped.validation_scores_),
    color="C2",
    label="validation error, early stopping",
)
ax2.set_ylabel("validation squared error per image")
best = int(np.argmax(stopped.validation_scores_)) + 1
ax.axvline(best, color="gray", linestyle=":", label=f"best epoch ({best}), restored")
lines = ax.get_legend_handles_labels()
lines2 = ax2.get_legend_handles_labels()
ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=8)
fig.tight_layout()
plt.show()
