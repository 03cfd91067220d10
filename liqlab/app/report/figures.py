"""Key figures for the report index, read from a notebook's results JSON.

Tolerant of missing keys: a notebook's own ``key_figures`` (if it provides them), the top clusters, the
magnet lift and p-values, and Spearman correlations (validation and baselines), found at any depth.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["key_figures"]

_FIGURE_PATTERNS = (
    ("lift", re.compile(r"(^|[._])(magnet_)?lift$", re.I)),
    ("p", re.compile(r"(^|[._])(p_?value|pvalue|p)$", re.I)),
    ("spearman", re.compile(r"spearman", re.I)),
)


def _walk(obj: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            yield from _walk(v, f"{prefix}.{k}" if prefix else str(k))
    else:
        yield prefix, obj


def _fmt_num(x: Any) -> str:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    ax = abs(x)
    if ax >= 1e9:
        return f"{x / 1e9:.2f}B"
    if ax >= 1e6:
        return f"{x / 1e6:.2f}M"
    if ax >= 1e4:
        return f"{x:,.0f}"
    if ax >= 1 or ax == 0:
        return f"{x:.3g}" if not float(x).is_integer() else f"{int(x)}"
    return f"{x:.3g}"


def _clusters_row(results: Mapping) -> list[str] | None:
    """``['top clusters', 'short 101000 ($25.00M); ...']`` from the first clusters list found, or None."""
    clusters = None
    for k, v in _walk(results):
        if k.split(".")[-1] in ("top_clusters", "clusters") and isinstance(v, list):
            clusters = v
            break
    if not clusters:
        return None
    parts = []
    for c in clusters[:3]:
        if isinstance(c, Mapping):
            side = c.get("side", "")
            price = c.get("price")
            notional = c.get("notional", c.get("value", c.get("usd")))
            parts.append(f"{side} {_fmt_num(price)}" + (f" (${_fmt_num(notional)})" if notional is not None else ""))
    return ["top clusters", "; ".join(parts)] if parts else None


def key_figures(results: Any, limit: int = 12) -> list[list[str]]:
    """Label/value pairs for the report index from a notebook's results JSON.

    Parameters
    ----------
    results : Any
        The parsed results JSON (anything but a mapping gives no figures).
    limit : int
        At most this many pairs.

    Returns
    -------
    list of [str, str]
        ``key_figures`` entries first, then the top clusters, then lifts, p-values and Spearman
        correlations by their dotted key; values formatted short (``25.00M``, ``0.401``).
    """
    out: list[list[str]] = []
    if not isinstance(results, Mapping):
        return out
    kf = results.get("key_figures")
    if isinstance(kf, Mapping):
        out += [[str(k), _fmt_num(v)] for k, v in kf.items() if not isinstance(v, (Mapping, list))]
    row = _clusters_row(results)
    if row:
        out.append(row)
    seen = {row[0] for row in out}
    for k, v in _walk(results):
        if k.startswith("key_figures") or isinstance(v, (list, str)) or v is None:
            continue
        if any(p.search(k.split(".")[-1]) or (label == "spearman" and p.search(k)) for label, p in _FIGURE_PATTERNS):
            if k not in seen:
                out.append([k, _fmt_num(v)])
                seen.add(k)
    return out[:limit]
