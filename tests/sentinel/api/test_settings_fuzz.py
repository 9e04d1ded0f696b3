"""Fuzz ``POST /api/settings`` with random JSON documents and values, with and without a token.

Every answer is 2xx or 4xx (never a 500), a refused request leaves the stored settings as they
were, an accepted one stores exactly what was sent, and no answer is larger than a bound or
repeats a long string of the request.
"""

from __future__ import annotations

import json
import math

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sentinel.api import create_app
from sentinel.retrain import RetrainManager
from sentinel.settings import ML_KEYS
from tests.sentinel.api.conftest import AUTH, FAST

#: No answer of the settings endpoint is larger than this, whatever was sent.
MAX_ANSWER = 4096

#: Values at and around the bounds, non-finite numbers (JSON NaN / Infinity), huge integers.
edges = st.sampled_from(
    [math.nan, math.inf, -math.inf, 1e400, -0.0, 0.0, 1.0, 1.0000001, 0, 1, 9, 10, 365, 366,
     100_000, 100_001, 10**29, 2**63, -(2**63) - 1, True, False, None]
)  # fmt: skip
non_finite = st.sampled_from([math.nan, math.inf, -math.inf])
scalars = (
    edges
    | non_finite
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.floats(min_value=-0.5, max_value=1.5)
    | st.integers(min_value=-5, max_value=100_005)
    | st.text(max_size=20)
    | st.text(min_size=40, max_size=300)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=80), inner, max_size=4)
    ),
    max_leaves=12,
)
keys = st.sampled_from(ML_KEYS) | st.text(max_size=120)
#: Updates the endpoint must accept (any subset of the keys, values within the bounds).
valid = st.fixed_dictionaries(
    {},
    optional={
        "ml_enabled": st.booleans(),
        "ml_wavelet_blend_ratio": st.floats(min_value=0.0, max_value=1.0),
        "ml_retrain_weekly": st.booleans(),
        "ml_prediction_horizon_days": st.integers(min_value=1, max_value=365),
        "ml_min_samples_per_symbol": st.integers(min_value=10, max_value=100_000),
    },
)
documents = (
    valid
    | st.dictionaries(st.sampled_from(ML_KEYS), edges | non_finite, min_size=1, max_size=3)
    | st.dictionaries(keys, values, max_size=6)
    | st.dictionaries(st.sampled_from(ML_KEYS), scalars, min_size=1, max_size=5)
    | values
)
bodies = documents.map(lambda d: json.dumps(d, allow_nan=True).encode()) | st.binary(max_size=300)


def _long_strings(doc) -> list[str]:
    """The strings of a document (keys too) long enough that seeing them again is an echo."""
    found: list[str] = []
    stack = [doc]
    while stack:
        v = stack.pop()
        if isinstance(v, str) and len(v) >= 40:
            found.append(v)
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return found


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b and type(a) is type(b)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=bodies, with_token=st.booleans() | st.just(True))
def test_settings_endpoint_never_fails_and_never_half_applies(
    store, api_settings, body, with_token
):
    client = TestClient(
        create_app(store, api_settings, retrain=RetrainManager(store, api_settings, **FAST)),
        raise_server_exceptions=False,
    )
    before = store.records.get_stored_settings()
    headers = {"Content-Type": "application/json", **(AUTH if with_token else {})}
    r = client.post("/api/settings", content=body, headers=headers)

    event(f"status {r.status_code}")
    assert 200 <= r.status_code < 500, (r.status_code, r.text[:300])
    assert len(r.content) <= MAX_ANSWER, len(r.content)
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    for s in _long_strings(doc):
        assert s not in r.text
    after = store.records.get_stored_settings()
    if r.status_code >= 300:
        assert after == before
        return
    assert with_token and isinstance(doc, dict) and set(doc) <= set(ML_KEYS)
    assert after == {**before, **doc}
    assert all(_same(r.json()[k], v) or r.json()[k] == v for k, v in doc.items())
    assert client.get("/api/settings").json() == r.json()
