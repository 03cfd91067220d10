"""Heatmap engine parameters: THE one place where engine defaults live.

``HeatmapParams`` is a frozen dataclass. Every field carries metadata (``description``, ``unit``, and
``choices`` or ``range``) so that user interfaces (ipywidgets, the static explorer, CLI help) are built
from it rather than repeating defaults. ``LEVERAGE_PRESETS`` are named leverage mixes.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from liqlab.errors import ParameterError, read_text

__all__ = [
    "HeatmapParams",
    "LEVERAGE_PRESETS",
    "DEFAULT_LEVERAGES",
    "DEFAULT_BIN_BP",
    "preset_weights",
    "param_info",
    "step_hours",
]

#: Leverage set used unless the researcher gives another one (x, i.e. notional / margin).
DEFAULT_LEVERAGES: tuple[float, ...] = (5.0, 10.0, 20.0, 25.0, 50.0, 75.0, 100.0, 125.0)

#: Default bin width in basis points (log-spaced bins); USD bins default to this fraction of the median price.
DEFAULT_BIN_BP: float = 10.0

#: Named leverage mixes. Each is a log-normal bump over leverage: weight(L) ∝ exp(-(ln L - ln center)² / (2·spread²)),
#: normalised over whatever leverage set is used ("uniform" gives equal weights). Documented in docs/ENGINE.md.
LEVERAGE_PRESETS: dict[str, dict[str, Any]] = {
    "conservative": {"center": 5.0, "spread": 0.6, "description": "mostly 2-10x (weight centred on 5x)"},
    "balanced": {"center": 15.0, "spread": 0.8, "description": "mostly 5-50x (weight centred on 15x)"},
    "retail-high": {"center": 50.0, "spread": 0.7, "description": "mostly 20-125x (weight centred on 50x)"},
    "uniform": {"center": None, "spread": None, "description": "equal weight on every leverage"},
}

_CHOICES = {
    "side_split": ("both", "taker", "candle", "fixed"),
    "entry_price": ("close", "typical", "range"),
    "oi_decrease": ("proportional", "highest_leverage", "ignore"),
    "clearing": ("high_low", "mark", "none"),
    "margin_model": ("venue", "binance", "bybit", "okx", "flat"),
    "bin_unit": ("bp", "usd"),
}


def _f(default: Any, description: str, unit: str = "", *, choices=None, range=None, rerun: str = "build") -> Any:  # noqa: A002
    """A dataclass field with UI metadata. ``rerun`` says what a change costs: 'build' (fine pass + kernel),
    'kernel' (step recursion only, ``Heatmap.with_params``) or 'view' (nothing recomputed)."""
    meta = {"description": description, "unit": unit, "rerun": rerun}
    if choices is not None:
        meta["choices"] = tuple(choices)
    if range is not None:
        meta["range"] = tuple(range)
    if isinstance(default, (list, tuple)):
        return field(default=tuple(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class HeatmapParams:
    """Engine parameters (defaults live here only). Units: USD notional, hours, prices in quote (USD)."""

    # leverage mix
    leverages: tuple[float, ...] = _f(DEFAULT_LEVERAGES, "leverage set (one layer per leverage)", "x", range=(1.0, 200.0))
    leverage_preset: str = _f("balanced", "named leverage mix used when leverage_weights is None", choices=tuple(LEVERAGE_PRESETS), rerun="kernel")
    leverage_weights: tuple[float, ...] | None = _f(None, "weight per leverage (normalised to sum 1); None = preset", "", range=(0.0, math.inf), rerun="kernel")
    # attribution of new open interest
    side_split: str = _f("both", "how new open interest is split into longs and shorts", choices=_CHOICES["side_split"])
    long_share: float = _f(0.5, "long share of new exposure for side_split='fixed' (and fallback when taker data is absent)", "fraction", range=(0.0, 1.0))
    entry_price: str = _f("range", "entry price of new positions from the interval's bars", choices=_CHOICES["entry_price"])
    oi_decrease: str = _f("proportional", "what open-interest decreases do to stored levels", choices=_CHOICES["oi_decrease"])
    oi_max_gap_hours: float = _f(6.0, "an OI gap longer than this resets the baseline (no deposit or removal across it)", "hours", range=(0.0, math.inf))
    # dynamics
    clearing: str = _f("high_low", "which price clears levels it trades through (none = levels are never cleared: the naive baseline)", choices=_CHOICES["clearing"])
    half_life_hours: float = _f(48.0, "half-life of stored levels (at 10x when half_life_exponent > 0; inf = no decay)", "hours", range=(0.0, math.inf), rerun="kernel")
    half_life_exponent: float = _f(0.0, "leverage dependence of the half-life: layer k uses half_life_hours·(L_k/10)^(−this); 0 = same for all, > 0 = high leverage decays faster", "", range=(0.0, 3.0), rerun="kernel")
    max_age_hours: float | None = _f(None, "levels older than this are dropped (None = never)", "hours", range=(0.0, math.inf), rerun="kernel")
    funding_drift: bool = _f(False, "shift stored levels by accumulated funding (positive funding moves levels up)", choices=(False, True))
    # margin
    margin_model: str = _f("venue", "liquidation-price formula and tiers: each venue's own, one venue's for all, or flat tier-1", choices=_CHOICES["margin_model"])
    position_size_usd: float = _f(10_000.0, "assumed position notional (selects the maintenance-margin tier); with position_size_sigma > 0 the median of the size distribution (by share of notional)", "USD", range=(0.0, math.inf))
    position_size_leverage_exponent: float = _f(0.0, "leverage dependence of position size: the median size at leverage L is position_size_usd·(L/10)^(−this); > 0 = high leverage uses smaller tickets", "", range=(0.0, 3.0))
    position_size_sigma: float = _f(0.0, "log-sd of the lognormal position-size distribution (by share of notional); 0 = every position has position_size_usd; > 0 spreads each layer over the tiers its sizes fall in (a leverage above a tier's max is lowered to it)", "", range=(0.0, 4.0))
    # grid
    bin_width: float | None = _f(None, f"price bin width (None = {DEFAULT_BIN_BP:g} bp, or that fraction of the median price in USD mode)", "bp or USD", range=(0.0, math.inf))
    bin_unit: str = _f("bp", "bp: log-spaced bins; usd: linear bins", choices=_CHOICES["bin_unit"])
    price_range: float = _f(0.25, "fraction beyond the traded low/high covered by the grid", "fraction", range=(0.0, 0.95))
    time_step: str = _f("1h", "output step (pandas offset alias)", "time")
    start: str | None = _f(None, "first time included (ISO, UTC); None = data start", "UTC")
    end: str | None = _f(None, "end of data (exclusive, ISO, UTC); None = data end", "UTC")
    venues: tuple[str, ...] | None = _f(None, "venues summed into the aggregate (None = all)", "", rerun="kernel")
    # cross-venue agreement
    agreement_threshold: float = _f(0.25, "a venue has a cluster in a cell if its map there is >= this fraction of its snapshot maximum", "fraction", range=(0.0, 1.0), rerun="kernel")
    agreement_window_bins: int = _f(1, "bins either side searched when matching clusters across venues", "bins", range=(0, 50), rerun="kernel")

    # ---------------------------------------------------------------------------------------------

    def weights(self) -> np.ndarray:
        """Leverage weights: the explicit ``leverage_weights`` normalised, or the preset's.

        Returns
        -------
        numpy.ndarray
            (K,) float64 summing to 1, one per leverage layer.
        """
        self.validate()
        if self.leverage_weights is not None:
            w = np.asarray(self.leverage_weights, dtype=np.float64)
            return w / w.sum()
        return preset_weights(self.leverage_preset, self.leverages)

    def replace(self, **changes: Any) -> "HeatmapParams":
        """A copy with ``changes`` applied, validated.

        Parameters
        ----------
        **changes
            Field values (CLI/JSON forms accepted: lists, 'inf', numbers as text); an unknown name raises
            ParameterError naming it.

        Returns
        -------
        HeatmapParams
        """
        unknown = [k for k in changes if k not in _FIELD_NAMES]
        if unknown:
            raise ParameterError(f"unknown heatmap parameter(s) {unknown}; known: {sorted(_FIELD_NAMES)}")
        p = dataclasses.replace(self, **{k: _coerce(k, v) for k, v in changes.items()})
        p.validate()
        return p

    def validate(self) -> "HeatmapParams":
        """Check every field; raise ParameterError naming the parameter. Returns self."""
        lev = self.leverages
        if not isinstance(lev, tuple) or len(lev) == 0:
            raise ParameterError(f"leverages: need a non-empty list of leverages, got {lev!r}")
        for x in lev:
            if not _is_num(x) or not (1.0 <= float(x) <= 1000.0):
                raise ParameterError(f"leverages: each leverage must be a number in [1, 1000], got {x!r}")
        if len(set(float(x) for x in lev)) != len(lev):
            raise ParameterError(f"leverages: duplicate leverage in {list(lev)}")
        if self.leverage_preset not in LEVERAGE_PRESETS:
            raise ParameterError(f"leverage_preset: unknown preset {self.leverage_preset!r}; choose from {list(LEVERAGE_PRESETS)}")
        if self.leverage_weights is not None:
            w = self.leverage_weights
            if not isinstance(w, tuple) or len(w) != len(lev):
                raise ParameterError(f"leverage_weights: need {len(lev)} weights (one per leverage {list(lev)}), got {w!r}")
            if any(not _is_num(x) or not math.isfinite(float(x)) or float(x) < 0 for x in w):
                raise ParameterError(f"leverage_weights: weights must be finite and >= 0, got {list(w)}")
            if sum(float(x) for x in w) <= 0:
                raise ParameterError("leverage_weights: weights sum to 0")
        for name in _CHOICES:
            v = getattr(self, name)
            if v not in _CHOICES[name]:
                raise ParameterError(f"{name}: must be one of {list(_CHOICES[name])}, got {v!r}")
        _check_range("long_share", self.long_share, 0.0, 1.0)
        _check_range("oi_max_gap_hours", self.oi_max_gap_hours, 0.0, math.inf, lo_open=True)
        if not _is_num(self.half_life_hours) or not float(self.half_life_hours) > 0 or math.isnan(float(self.half_life_hours)):
            raise ParameterError(f"half_life_hours: must be > 0 (math.inf = no decay), got {self.half_life_hours!r}")
        _check_range("half_life_exponent", self.half_life_exponent, 0.0, 3.0)
        if self.max_age_hours is not None:
            _check_range("max_age_hours", self.max_age_hours, 0.0, math.inf, lo_open=True, hi_open=True)
        if not isinstance(self.funding_drift, (bool, np.bool_)):
            raise ParameterError(f"funding_drift: must be true or false, got {self.funding_drift!r}")
        _check_range("position_size_usd", self.position_size_usd, 0.0, math.inf, lo_open=True, hi_open=True)
        _check_range("position_size_sigma", self.position_size_sigma, 0.0, 4.0)
        _check_range("position_size_leverage_exponent", self.position_size_leverage_exponent, 0.0, 3.0)
        if self.bin_width is not None:
            _check_range("bin_width", self.bin_width, 0.0, math.inf, lo_open=True, hi_open=True)
            if self.bin_unit == "bp" and float(self.bin_width) > 5000:
                raise ParameterError(f"bin_width: {self.bin_width} bp is wider than 50%; use a smaller width")
        _check_range("price_range", self.price_range, 0.0, 0.95)
        hours = _step_hours_or_none(self.time_step)
        if hours is None:
            raise ParameterError(f"time_step: not a fixed pandas offset like '1h', '15min', '4h', '1D': {self.time_step!r}")
        for name in ("start", "end"):
            if getattr(self, name) is not None:
                utc_time(getattr(self, name), name)
        if self.start is not None and self.end is not None:
            if utc_time(self.start, "start") >= utc_time(self.end, "end"):
                raise ParameterError(f"end: must be after start ({self.start} .. {self.end})")
        if self.venues is not None:
            if not isinstance(self.venues, tuple) or not self.venues or not all(isinstance(v, str) and v for v in self.venues):
                raise ParameterError(f"venues: need a non-empty list of venue names, got {self.venues!r}")
        _check_range("agreement_threshold", self.agreement_threshold, 0.0, 1.0)
        if not isinstance(self.agreement_window_bins, (int, np.integer)) or isinstance(self.agreement_window_bins, bool) or not 0 <= self.agreement_window_bins <= 50:
            raise ParameterError(f"agreement_window_bins: must be an integer in [0, 50], got {self.agreement_window_bins!r}")
        return self

    @property
    def step_hours(self) -> float:
        """Length of one output step in hours."""
        h = _step_hours_or_none(self.time_step)
        if h is None:
            raise ParameterError(f"time_step: not a fixed pandas offset: {self.time_step!r}")
        return h

    # ----------------------------------------------------------------------------------- (de)serialise

    def to_dict(self) -> dict[str, Any]:
        """The parameters as JSON/YAML values.

        Returns
        -------
        dict
            Field name → value; tuples become lists, ``math.inf`` the string ``'inf'``.
        """
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, tuple):
                v = [float(x) if _is_num(x) else x for x in v]
            elif isinstance(v, float) and math.isinf(v):
                v = "inf"
            elif isinstance(v, np.generic):
                v = v.item()
            out[f.name] = v
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "HeatmapParams":
        """Parameters from a mapping (e.g. loaded JSON/YAML).

        Parameters
        ----------
        d : dict or None
            Field name → value (None = the defaults); unknown keys raise ParameterError naming them.

        Returns
        -------
        HeatmapParams
        """
        if d is None:
            return cls()
        if not isinstance(d, dict):
            raise ParameterError(f"heatmap parameters: need a mapping, got {type(d).__name__}")
        return cls().replace(**d)

    @classmethod
    def coerce(cls, params: "HeatmapParams | Mapping[str, Any] | None" = None, **overrides: Any) -> "HeatmapParams":
        """Parameters from None (defaults), an instance or a mapping, with field ``overrides``.

        Parameters
        ----------
        params : HeatmapParams, mapping or None
            The base parameters.
        **overrides
            Single fields replacing the base's.

        Returns
        -------
        HeatmapParams
            Validated.
        """
        if params is None:
            p = cls()
        elif isinstance(params, cls):
            p = params
        elif isinstance(params, Mapping):
            p = cls.from_dict(dict(params))
        else:
            raise ParameterError(f"params: need HeatmapParams or a mapping, got {type(params).__name__}")
        return p.replace(**overrides) if overrides else p.validate()

    def to_json(self) -> str:
        """The parameters as JSON text.

        Returns
        -------
        str
            :meth:`to_dict` with sorted keys.
        """
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_file(cls, path) -> "HeatmapParams":
        """Read parameters from a .json or .yaml/.yml file (as written by ``to_dict``).

        Parameters
        ----------
        path : str or os.PathLike
            The file; a top-level ``params`` mapping (a fit result) is read too.

        Returns
        -------
        HeatmapParams
            Unreadable or unparsable files raise ParameterError naming the file.
        """
        from pathlib import Path

        p = Path(path)
        text = read_text(p, "params file")
        try:
            if p.suffix.lower() in (".yaml", ".yml"):
                import yaml

                d = yaml.safe_load(text)
            else:
                d = json.loads(text)
        except Exception as exc:  # noqa: BLE001 - any parse failure is bad input
            raise ParameterError(f"params file {p}: cannot parse ({str(exc).splitlines()[0]})") from None
        if isinstance(d, dict) and "params" in d and isinstance(d["params"], dict):
            d = d["params"]
        return cls.from_dict(d)


_FIELD_NAMES = frozenset(f.name for f in dataclasses.fields(HeatmapParams))


def param_info() -> dict[str, dict[str, Any]]:
    """Per-field metadata with the default, for the CLI, widgets and notebooks.

    Returns
    -------
    dict
        {name: {default, description, unit, choices | range, rerun}}; ``rerun`` is 'kernel' when
        ``Heatmap.with_params`` can apply a change, 'build' when it needs ``build_heatmap``.
    """
    out = {}
    for f in dataclasses.fields(HeatmapParams):
        item = dict(f.metadata)
        item["default"] = f.default
        out[f.name] = item
    return out


def preset_weights(name: str, leverages) -> np.ndarray:
    """Weights of a leverage preset over the given leverages.

    Parameters
    ----------
    name : str
        A key of :data:`LEVERAGE_PRESETS`.
    leverages : array_like
        (K,) leverages.

    Returns
    -------
    numpy.ndarray
        (K,) float64 summing to 1.
    """
    if name not in LEVERAGE_PRESETS:
        raise ParameterError(f"leverage_preset: unknown preset {name!r}; choose from {list(LEVERAGE_PRESETS)}")
    lev = np.asarray(leverages, dtype=np.float64)
    spec = LEVERAGE_PRESETS[name]
    if spec["center"] is None:
        w = np.ones_like(lev)
    else:
        z = (np.log(lev) - math.log(spec["center"])) / spec["spread"]
        w = np.exp(-0.5 * z * z)
    return w / w.sum()


def step_hours(time_step: str) -> float:
    """Hours in a fixed pandas offset alias ('15min', '1h', '1D').

    Parameters
    ----------
    time_step : str
        The alias.

    Returns
    -------
    float
        Hours; a non-fixed or unknown alias raises ParameterError naming ``time_step``.
    """
    h = _step_hours_or_none(time_step)
    if h is None:
        raise ParameterError(f"time_step: not a fixed pandas offset like '1h': {time_step!r}")
    return h


# ------------------------------------------------------------------------------------------ helpers


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, (bool, np.bool_))


def _check_range(name: str, v: Any, lo: float, hi: float, lo_open: bool = False, hi_open: bool = False) -> None:
    if not _is_num(v) or math.isnan(float(v)):
        raise ParameterError(f"{name}: must be a number, got {v!r}")
    x = float(v)
    bad = x < lo or x > hi or (lo_open and x == lo) or (hi_open and x == hi)
    if bad:
        lb = "(" if lo_open else "["
        rb = ")" if hi_open else "]"
        raise ParameterError(f"{name}: must be in {lb}{lo:g}, {hi:g}{rb}, got {v!r}")


def _step_hours_or_none(time_step: Any) -> float | None:
    import pandas as pd

    if not isinstance(time_step, str) or not time_step:
        return None
    try:
        td = pd.Timedelta(pd.tseries.frequencies.to_offset(time_step))
    except (ValueError, TypeError):
        return None
    secs = td.total_seconds()
    return secs / 3600.0 if secs > 0 else None


def utc_time(value: Any, name: str):
    """A user-given time as a tz-aware UTC ``pd.Timestamp`` (:func:`liqlab._util.utc`).

    Parameters
    ----------
    value : str, datetime or Timestamp
        ISO text, datetime or Timestamp; naive = UTC.
    name : str
        The parameter named in the error (e.g. "start", "--score-start").

    Returns
    -------
    pandas.Timestamp
        UTC; anything else raises ParameterError naming ``name``.
    """
    from liqlab._util import utc

    try:
        return utc(value)
    except (ValueError, TypeError, OverflowError):
        raise ParameterError(f"{name}: not a UTC time like '2025-01-31' or '2025-01-31T12:00:00Z': {value!r}") from None


def _coerce(name: str, v: Any) -> Any:
    """Make JSON/YAML/CLI values fit the field types (lists -> tuples, 'inf' -> math.inf, str numbers)."""
    if name in ("leverages", "leverage_weights", "venues"):
        if v is None:
            return None
        if isinstance(v, str):
            v = [s.strip() for s in v.split(",") if s.strip()]
        if isinstance(v, np.ndarray):
            v = v.tolist()
        if isinstance(v, (list, tuple)):
            if name == "venues":
                return tuple(str(x) for x in v)
            out = []
            for x in v:
                try:
                    out.append(float(x))
                except (TypeError, ValueError):
                    raise ParameterError(f"{name}: not a number: {x!r}") from None
            return tuple(out)
        raise ParameterError(f"{name}: need a list, got {v!r}")
    if name in ("half_life_hours", "max_age_hours", "long_share", "position_size_usd", "bin_width", "price_range",
                "agreement_threshold", "oi_max_gap_hours", "half_life_exponent", "position_size_sigma", "position_size_leverage_exponent"):
        if v is None:
            if name == "half_life_hours":
                return math.inf
            return v
        if isinstance(v, str):
            s = v.strip().lower()
            if s in ("inf", "infinity", "none", "off") and name == "half_life_hours":
                return math.inf
            if s in ("none", "off", "") and name in ("max_age_hours", "bin_width"):
                return None
            try:
                return float(s)
            except ValueError:
                raise ParameterError(f"{name}: not a number: {v!r}") from None
        if _is_num(v):
            return float(v)
        return v
    if name == "agreement_window_bins" and isinstance(v, (str, float)) and not isinstance(v, bool):
        try:
            fv = float(v)
        except ValueError:
            raise ParameterError(f"{name}: not an integer: {v!r}") from None
        if fv != int(fv):
            raise ParameterError(f"{name}: not an integer: {v!r}")
        return int(fv)
    if name == "funding_drift" and isinstance(v, str):
        s = v.strip().lower()
        if s in ("true", "1", "yes", "on"):
            return True
        if s in ("false", "0", "no", "off"):
            return False
        raise ParameterError(f"funding_drift: must be true or false, got {v!r}")
    if name in ("start", "end") and v is not None and not isinstance(v, str):
        return str(v)
    return v
