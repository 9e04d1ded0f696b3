"""The one baseline set: sign conventions, horizon scaling, ridge on the training rows only."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentinel.ml.baselines import (
    BASELINES,
    baseline_predictions,
    fit_ridge,
    ridge_weights,
    rule_predictions,
)
from sentinel.ml.errors import ModelError
from sentinel.ml_features import FEATURE_NAMES

R20, R60 = FEATURE_NAMES.index("return_20d"), FEATURE_NAMES.index("return_60d")


def test_rules_higher_means_higher_expected_return_and_scale_to_horizon():
    X = np.zeros((2, 20))
    X[:, R20] = [0.04, -0.02]
    X[:, R60] = [0.12, -0.06]
    base = rule_predictions(X, horizon_days=14)  # 10 trading days
    np.testing.assert_array_equal(base["zero"], [0.0, 0.0])
    np.testing.assert_allclose(base["reversal_20"], [-0.02, 0.01])  # a 20-day loser ranks first
    np.testing.assert_allclose(base["momentum_60"], [0.02, -0.01])  # a 60-day winner ranks first
    assert "ridge" not in base


def test_ridge_is_fitted_on_the_given_rows_only():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 20))
    y = 0.02 * X[:, 5] + 0.001 * rng.normal(size=200)
    base = baseline_predictions(X[150:], X_train=X[:150], y_train=y[:150])
    assert list(base) == list(BASELINES)
    assert np.corrcoef(base["ridge"], y[150:])[0, 1] > 0.95
    # the same fit by hand: standardise on the training rows, sklearn Ridge(alpha=1)
    from sklearn.linear_model import Ridge

    mu, sd = X[:150].mean(0), X[:150].std(0)
    by_hand = Ridge(alpha=1.0).fit((X[:150] - mu) / sd, y[:150]).predict((X[150:] - mu) / sd)
    np.testing.assert_allclose(base["ridge"], by_hand, rtol=1e-10, atol=1e-12)
    w, b = ridge_weights(fit_ridge(X[:150], y[:150]))
    np.testing.assert_allclose(X[150:] @ w + b, base["ridge"], rtol=1e-10, atol=1e-12)
    # changing the validation rows' labels cannot change the fit (it never sees them)
    y2 = y.copy()
    y2[150:] = rng.normal(size=50)
    again = baseline_predictions(X[150:], X_train=X[:150], y_train=y2[:150])
    np.testing.assert_array_equal(again["ridge"], base["ridge"])


def test_bad_shapes_say_what_is_wrong():
    with pytest.raises(ModelError, match="20 features"):
        rule_predictions(np.zeros((3, 4)))
    with pytest.raises(ModelError, match="ridge baseline needs"):
        fit_ridge(np.zeros((1, 20)), [0.0])


def _pipeline_fit(X, y):
    """The reference: scikit-learn's own Pipeline.fit (the former fit_ridge)."""
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    from sentinel.ml.baselines import _matrix

    return make_pipeline(FunctionTransformer(_matrix), StandardScaler(), Ridge(alpha=1.0)).fit(X, y)


def _pipeline_weights(model):
    """The former ridge_weights, on the pipeline's scaler and ridge."""
    scaler, ridge = model[-2], model[-1]
    w = ridge.coef_ / scaler.scale_
    return w, float(ridge.intercept_ - scaler.mean_ @ w)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 80), extra=st.integers(0, 3), seed=st.integers(0, 2**16),
       constant=st.booleans(), scale=st.sampled_from([1e-6, 1.0, 1e4]),
       rounded=st.booleans())  # fmt: skip
def test_fit_ridge_equals_the_scikit_learn_pipeline_to_the_bit(
    n, extra, seed, constant, scale, rounded
):
    """n <= 20 rows takes scikit-learn's kernel solver (the fallback); more rows the numpy
    replica of its cholesky path: both equal the pipeline's numbers exactly."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 20 + extra)) * scale
    if rounded:
        X = np.round(X)  # ties and exact zeros
    if constant:
        X[:, 4] = 1.0  # a constant column (price_normalized early on): scale 1, not 0
    y = rng.normal(size=n) * 0.05
    fast, ref = fit_ridge(X, y), _pipeline_fit(X, y)
    np.testing.assert_array_equal(fast.predict(X), ref.predict(X))
    np.testing.assert_array_equal(fast.predict(X[:1]), ref.predict(X[:1]))
    for a, b in zip(ridge_weights(fast), _pipeline_weights(ref), strict=True):
        np.testing.assert_array_equal(a, b)


def test_rows_with_nan_are_refused_as_scikit_learn_refuses_them():
    X = np.random.default_rng(0).normal(size=(40, 20))
    X[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fit_ridge(X, np.zeros(40))
