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
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from skae import AutoencoderTransformer, LossCurveDisplay

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
# :class:`~skae.LossCurveDisplay` draws ``loss_curve_``, the training
# objective, computed on the normalised data the network sees (left axis), and
# with early stopping minus ``validation_scores_``, the validation squared
# error per image in the data's own units (right axis): two quantities in two
# units, hence two axes. The dotted line is the epoch whose weights early
# stopping restored.
fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
LossCurveDisplay.from_estimator(plain, ax=axes[0], name="no early stopping", log_scale=True)
LossCurveDisplay.from_estimator(stopped, ax=axes[1], name="early stopping", log_scale=True)
plt.show()
