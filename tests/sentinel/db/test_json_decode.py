"""Stored features decode to float64 rows equal, bit for bit, to ``json.loads`` row by row."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentinel.db import Store
from sentinel.db.database import StoredDataError, decode_float_rows

floats = st.floats(allow_nan=False, allow_infinity=False, width=64)


def _where(i: int) -> str:
    return f"row {i}"


def _bits(rows) -> list[list[int]]:
    return [np.asarray(r, dtype="float64").view("u8").tolist() for r in rows]


@settings(max_examples=200, deadline=None)
@given(width=st.integers(0, 6), data=st.data())
def test_rows_of_one_length_equal_json_loads_bit_for_bit(width, data):
    values = data.draw(st.lists(st.lists(floats, min_size=width, max_size=width), max_size=12))
    texts = [json.dumps(v) for v in values]
    for stored in (texts, values):  # text, or lists from drivers that decode JSON themselves
        rows = decode_float_rows(stored, _where)
        assert _bits(rows) == _bits([json.loads(t) for t in texts])
        assert all(r.dtype == np.float64 and r.shape == (width,) for r in rows)


@settings(max_examples=100, deadline=None)
@given(values=st.lists(st.lists(st.one_of(floats, st.integers(-(2**53), 2**53)), max_size=5),
                       max_size=8))  # fmt: skip
def test_ragged_rows_and_integers_decode_as_json_loads_then_float(values):
    rows = decode_float_rows([json.dumps(v) for v in values], _where)
    assert _bits(rows) == _bits([[float(x) for x in v] for v in values])


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        (["[1.0, 2.0]", "[1.0, oops]"], "row 1 is not valid JSON"),
        (["[1.0]", "null"], "row 1 is not a JSON list of numbers: None"),
        (['{"a": 1}'], "row 0 is not a JSON list of numbers"),
        (["[1.0, 2.0]", '[1.0, "x"]'], "row 1 is not a JSON list of numbers"),
        (["[1.0]", "[null]"], "row 1 is not a JSON list of numbers"),
        (["[[1.0], [2.0]]"], "row 0 is not a JSON list of numbers"),
        (["[1.0, 2.0]", '["x"]'], "row 1 is not a JSON list of numbers"),  # ragged and bad
    ],
)
def test_a_value_that_is_not_a_list_of_numbers_is_named(texts, message):
    with pytest.raises(StoredDataError, match=message.replace("[", r"\[")):
        decode_float_rows(texts, _where)


def _store(tmp_path) -> Store:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    rows = [{"symbol": "A", "date": date(2020, 1, d), "horizon_days": 14, "label": 0.01,
             "label_known_at": date(2020, 1, d + 14), "features": [0.1 * d, -0.2]}
            for d in (3, 10)]  # fmt: skip
    store.signals.upsert_training_samples(rows)
    return store


def test_samples_read_twice_are_equal_and_each_read_owns_its_rows(tmp_path):
    store = _store(tmp_path)
    first = store.signals.get_training_samples(horizon_days=14)
    assert [r.tolist() for r in first["features"]] == [[0.1 * 3, -0.2], [0.1 * 10, -0.2]]
    first["features"].iloc[0][0] = 5.0  # a caller changing its rows changes nobody else's
    again = store.view(date(2020, 1, 17)).signals.get_training_samples(horizon_days=14)
    assert again["features"].iloc[0].tolist() == [0.1 * 3, -0.2] and len(again) == 1


def test_a_stored_bad_json_row_raises_one_clear_error_and_is_left_alone(tmp_path):
    store = _store(tmp_path)
    with store.db.transaction() as conn:
        conn.exec_driver_sql("UPDATE training_samples SET features = '[0.3, oops' "
                             "WHERE date = '2020-01-10'")  # fmt: skip
    with pytest.raises(StoredDataError) as exc:
        store.signals.get_training_samples(horizon_days=14)
    assert str(exc.value).startswith("training_samples: features of A on 2020-01-10 is not valid")
    assert "\n" not in str(exc.value)
    assert store.db.rows("SELECT features FROM training_samples ORDER BY date") == [
        ("[0.30000000000000004, -0.2]",), ("[0.3, oops",)]  # fmt: skip
    known = store.view(date(2020, 1, 17)).signals.get_training_samples(horizon_days=14)
    assert len(known) == 1  # the bad row is not known yet, so it is not read
