"""What each security is worth on a rebalance day: wavelet scores, ML predictions, the blend.

Everything here is handed a store *view* bound to the day it works for (``view.day`` is "now");
nothing takes a free date or moves the view, so a read past the day is a
:class:`~sentinel.errors.LookAheadError`, never a leak. The runner makes the view on each tick.

``Analyzer.update_scores`` computes and stores the wavelet scores of the universe as of the view's
day. ``RebalanceEngine.predict_and_blend`` turns features into predicted returns with the
per-symbol models, maps them to scores and blends them with the wavelet scores. ``Planner`` runs
both for a day and, in walk-forward mode, retrains the models in simulated time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from sentinel.db import ScoreRecord, Store
from sentinel.ml.blend import blend_scores, return_to_score
from sentinel.ml.errors import load_problem
from sentinel.ml.policy import MLPolicy
from sentinel.regime import get_regime_adjusted_return, quote_data_block, quote_data_panel
from sentinel.timeutil import end_of_day_ts
from sentinel.wavelet import WINDOW, wavelet_scores_arrays

#: Trading days of history read on a rebalance day (wavelet window, regime's 200-day average).
LOOKBACK_DAYS = 260

SCORE_COLUMNS = [
    "wavelet_score", "wavelet_d1", "wavelet_d4", "predicted_return", "ml_score", "blended_score",
    "blend_ratio", "regime_score", "regime_dampening", "model_id", "fallback",
]  # fmt: skip


def _today(view: Store) -> date:
    if view.day is None:
        raise ValueError("a planner step needs a view bound to a day (store.view(day))")
    return view.day


class Security:
    """A security as the notes' API sees it: a symbol with as-of score reads."""

    def __init__(self, store: Store, symbol: str):
        self.store = store
        self.symbol = symbol

    def get_score(self, as_of_date: date | float | None = None) -> float | None:
        rec = self.store.signals.get_score(self.symbol, as_of_date)
        return None if rec is None else rec.score


class Analyzer:
    """Computes and stores the wavelet scores of the universe as of a view's day."""

    def update_scores(
        self,
        view: Store,
        symbols: Iterable[str] | None = None,
        closes: pd.DataFrame | None = None,
    ) -> dict[str, ScoreRecord]:
        """Score ``symbols`` (default: the universe) as of ``view.day``.

        Symbols with fewer than ``WINDOW`` closes get no score (they are not rankable yet).
        """
        d = _today(view)
        syms = list(symbols) if symbols is not None else view.market.universe_symbols(d)
        if closes is None:
            closes = view.market.get_close_panel(syms, days=WINDOW + 5, end_date=d)
        present = [s for s in syms if s in closes.columns]
        if not present:
            return {}
        if present != closes.columns.tolist():  # a block read of syms is already in order
            closes = closes[present]
        values, valid = wavelet_scores_arrays(closes, pd.Timestamp(d))
        ts = end_of_day_ts(d)
        names = np.asarray(present, dtype=object)[valid].tolist()
        score, d1, d4 = values[valid].T.tolist()
        records = {
            sym: ScoreRecord(sym, d, ts, s, {"wavelet_d1": c1, "wavelet_d4": c4})
            for sym, s, c1, c4 in zip(names, score, d1, d4, strict=True)
        }
        view.signals.save_scores(records.values())
        return records


