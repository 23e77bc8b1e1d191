"""skae estimators in the workflows users bring from PCA and NCA (issue #7)."""

import pickle
from functools import partial

import numpy as np
import pytest
from _helpers import fast_estimator, public_estimators
from numpy.testing import assert_allclose
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.neighbors import NeighborhoodComponentsAnalysis
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import MinMaxScaler

ESTIMATORS = public_estimators()
fast = partial(fast_estimator, hidden_layer_sizes=(16,))



@pytest.fixture(scope="module")
def small_digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X[:300], y[:300]


def test_grid_search_swaps_reducers_in_parallel(small_digits):
    """PCA, NCA and every skae estimator compete for the 'reduce' step, in two
    worker processes (the estimators pickle and travel)."""
    X, y = small_digits
    pipe = Pipeline(
        [("scale", MinMaxScaler()), ("reduce", PCA()), ("clf", LogisticRegression(max_iter=200))]
    )
    grid = [
        {"reduce": [PCA()], "reduce__n_components": [4, 8]},
        {
            "reduce": [NeighborhoodComponentsAnalysis(max_iter=10, random_state=0)],
            "reduce__n_components": [4],
        },
    ] + [{"reduce": [fast(cls)], "reduce__n_components": [4, 8]} for cls in ESTIMATORS]
    search = GridSearchCV(pipe, grid, cv=2, n_jobs=2, error_score="raise").fit(X, y)
    names = [type(p["reduce"]).__name__ for p in search.cv_results_["params"]]
    for cls in ESTIMATORS:
        assert cls.__name__ in names
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    # The skae candidates classify digits far above chance (0.1).
    for name, score in zip(names, search.cv_results_["mean_test_score"]):
        if name == "SemanticHashing":  # 4 or 8 binary bits after 5 epochs
            assert score > 0.2, name
        elif name not in ("PCA", "NeighborhoodComponentsAnalysis"):
            assert score > 0.3, name
    assert search.best_estimator_.predict(X[:5]).shape == (5,)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_unsupervised_search_ranks_by_score(cls, small_digits):
    X, _ = small_digits
    est = fast(cls, hidden_layer_sizes=(64,), max_iter=30, batch_size=16)
    search = GridSearchCV(est, {"n_components": [2, 16]}, cv=2).fit(X)
    scores = search.cv_results_["mean_test_score"]
    # A wider code reconstructs held-out digits better, and the search sees it
    # (AutoencoderTransformer: -813 vs -400).
    assert scores[1] > scores[0]
    assert search.best_params_ == {"n_components": 16}


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_cross_val_clone_set_params(cls, small_digits):
    X, y = small_digits
    pipe = Pipeline(
        [
            ("scale", MinMaxScaler()),
            ("reduce", fast(cls)),
            ("clf", LogisticRegression(max_iter=200)),
        ]
    )
    pipe.set_params(reduce__n_components=6, reduce__max_iter=3)
    assert pipe.get_params()["reduce__n_components"] == 6
    copied = clone(pipe)
    assert copied.get_params()["reduce__max_iter"] == 3
    assert not hasattr(copied.named_steps["reduce"], "module_")
    scores = cross_val_score(pipe, X, y, cv=2)
    assert scores.shape == (2,) and np.all(scores > 0.2)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_pandas_feature_union_column_transformer(cls, small_digits):
    pd = pytest.importorskip("pandas")
    X, _ = small_digits
    df = pd.DataFrame(X, columns=[f"px{i}" for i in range(64)])
    prefix = cls.__name__.lower()
    union = FeatureUnion([("pca", PCA(n_components=2)), ("ae", fast(cls, n_components=3))])
    union.set_output(transform="pandas")
    out = union.fit_transform(df)
    assert list(out.columns) == ["pca__pca0", "pca__pca1"] + [f"ae__{prefix}{i}" for i in range(3)]
    ct = ColumnTransformer(
        [("ae", fast(cls, n_components=2), [f"px{i}" for i in range(32)])], remainder="drop"
    )
    assert ct.fit_transform(df).shape == (300, 2)
    pipe = Pipeline([("scale", MinMaxScaler()), ("reduce", fast(cls, n_components=2))])
    pipe.fit(df)
    assert list(pipe.get_feature_names_out()) == [f"{prefix}0", f"{prefix}1"]


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_set_output_polars(cls, small_digits):
    pl = pytest.importorskip("polars")
    X, _ = small_digits
    est = fast(cls, n_components=2).set_output(transform="polars")
    out = est.fit_transform(X)
    assert isinstance(out, pl.DataFrame)
    assert out.columns == [f"{cls.__name__.lower()}0", f"{cls.__name__.lower()}1"]


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_html_repr_renders(cls):
    html = fast(cls)._repr_html_()
    assert cls.__name__ in html and "<div" in html


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_model_saved_for_cuda_loads_on_cpu(cls, small_digits):
    """Stub for a GPU-fitted model: the fitted state records device='cuda'. On a
    machine without CUDA the pickle loads onto the CPU, with a warning."""
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: tests/test_gpu.py covers the real thing")
    X, _ = small_digits
    est = fast(cls).fit(X)
    expected = est.transform(X)
    est.device_ = "cuda"  # what a CUDA fit leaves behind
    blob = pickle.dumps(est)
    with pytest.warns(UserWarning, match="fitted on 'cuda'"):
        loaded = pickle.loads(blob)
    assert loaded.device_ == "cpu"
    assert_allclose(loaded.transform(X), expected)
