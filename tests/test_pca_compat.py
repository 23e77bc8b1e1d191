"""Code written for PCA: clear errors, honest tags, and the skae equivalents."""


import numpy as np
import pytest
from _helpers import fit_quietly, public_estimators
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

from skae import AutoencoderTransformer, ContractiveAE, StackedAE, VariationalAE
from skae._pca_compat import PCA_ONLY_ATTRIBUTES

CPU = {"device": "cpu", "random_state": 0}


@pytest.fixture(scope="module")
def X():
    rng = np.random.RandomState(0)
    return rng.normal(size=(80, 3)) @ rng.normal(size=(3, 6)) + 0.1 * rng.normal(size=(80, 6))



@pytest.mark.parametrize(
    "value, match",
    [
        (None, "no reduction at all"),
        (0.95, "r2_score"),
        ("mle", "no likelihood-based rank selection"),
    ],
)
def test_pca_n_components_forms_say_what_to_use_instead(X, value, match):
    with pytest.raises(InvalidParameterError, match=match) as info:
        AutoencoderTransformer(n_components=value, **CPU).fit(X)
    assert "VariationalAE.score" in str(info.value)
    assert "AutoencoderTransformer" in str(info.value)


def test_integer_valued_floats_and_zero_keep_scikit_learns_message(X):
    with pytest.raises(InvalidParameterError, match=r"range \[1, inf\)"):
        AutoencoderTransformer(n_components=0, **CPU).fit(X)


@pytest.mark.parametrize("name", sorted(set(PCA_ONLY_ATTRIBUTES) - {"noise_variance_"}))
def test_pca_only_attributes_name_the_equivalent(X, name):
    est = fit_quietly(AutoencoderTransformer(max_iter=2, **CPU), X)
    with pytest.raises(AttributeError, match="a PCA attribute") as info:
        getattr(est, name)
    assert PCA_ONLY_ATTRIBUTES[name] in str(info.value)
    assert not hasattr(est, name)


def test_other_missing_attributes_keep_pythons_error():
    est = AutoencoderTransformer()
    with pytest.raises(AttributeError, match="'AutoencoderTransformer' object has no attribute"):
        est.not_there_
    with pytest.raises(NotFittedError):  # a property's own error is kept
        VariationalAE().noise_variance_
    with pytest.raises(AttributeError, match="VariationalAE.noise_variance_"):
        AutoencoderTransformer().noise_variance_


def test_the_documented_explained_variance_equivalent(X):
    """r2_score(..., 'variance_weighted') is PCA's explained_variance_ratio_.sum()."""
    pca = PCA(n_components=2).fit(X)
    X_hat = pca.inverse_transform(pca.transform(X))
    r2 = r2_score(X, X_hat, multioutput="variance_weighted")
    assert r2 == pytest.approx(pca.explained_variance_ratio_.sum(), rel=1e-10)


def test_the_documented_components_equivalent_for_a_linear_autoencoder(X):
    est = fit_quietly(
        AutoencoderTransformer(2, hidden_layer_sizes=(), alpha=0.0, max_iter=5, **CPU), X
    )
    directions = est.inverse_transform(np.eye(2)) - est.inverse_transform(np.zeros((1, 2)))
    # A linear decoder: decoding a code is the origin plus code @ directions.
    Z = est.transform(X)
    np.testing.assert_allclose(
        est.inverse_transform(Z), est.inverse_transform(np.zeros((1, 2))) + Z @ directions,
        rtol=1e-6, atol=1e-8,
    )
    assert ContractiveAE(max_iter=1, **CPU).fit(X).jacobian(X[:2]).shape == (2, 2, 6)


def test_stacked_target_tag_follows_fine_tune(X):
    assert not StackedAE().__sklearn_tags__().target_tags.required
    for mode in ("classification", "nca"):
        est = StackedAE(fine_tune=mode, **CPU)
        assert est.__sklearn_tags__().target_tags.required
        with pytest.raises(ValueError, match="needs the class labels y"):
            est.fit(X)


@pytest.mark.parametrize("cls", [AutoencoderTransformer, StackedAE])
def test_sample_weight_error_names_the_public_class(X, cls):
    with pytest.raises(TypeError, match=rf"^{cls.__name__}\.fit\(\): .*'sample_weight'.*resample"):
        cls(**CPU).fit(X, sample_weight=np.ones(len(X)))
    with pytest.raises(TypeError, match=rf"^{cls.__name__}\.partial_fit\(\): .*'bogus'"):
        cls(**CPU).partial_fit(X, bogus=1)


def test_unsupervised_grid_search_prefers_the_largest_code(X):
    """Why score cannot choose n_components (documented in coming_from_pca)."""
    search = GridSearchCV(
        AutoencoderTransformer(hidden_layer_sizes=(), max_iter=30, **CPU),
        {"n_components": [1, 3, 5]}, cv=2,
    )
    fit_quietly(search, X)
    assert search.best_params_ == {"n_components": 5}  # the true rank is 3


def test_standard_scaler_puts_codes_on_a_unit_scale(X):
    pipe = make_pipeline(AutoencoderTransformer(max_iter=5, **CPU), StandardScaler())
    Z = fit_quietly(pipe, X).transform(X)
    np.testing.assert_allclose(Z.std(axis=0), 1.0, rtol=1e-6)
    np.testing.assert_allclose(Z.mean(axis=0), 0.0, atol=1e-6)


def test_a_downstream_score_chooses_n_components():
    """The documented way: a Pipeline's supervised score over n_components."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.RandomState(0)
    Z = rng.normal(size=(200, 3))
    X = Z @ rng.normal(size=(3, 8)) + 0.05 * rng.normal(size=(200, 8))
    y = (Z[:, 0] > 0).astype(int) + 2 * (Z[:, 1] > 0)  # needs two latent directions
    pipe = make_pipeline(
        AutoencoderTransformer(hidden_layer_sizes=(), max_iter=60, **CPU),
        LogisticRegression(),
    )
    search = GridSearchCV(pipe, {"autoencodertransformer__n_components": [1, 3]}, cv=2)
    fit_quietly(search, X, y)
    assert search.best_params_ == {"autoencodertransformer__n_components": 3}
    scores = search.cv_results_["mean_test_score"]
    assert scores[1] > scores[0] + 0.1  # measured 0.74 against 0.57


@pytest.mark.parametrize(
    "name, value, advice",
    [
        ("whiten", True, "StandardScaler after the autoencoder"),
        ("iterated_power", 3, "max_iter"),
        ("svd_solver", "full", "trained, not decomposed"),
        ("copy", False, "never modifies X"),
    ],
)
def test_pca_only_parameters_say_what_to_use_instead(name, value, advice):
    for cls in public_estimators():
        with pytest.raises(TypeError, match=f"no parameter '{name}' \\(a PCA parameter\\).*{advice}"):
            cls(**{name: value})
    # Any other unknown name keeps Python's own message.
    with pytest.raises(TypeError, match="unexpected keyword argument 'not_a_parameter'"):
        public_estimators()[0](not_a_parameter=1)
