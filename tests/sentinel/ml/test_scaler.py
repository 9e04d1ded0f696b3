"""The numpy scaler path equals scikit-learn's StandardScaler to the bit (it replaces it in
training and prediction, so any drift would silently change every model)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.preprocessing import StandardScaler

from sentinel.ml._scaler import fit_scaler, scaler_to_json, standardise

finite = st.floats(-1e9, 1e9, allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=150, deadline=None)
@given(
    X=arrays(np.float64, st.tuples(st.integers(1, 60), st.integers(1, 8)), elements=finite),
    const=st.booleans(),
)
def test_fit_and_transform_equal_sklearn(X: np.ndarray, const: bool) -> None:
    if const:
        X[:, 0] = X[0, 0]  # a constant column: scale 1
    ref, fast = StandardScaler().fit(X), fit_scaler(X)
    for attr in ("mean_", "var_", "scale_", "n_samples_seen_", "n_features_in_"):
        a, b = getattr(ref, attr), getattr(fast, attr)
        assert type(a) is type(b), attr
        np.testing.assert_array_equal(a, b, err_msg=attr)
    np.testing.assert_array_equal(ref.transform(X), standardise(fast, X))
    np.testing.assert_array_equal(ref.transform(X), fast.transform(X))  # still a real scaler
    assert scaler_to_json(ref) == scaler_to_json(fast)


def test_non_finite_input_goes_through_sklearn() -> None:
    X = np.array([[1.0, np.nan], [2.0, 3.0], [4.0, 5.0]])
    ref, fast = StandardScaler().fit(X), fit_scaler(X)
    np.testing.assert_array_equal(ref.mean_, fast.mean_)
    np.testing.assert_array_equal(ref.n_samples_seen_, fast.n_samples_seen_)  # per column here


def test_standardise_does_not_touch_its_input() -> None:
    X = np.arange(12.0).reshape(4, 3)
    before = X.copy()
    standardise(fit_scaler(X), X)
    np.testing.assert_array_equal(X, before)