class RebalanceEngine:
    """predict_and_blend: model predictions -> 0..1 scores -> blend with the wavelet scores."""

    def predict_and_blend(
        self,
        view: Store,
        wavelet: dict[str, ScoreRecord],
        features: pd.DataFrame | None,
        predictor: Any | None,
        *,
        blend_ratio: float,
        ml_enabled: bool = True,
        quotes: dict[str, dict[str, Any]] | None = None,
        model_id: str | None = None,
        model_ids: Mapping[str, str] | None = None,
        model_mode: str | None = None,
        ml_allowed: Callable[[str], bool] | None = None,
        persist: bool = False,
    ) -> pd.DataFrame:
        """Scores of every symbol with a wavelet score, as of ``view.day``.

        Without ML (disabled, no predictor, no model for the symbol, bad features) a symbol keeps
        its wavelet score, and the reason is recorded in ``fallback``. With ``persist`` the rows
        are written to ``ml_predictions`` (one per symbol and date, ``predicted_at`` = end of day).
        ``model_ids`` names a symbol's model where it differs from ``model_id``.
        """
        d = _today(view)
        symbols = sorted(wavelet)
        n = len(symbols)
        # Columns are filled as plain lists and the frame is made once: a frame write per
        # symbol cost more than the whole prediction.
        fallback: list[str | None] = [None] * n
        predicted, ml_score, rscore, damp = ([np.nan] * n for _ in range(4))
        model: list[str | None] = [None] * n
        raw: dict[str, float] = {}
        pos = {s: i for i, s in enumerate(symbols)}
        if ml_enabled and predictor is not None:
            rows = self._feature_rows(symbols, features, predictor, ml_allowed, fallback)
            if rows:
                try:
                    raw = predictor.predict_batch(rows)
                except Exception as exc:  # noqa: BLE001 - a bad model must not end the run
                    for s in rows:
                        fallback[pos[s]] = f"prediction failed: {type(exc).__name__}"
                    raw = {}
        for s, r in raw.items():
            i = pos[s]
            if not np.isfinite(r):
                fallback[i] = "non-finite prediction"
                continue
            quote = (quotes or {}).get(s)
            adjusted, rscore[i], damp[i] = (
                get_regime_adjusted_return(float(r), quote) if quote else (float(r), 0.0, 1.0)
            )
            predicted[i] = float(r)
            ml_score[i] = float(return_to_score(adjusted))
            model[i] = (model_ids or {}).get(s, model_id)
        index = pd.Index(symbols, name="symbol")
        wav = np.array([wavelet[s].score for s in symbols], dtype="float64")
        ml = np.array(ml_score, dtype="float64")
        if not ml_enabled:  # one reason for all: a string column, as a scalar assignment makes
            reasons: Any = "ml disabled"
        elif predictor is None:
            reasons = "no models"
        else:
            reasons = pd.Series(fallback, index=index, dtype=object)
        out = pd.DataFrame(
            {
                "wavelet_score": wav,
                "wavelet_d1": [wavelet[s].components.get("wavelet_d1", 0.0) for s in symbols],
                "wavelet_d4": [wavelet[s].components.get("wavelet_d4", 0.0) for s in symbols],
                "predicted_return": np.array(predicted, dtype="float64"),
                "ml_score": ml,
                "blended_score": blend_scores(wav, ml, blend_ratio),
                "blend_ratio": np.full(n, float(blend_ratio)),
                "regime_score": np.array(rscore, dtype="float64"),
                "regime_dampening": np.array(damp, dtype="float64"),
                "model_id": pd.Series(model, index=index, dtype=object),
                "fallback": reasons,
            },
            index=index,
        )
        if persist:
            view.signals.upsert_ml_predictions(prediction_rows(out, d, model_mode))
        return out

    @staticmethod
    def _feature_rows(
        symbols: list[str],
        features: pd.DataFrame | None,
        predictor: Any,
        ml_allowed: Callable[[str], bool] | None,
        fallback: list[str | None],
    ) -> dict[str, np.ndarray]:
        """The finite feature rows of the symbols the models can score; the reason for each
        other symbol is written into ``fallback`` (same positions as ``symbols``)."""
        every = getattr(predictor, "scores_every_symbol", False)  # ml.model pooled kinds
        have = set() if every else set(predictor.symbols)
        at: dict[str, int] = {}
        matrix = None
        if features is not None and features.index.is_unique:  # one conversion, not one per row
            at = {s: i for i, s in enumerate(features.index)}
            matrix = features.to_numpy(dtype="float64")
        elif features is not None:
            at = dict.fromkeys(features.index, -1)
        rows = {}
        for i, s in enumerate(symbols):
            if ml_allowed is not None and not ml_allowed(s):
                fallback[i] = "ml disabled for symbol"
            elif not every and s not in have:
                err = getattr(predictor, "load_errors", {}).get(s)
                fallback[i] = f"model load error: {load_problem(err)}"[:128] if err else "no model"
            elif s not in at:
                fallback[i] = "no features"
            else:
                x = (
                    matrix[at[s]]
                    if matrix is not None
                    else features.loc[s].to_numpy(dtype="float64")
                )
                if np.isfinite(x).all():
                    rows[s] = x
                else:
                    fallback[i] = "non-finite features"
        return rows


