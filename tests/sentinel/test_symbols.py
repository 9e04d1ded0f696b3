"""The one symbol rule (sentinel/symbols.py) and every place that must apply it the same way."""

from __future__ import annotations

import warnings

import pytest

from sentinel.errors import SentinelError
from sentinel.symbols import SYMBOL_PATTERN, InvalidSymbolError, check_symbol, is_valid_symbol

VALID = ["AAPL", "A", "BRK.B", "BF-B", "^GSPC", "^VIX", "ES=F", "7203", "NA", "X" * 16, "MARKET"]
INVALID = [
    "", "aapl", "Aapl", "../../evil", "..", "A..B", ".HIDDEN", "-RF", "=X", "A B", "A/B", "A\\B",
    "ÄÖÜ", "X" * 17, "^", "^^A", "A^", "AAPL\n", "\nAAPL", " AAPL", "A\x00", "%2E%2E", "A:B",
]  # fmt: skip


@pytest.mark.parametrize("symbol", VALID)
def test_valid_symbols(symbol):
    assert is_valid_symbol(symbol) and check_symbol(symbol) == symbol


@pytest.mark.parametrize("symbol", [*INVALID, None, 1, b"AAPL", ["AAPL"]])
def test_invalid_symbols_are_one_line_sentinel_errors(symbol):
    assert not is_valid_symbol(symbol)
    with pytest.raises(InvalidSymbolError) as exc:
        check_symbol(symbol, where="prices.csv, line 7")
    assert isinstance(exc.value, SentinelError) and isinstance(exc.value, ValueError)
    assert str(exc.value).startswith("prices.csv, line 7: invalid symbol")
    assert "\n" not in str(exc.value)


def test_every_place_uses_the_same_rule():
    """Model folders, the API path check and the importer agree with is_valid_symbol."""
    from sentinel.api import deps
    from sentinel.ml.errors import MLError
    from sentinel.ml.model_files import check_symbol as folder_check

    assert deps.SYMBOL_PATTERN == SYMBOL_PATTERN
    for s in VALID:
        assert folder_check(s) == s
    for s in INVALID:
        with pytest.raises(MLError, match="invalid symbol"):
            folder_check(s)


def test_model_store_lists_only_folders_that_follow_the_rule(tmp_path):
    from sentinel.ml.model_files import ModelStore

    for name in ("AAPL", "aapl", "^GSPC", "a b"):
        (tmp_path / name).mkdir()
    assert ModelStore(tmp_path).symbols() == ["AAPL", "^GSPC"]


def test_api_path_check_applies_the_rule(tmp_path, store):
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

    from sentinel.api import create_app
    from sentinel.settings import Settings

    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'api.db'}", data_dir=tmp_path / "data",
        environment="test", api_token="t" * 24,
    )  # fmt: skip
    with TestClient(create_app(store, settings)) as client:
        for symbol in ("aapl", "A%20B", "X" * 17, "-RF"):
            assert client.get(f"/api/ml/models/{symbol}").status_code == 422, symbol
        for symbol in ("BRK.B", "%5EGSPC", "ES=F"):  # valid but unknown: 404, not 422
            assert client.get(f"/api/ml/models/{symbol}").status_code == 404, symbol
