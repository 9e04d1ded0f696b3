"""``sentinel data …``: import real data, generate the demo universe, inspect the store."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli._common import console, open_cli_store, working
from sentinel.errors import ConfigError

app = typer.Typer(
    help="Import data, build the demo universe, inspect the store.", no_args_is_help=True
)


@app.command("import")
def import_(
    paths: Annotated[list[Path], typer.Argument(help="CSV/CSV.gz/Parquet files, long format.")],
    kind: Annotated[
        str | None,
        typer.Option(
            help="prices | benchmark | sectors | sentiment | actions | listings | sector_history"
            " | membership (default: from the columns)."
        ),
    ] = None,
    skip_bad: Annotated[
        bool, typer.Option("--skip-bad", help="Skip and report bad rows instead of stopping.")
    ] = False,
    adjust: Annotated[
        str,
        typer.Option(help="none | adj_close: scale OHLC (and volume) by adj_close/close."),
    ] = "none",
    symbol: Annotated[
        str | None, typer.Option(help="Symbol for a file without a symbol column.")
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="Write every rejected row (file, line, rule) to this CSV.")
    ] = None,
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="Overwrite stored bars that differ (refused otherwise: a file "
            "adjusted differently would silently replace them).",
        ),
    ] = False,
) -> None:
    """Validate files and load them in one transaction (all or nothing; re-import is a no-op)."""
    from sentinel.data.importer import KINDS, parse_file, write_parsed  # lazy: pandas, pyarrow

    if kind is not None and kind not in KINDS:
        raise ConfigError(f"--kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if adjust not in ("none", "adj_close"):
        raise ConfigError(f"--adjust must be none or adj_close, not {adjust!r}")
    store = open_cli_store()
    parsed = []
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console
    ) as progress:
        for p in paths:
            task = progress.add_task(f"validating {p}", total=None)
            parsed.append(
                parse_file(p, kind=kind, skip_bad=skip_bad, adjust=adjust, symbol=symbol)  # type: ignore[arg-type]
            )
            progress.update(task, description=f"validated {p}", completed=1, total=1)
        task = progress.add_task("writing (one transaction)", total=None)
        write_parsed(store, parsed, replace=replace)
        progress.update(task, description="written", completed=1, total=1)
    table = Table(title="import")
    for col in ("file", "kind", "rows read", "imported", "symbols", "skipped by rule"):
        table.add_column(col)
    for p in parsed:
        r = p.report
        skipped = ", ".join(f"{k}: {v}" for k, v in r.bad_by_rule.items()) or "-"
        table.add_row(
            r.path, r.kind, f"{r.rows_read:,}", f"{r.rows_valid:,}", str(r.symbols), escape(skipped)
        )
    console.print(table)
    bad = [b for p in parsed for b in p.report.bad]
    for b in bad[:10]:
        console.print(
            escape(f"  skipped {b.path}, line {b.line}: {b.rule} ({b.symbol} {b.date})"),
            soft_wrap=True,
        )
    if len(bad) > 10:
        console.print(f"  … and {len(bad) - 10} more" + ("" if report else " (--report FILE)"))
    if report and bad:
        with report.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["file", "line", "rule", "symbol", "date"])
            w.writerows((b.path, b.line, b.rule, b.symbol, b.date) for b in bad)
        console.print(f"rejected rows written to {report}")


@app.command()
def demo(
    seed: Annotated[
        int, typer.Option(help="Random seed: the same seed gives the same market.")
    ] = 7,
    symbols: Annotated[int, typer.Option(help="Number of synthetic symbols.")] = 50,
    start: Annotated[str, typer.Option(help="First day (YYYY-MM-DD).")] = "2014-01-01",
    end: Annotated[str, typer.Option(help="Last day (YYYY-MM-DD).")] = "2023-12-31",
) -> None:
    """Generate the synthetic demo universe and load it into the store."""
    from sentinel.data.demo import generate_demo_universe, install_demo  # lazy: pandas

    store = open_cli_store()
    with working("generating the demo universe (synthetic data)"):
        counts = install_demo(store, generate_demo_universe(seed, symbols, start, end))
    console.print(
        f"demo universe loaded: {counts['symbols']} symbols, {counts['prices']:,} bars, "
        f"{counts['benchmark']:,} market-index bars (synthetic, seed {seed})"
    )
    print_summary(store)


@app.command()
def info() -> None:
    """Summarise what the store holds."""
    print_summary(open_cli_store())


def print_summary(store) -> None:
    """A table of what the store holds: the summary the main job prints before a run."""
    span = store.market.price_span()
    table = Table(title=f"store: {store.engine.url.render_as_string(hide_password=True)}")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("price span", f"{span[0]} .. {span[1]}" if span else "empty")
    for t in (
        "securities", "prices", "benchmark_prices", "sentiment", "wavelet_scores",
        "regime_states", "training_samples", "model_records", "ml_predictions", "backtest_runs",
        "corporate_actions", "listings", "sector_history", "index_membership",
    ):  # fmt: skip
        table.add_row(t, f"{store.db.count(t):,}")
    table.add_row("benchmarks", ", ".join(store.market.benchmark_symbols()) or "-")
    if span:
        sectors: dict[str, int] = {}
        for s in store.market.universe(span[1]):
            sectors[s.sector or "(none)"] = sectors.get(s.sector or "(none)", 0) + 1
        table.add_row(f"universe on {span[1]}", str(sum(sectors.values())))
        for name, n in sorted(sectors.items()):
            table.add_row(f"  {name}", str(n))
    console.print(table)