def prediction_rows(scores: pd.DataFrame, d: date, model_mode: str | None) -> list[dict]:
    """``ml_predictions`` rows from a :meth:`RebalanceEngine.predict_and_blend` frame."""

    def f(v: Any) -> float | None:
        return None if v is None or pd.isna(v) else float(v)

    return [
        {
            "symbol": s, "date": d, "predicted_at": end_of_day_ts(d),
            "predicted_return": f(r.predicted_return), "ml_score": f(r.ml_score),
            "wavelet_score": f(r.wavelet_score), "blended_score": float(r.blended_score),
            "blend_ratio": float(r.blend_ratio), "regime_score": f(r.regime_score),
            "regime_dampening": f(r.regime_dampening), "model_id": r.model_id,
            "model_mode": model_mode, "fallback": r.fallback,
        }
        for s, r in scores.iterrows()
    ]  # fmt: skip


class Planner:
    """Scores the universe on a day; retrains per-symbol models in simulated time when asked.

    Retraining is recorded on the retrain day's view and run when the next scores need models
    (the same day in a backtest, where every retrain day is a rebalance day), so a resumed
    backfill does not pay for retrains whose predictions already exist.
    """

    #: The runner need not read the long bars for :meth:`scores`: it reads the close block it
    #: needs through the view (building the long frame cost more than the scores that use it).
    needs_bars = False

    def __init__(
        self,
        policy: MLPolicy,
        *,
        universe: Callable[[date], list[str]],
        ml_flags: Mapping[str, bool] | None = None,
        book: Any | None = None,
        predictor: Any | None = None,
        model_ids: Mapping[str, str] | None = None,
        train_symbols: Iterable[str] | None = None,
        on_retrain: Callable[[date, Any], None] | None = None,
        train_map: Any | None = None,
        nn_worker: Any | None = None,
    ):
        self.policy = policy
        self.universe = universe
        self.ml_flags = dict(ml_flags or {})
        self.book = book
        self.predictor = predictor
        self.model_ids = dict(model_ids or {})
        self.train_symbols = sorted(train_symbols) if train_symbols is not None else None
        self.model_id: str | None = "current" if policy.mode == "current" else None
        self.on_retrain = on_retrain
        self.train_map = train_map  # a ChunkMapper (sentinel.ml.training): retrains fan out
        #: a sentinel.ml.nn_worker.NNWorker: the retrains' networks train in that process
        self.nn_worker = nn_worker
        self.analyzer = Analyzer()
        self.blender = RebalanceEngine()
        self._retrain_view: Store | None = None
        #: symbol -> (epochs, trees) picked at the last selecting retrain (``select_every``)
        self._counts: dict[str, tuple[int, int]] = {}
        #: symbol -> the last retrain's network, kept only for ``ml.warm_start``
        self._networks: dict[str, Any] = {}
        self._n_retrains = 0

    @property
    def walk_forward(self) -> bool:
        return self.policy.enabled and self.policy.mode == "walk_forward"

    def retrain(self, view: Store) -> None:
        """Walk-forward: refit every eligible symbol on the samples known by ``view.day``."""
        if self.walk_forward:
            _today(view)
            self._retrain_view = view

    def _fit_pending(self) -> None:
        view, self._retrain_view = self._retrain_view, None
        if view is None:
            return
        from sentinel.ml.nn_worker import using
        from sentinel.ml.predictor import Predictor  # lazy: compiles the boosters' arrays
        from sentinel.ml.training import train_as_of

        d = _today(view)
        # the previous retrain's models are replaced below: free them before the next set is
        # trained, not after (two sets of 500 symbols' models are ~200 MB)
        self.predictor = None
        select = self._n_retrains % max(1, int(self.policy.select_every)) == 0
        self._n_retrains += 1
        with using(self.nn_worker):
            report = train_as_of(
                view, as_of=d, symbols=self.train_symbols, horizon_days=self.policy.horizon_days,
                min_samples=self.policy.min_samples, max_epochs=self.policy.max_epochs,
                validate=False, seed=self.policy.seed, book=self.book, model=self.policy.model,
                target=self.policy.target, label_from=self.policy.label_from,
                map_chunks=self.train_map, metrics=False, for_prediction=True,
                counts=None if select else self._counts,
                warm=None if select else self._networks, warm_share=self.policy.warm_start,
            )  # fmt: skip
        if select:
            self._counts = {}
        self._counts.update(report.counts)  # a symbol first seen between selections keeps its own
        if self.policy.warm_start > 0:
            self._networks = {s: m.nn_ for s, m in report.models.items() if hasattr(m, "nn_")}
        if report.predictor is not None:  # pooled / hierarchical: one predictor for the day
            self.predictor = report.predictor
        else:
            predictor = Predictor()
            for sym, model in report.models.items():
                predictor.add(sym, model)
            self.predictor = predictor if report.models else None
        kind = "" if self.policy.model == "per_symbol" else f"{self.policy.model}:"
        self.model_id = f"walk_forward:{kind}{d.isoformat()}"
        if self.on_retrain:
            self.on_retrain(d, report)
        from sentinel.ml._memory import release_freed_memory

        release_freed_memory()  # the retrain's freed temporaries, before the run goes on

    def history(self, view: Store, symbols: list[str]) -> pd.DataFrame:
        """Long bars of ``symbols`` for the trailing ``LOOKBACK_DAYS`` up to ``view.day``."""
        return view.market.get_price_panel(symbols, days=LOOKBACK_DAYS, end_date=_today(view))

    def scores(self, view: Store, bars: pd.DataFrame | None = None) -> pd.DataFrame:
        """The scores frame (see :data:`SCORE_COLUMNS`) of the universe as of ``view.day``.

        ``bars``: the :meth:`history` of the universe, if the caller has read it; else the
        closes of the same trailing ``LOOKBACK_DAYS`` are read as a block (the same numbers).
        """
        d = _today(view)
        self._fit_pending()
        symbols = self.universe(d)
        block = None
        if bars is None:
            block = view.market.get_close_block(symbols, days=LOOKBACK_DAYS, end_date=d)
            closes = block.frame()
        else:
            closes = bars.pivot(index="date", columns="symbol", values="close")
        wavelet = self.analyzer.update_scores(view, symbols, closes)
        ml_on = self.policy.enabled and self.policy.mode != "off"
        use_ml = ml_on and self.predictor is not None
        features = quotes = None
        if use_ml:
            if self.book is not None:
                features = self.book.panel_as_of(list(wavelet), view)
            quotes = (
                quote_data_panel(bars, wavelet)
                if block is None
                else quote_data_block(block.values, block.dates, block.symbols, wavelet)
            )
        return self.blender.predict_and_blend(
            view, wavelet, features, self.predictor if use_ml else None,
            blend_ratio=self.policy.blend_ratio, ml_enabled=ml_on, quotes=quotes,
            model_id=self.model_id, model_ids=self.model_ids, model_mode=self.policy.mode,
            ml_allowed=lambda s: self.ml_flags.get(s, True),
        )  # fmt: skip
