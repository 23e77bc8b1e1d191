"""
=====================================================
Choosing a reducer with GridSearchCV: PCA, NCA or AE
=====================================================

An autoencoder is one more candidate for the ``reduce`` step of a pipeline.
This example searches, with cross-validation, over the reducer itself
(:class:`~sklearn.decomposition.PCA`,
:class:`~sklearn.neighbors.NeighborhoodComponentsAnalysis`,
:class:`skae.AutoencoderTransformer` and :class:`skae.StackedAE` fine-tuned
with the NCA objective) and over its ``n_components``, with a
k-nearest-neighbours classifier on top, on scikit-learn's digits.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.neighbors import KNeighborsClassifier, NeighborhoodComponentsAnalysis
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler

from skae import AutoencoderTransformer, StackedAE

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.3, stratify=y, random_state=0
)

pipe = Pipeline(
    [
        ("scale", MinMaxScaler()),
        ("reduce", PCA()),
        ("knn", KNeighborsClassifier(n_neighbors=3)),
    ]
)
widths = [2, 8]
param_grid = [
    {"reduce": [PCA()], "reduce__n_components": widths},
    {
        "reduce": [NeighborhoodComponentsAnalysis(max_iter=50, random_state=0)],
        "reduce__n_components": widths,
    },
    {
        "reduce": [AutoencoderTransformer(hidden_layer_sizes=(64,), max_iter=60, random_state=0)],
        "reduce__n_components": widths,
    },
    {
        "reduce": [
            StackedAE(
                hidden_layer_sizes=(64,),
                fine_tune="nca",
                pretrain_max_iter=10,
                max_iter=40,
                random_state=0,
            )
        ],
        "reduce__n_components": widths,
    },
]

# Two worker processes: the estimators are pickled and sent to them.
search = GridSearchCV(pipe, param_grid, cv=3, n_jobs=2)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    search.fit(X_train, y_train)

results = pd.DataFrame(
    {
        "reducer": [type(p["reduce"]).__name__ for p in search.cv_results_["params"]],
        "n_components": [p["reduce__n_components"] for p in search.cv_results_["params"]],
        "cv accuracy": search.cv_results_["mean_test_score"],
        "fit s": search.cv_results_["mean_fit_time"],
    }
)
print(results.round(3).to_string(index=False))
print(f"\nbest: {search.best_params_['reduce'].__class__.__name__} "
      f"with n_components={search.best_params_['reduce__n_components']}, "
      f"held-out accuracy {search.score(X_test, y_test):.3f}")

# %%
# Cross-validated 3-NN accuracy of each reducer at each code width
fig, ax = plt.subplots(figsize=(8, 4), layout="constrained")
names = list(dict.fromkeys(results["reducer"]))
offsets = np.linspace(-0.3, 0.3, len(names))
for offset, name in zip(offsets, names):
    rows = results[results["reducer"] == name]
    ax.bar(np.arange(len(widths)) + offset, rows["cv accuracy"], width=0.18, label=name)
ax.set_xticks(np.arange(len(widths)), [f"n_components={w}" for w in widths])
ax.set_ylabel("cross-validated 3-NN accuracy")
ax.set_ylim(0, 1)
ax.set_title("Cross-validated accuracy (fraction of digits right)")
ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
plt.show()
