"""What a stored run's list row says about it, read from the config the row keeps.

Rows store the run's whole config (JSON), so the period, strategy, universe and ML mode come from
it without a schema change; rows written by older versions lack some keys and show ``None``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: The report a run's folder holds: its own, else (a sweep point) the sweep's.
REPORT_FILES = ("report.html", "sweep.html")


def _params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(params.items()))


def strategy_label(cfg: dict[str, Any]) -> str | None:
    """``top_n (n=10)``: the strategy's name and its parameters."""
    s = cfg.get("strategy")
    if not isinstance(s, dict) or not s.get("name"):
        return None
    params = s.get("params") or {}
    return f"{s['name']} ({_params(params)})" if params else str(s["name"])


def universe_label(cfg: dict[str, Any]) -> str | None:
    """``all symbols (demo data, 50)``, ``list: AAA, BBB, +3``, ``sectors: Energy``."""
    u, data = cfg.get("universe"), cfg.get("data") or {}
    if not isinstance(u, dict):
        return None
    kind = u.get("kind", "all")
    if kind == "list":
        syms = list(u.get("symbols") or [])
        text = "list: " + ", ".join(syms[:4]) + (f", +{len(syms) - 4}" if len(syms) > 4 else "")
    elif kind == "sector":
        text = "sectors: " + ", ".join(u.get("sectors") or [])
    else:
        text = "all symbols"
    if data.get("source") == "demo":
        text += f" (demo data, {data.get('demo_symbols')})"
    return text


def ml_label(cfg: dict[str, Any]) -> str | None:
    """The ML mode as the run used it: ``off`` when ML was disabled, whatever the mode says."""
    ml = cfg.get("ml")
    if not isinstance(ml, dict):
        return None
    if ml.get("enabled") is False:
        return "off"
    return ml.get("mode")


def report_file(cfg: dict[str, Any], sweep: bool) -> Path | None:
    """The report inside the run's recorded output folder, if it is there.

    Only the fixed names of :data:`REPORT_FILES` directly inside that folder, and only a regular
    file whose real path is still inside it (a symlink out of the folder is refused): the name
    never comes from a request.
    """
    folder = cfg.get("output")
    if not isinstance(folder, str) or not folder or "\x00" in folder:
        return None
    root = Path(folder)
    if not root.is_absolute():  # rows before the folder was recorded absolute: unknown cwd
        return None
    try:
        real_root = root.resolve(strict=True)
    except OSError:
        return None
    for name in REPORT_FILES if sweep else REPORT_FILES[:1]:
        path = real_root / name
        try:
            if path.resolve(strict=True).parent == real_root and path.is_file():
                return path
        except OSError:
            continue
    return None
