"""The application records: model records, stored settings, backtest runs and live trading.

What the application keeps about itself rather than market history, so reads are not bounded by
any simulated day: a view's records are the same rows as the unbounded store's.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, select

from sentinel.db.database import Database, decode_json
from sentinel.db.tables import (
    BacktestRun,
    LiveAccount,
    LiveOrder,
    LiveRecommendation,
    ModelRecord,
    SettingRow,
)
from sentinel.errors import NotFoundError


class RecordRepository:
    """Model records, settings, backtest runs and live accounts of one database."""

    def __init__(self, db: Database):
        self.db = db

    # -- model records ----------------------------------------------------------------------
    def upsert_model_record(self, record: ModelRecord) -> None:
        with Session(self.db.engine) as s:
            s.merge(record)
            s.commit()

    def get_model_records(self) -> list[ModelRecord]:
        with Session(self.db.engine) as s:
            return list(s.exec(select(ModelRecord).order_by(ModelRecord.symbol)).all())

    def get_model_record(self, symbol: str) -> ModelRecord | None:
        with Session(self.db.engine) as s:
            return s.get(ModelRecord, symbol)

    def model_records_fingerprint(self) -> tuple[Any, ...]:
        """Count, latest ``trained_at`` and sample total of the model records."""
        sql = "SELECT COUNT(*), MAX(trained_at), SUM(training_samples) FROM model_records"
        return tuple(self.db.rows(sql)[0])

    # -- settings ---------------------------------------------------------------------------
    def get_stored_settings(self) -> dict[str, Any]:
        """The settings changed through the API: key -> value."""
        with Session(self.db.engine) as s:
            return {r.key: decode_json(r.value)["value"] for r in s.exec(select(SettingRow))}

    def set_settings(self, values: dict[str, Any]) -> None:
        now = datetime.now(UTC)
        with Session(self.db.engine) as s:
            for k, v in values.items():
                s.merge(SettingRow(key=k, value={"value": v}, updated_at=now))
            s.commit()

    # -- backtest runs ----------------------------------------------------------------------
    def save_backtest_run(self, run: BacktestRun) -> int:
        with Session(self.db.engine) as s:
            s.add(run)
            s.commit()
            s.refresh(run)
            assert run.id is not None
            return run.id

    def list_backtest_runs(self, sweep_id: str | None = None) -> list[BacktestRun]:
        with Session(self.db.engine) as s:
            q = select(BacktestRun)
            if sweep_id is not None:
                q = q.where(BacktestRun.sweep_id == sweep_id)
            return list(s.exec(q.order_by(BacktestRun.id)).all())  # type: ignore[arg-type]

    def get_backtest_run(self, run_id: int) -> BacktestRun:
        with Session(self.db.engine) as s:
            run = s.get(BacktestRun, run_id)
        if run is None:
            raise NotFoundError(f"no backtest run with id {run_id}")
        return run

    def backtest_runs_fingerprint(self) -> tuple[Any, ...]:
        """Count and newest id of the stored runs (insert-only, so that is every change)."""
        return tuple(self.db.rows("SELECT COUNT(*), MAX(id) FROM backtest_runs")[0])

    # -- live accounts, orders and recommendations ------------------------------------------
    def get_live_account(self, account: str) -> LiveAccount | None:
        with Session(self.db.engine) as s:
            return s.get(LiveAccount, account)

    def send_live_order(self, order: LiveOrder) -> bool:
        """Record an order as sent, once: a second send of the same id is a no-op (False)."""
        row = order.model_dump()
        with self.db.engine.begin() as conn:
            before = conn.execute(
                text("SELECT 1 FROM live_orders WHERE order_id = :i"), {"i": order.order_id}
            ).first()
            if before is not None:
                return False
            self.db.upsert("live_orders", ["order_id"], [row], conn=conn)
        return True

    def live_orders(self, account: str, status: str | None = None) -> list[LiveOrder]:
        with Session(self.db.engine) as s:
            q = select(LiveOrder).where(LiveOrder.account == account)
            if status is not None:
                q = q.where(LiveOrder.status == status)
            return list(s.exec(q.order_by(LiveOrder.decided_on, LiveOrder.symbol)).all())

    def commit_live_day(
        self,
        account: LiveAccount,
        fills: list[dict[str, Any]],
        cancelled: list[tuple[str, str]],
        recommendations: list[dict[str, Any]],
    ) -> None:
        """A processed live day, atomically: fills, cancellations, the book, recommendations."""
        with Session(self.db.engine) as s:
            for f in fills:
                o = s.get(LiveOrder, f["order_id"])
                if o is not None:
                    o.status, o.fill_day, o.fill_price = "filled", f["day"], f["price"]
                    o.commission, o.slippage = f["commission"], f["slippage"]
                    o.quantity = f["quantity"]
                    s.add(o)
            for order_id, why in cancelled:
                o = s.get(LiveOrder, order_id)
                if o is not None:
                    o.status, o.note = "cancelled", why
                    s.add(o)
            for r in recommendations:
                s.merge(LiveRecommendation(**r))
            s.merge(account)
            s.commit()

    def live_recommendations(self, account: str) -> list[LiveRecommendation]:
        with Session(self.db.engine) as s:
            q = select(LiveRecommendation).where(LiveRecommendation.account == account)
            return list(s.exec(q.order_by(LiveRecommendation.date, LiveRecommendation.symbol)))
