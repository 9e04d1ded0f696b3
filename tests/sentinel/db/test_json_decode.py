"""The memoised decode of stored JSON lists equals ``json.loads`` row by row."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from sentinel.db import database
from sentinel.db.database import decode_json, decode_json_lists

floats = st.floats(allow_nan=False, allow_infinity=False)
stored = st.one_of(
    st.lists(floats, max_size=5).map(json.dumps),  # a features column as text
    st.lists(floats, max_size=5),  # drivers that decode JSON themselves
    st.just("null"),
    st.just('{"a": 1}'),
    st.none(),
)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(stored, max_size=12))
def test_decode_json_lists_equals_decode_json_per_row(values):
    memo: dict = {}
    assert decode_json_lists(values, memo) == [decode_json(v) for v in values]
    assert decode_json_lists(values, memo) == [decode_json(v) for v in values]  # memo hits


def test_each_caller_gets_its_own_list_and_a_full_memo_starts_again(monkeypatch):
    text, memo = json.dumps([1.5, -2.0]), {}
    first = decode_json_lists([text], memo)[0]
    first.append(99.0)  # a caller changing its copy changes nobody else's
    assert decode_json_lists([text], memo) == [[1.5, -2.0]]
    monkeypatch.setattr(database, "DECODED_MAX", 1)
    assert decode_json_lists([text, "[3.0]"], memo) == [[1.5, -2.0], [3.0]]
    assert memo == {"[3.0]": [3.0]}


def test_samples_read_twice_are_equal_and_each_read_has_its_own_lists(tmp_path):
    from datetime import date

    from sentinel.db import Store

    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    row = {"symbol": "A", "date": date(2020, 1, 3), "horizon_days": 14, "label": 0.01,
           "label_known_at": date(2020, 1, 17), "features": [0.1, -0.2]}  # fmt: skip
    store.signals.upsert_training_samples([row])
    first = store.signals.get_training_samples(horizon_days=14)
    first["features"].iloc[0].append(5.0)
    again = store.view(date(2020, 1, 17)).signals.get_training_samples(horizon_days=14)
    assert again["features"].tolist() == [[0.1, -0.2]]
    assert store.db.decoded_json  # the views share the store's memo
