"""liqlab.engine.params: HeatmapParams defaults, metadata, validation, presets, (de)serialisation."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liqlab.errors import ParameterError
from liqlab.engine.params import (DEFAULT_LEVERAGES, LEVERAGE_PRESETS, HeatmapParams, param_info, preset_weights,
                           step_hours)


def test_defaults_validate_and_every_field_has_metadata():
    p = HeatmapParams().validate()
    info = param_info()
    assert set(info) == {f.name for f in dataclasses.fields(HeatmapParams)}
    for name, item in info.items():
        assert item["description"], name
        assert "unit" in item and item["rerun"] in ("build", "kernel", "view"), name
        assert item["default"] == getattr(p, name)
    for name in ("side_split", "entry_price", "oi_decrease", "clearing", "margin_model", "bin_unit"):
        assert getattr(p, name) in info[name]["choices"]
    assert p.leverages == DEFAULT_LEVERAGES and p.step_hours == 1.0


def test_weights_default_to_preset_and_explicit_weights_normalise():
    p = HeatmapParams()
    np.testing.assert_allclose(p.weights(), preset_weights(p.leverage_preset, p.leverages))
    q = p.replace(leverage_weights=[1, 1, 0, 0, 0, 0, 0, 2])
    np.testing.assert_allclose(q.weights(), [0.25, 0.25, 0, 0, 0, 0, 0, 0.5])


@given(lev=st.lists(st.floats(1.0, 200.0), min_size=1, max_size=12, unique=True),
       name=st.sampled_from(sorted(LEVERAGE_PRESETS)))
def test_presets_are_normalised_weights(lev, name):
    w = preset_weights(name, lev)
    assert w.shape == (len(lev),) and np.all(w >= 0) and w.sum() == pytest.approx(1.0)


def test_presets_order_by_leverage():
    lev = DEFAULT_LEVERAGES
    mean = {n: float(preset_weights(n, lev) @ np.log(lev)) for n in LEVERAGE_PRESETS}
    assert mean["conservative"] < mean["balanced"] < mean["retail-high"]
    np.testing.assert_allclose(preset_weights("uniform", lev), 1 / len(lev))


@settings(max_examples=60, deadline=None)
@given(half=st.one_of(st.just(math.inf), st.floats(0.5, 1e4)), age=st.one_of(st.none(), st.floats(1.0, 1e3)),
       split=st.sampled_from(["both", "taker", "candle", "fixed"]), share=st.floats(0, 1),
       venues=st.one_of(st.none(), st.lists(st.sampled_from(["binanceusdm", "bybit", "okx"]), min_size=1, max_size=3,
                                            unique=True)))
def test_dict_and_json_roundtrip(half, age, split, share, venues):
    p = HeatmapParams(half_life_hours=half, max_age_hours=age, side_split=split, long_share=share,
                      venues=None if venues is None else tuple(venues)).validate()
    d = json.loads(json.dumps(p.to_dict()))
    assert HeatmapParams.from_dict(d) == p


def test_from_file_yaml_and_json(tmp_path):
    y = tmp_path / "p.yaml"
    y.write_text("half_life_hours: inf\nleverages: [5, 10]\nleverage_weights: [1, 3]\nvenues: [bybit]\n")
    p = HeatmapParams.from_file(y)
    assert p.half_life_hours == math.inf and p.leverages == (5.0, 10.0) and p.venues == ("bybit",)
    j = tmp_path / "p.json"
    j.write_text(json.dumps({"params": p.to_dict()}))
    assert HeatmapParams.from_file(j) == p
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(ParameterError, match="bad.json"):
        HeatmapParams.from_file(tmp_path / "bad.json")
    with pytest.raises(ParameterError, match="missing.json"):
        HeatmapParams.from_file(tmp_path / "missing.json")


@pytest.mark.parametrize("changes,name", [
    ({"leverages": ()}, "leverages"),
    ({"leverages": (0.5, 10)}, "leverages"),
    ({"leverages": (10, 10)}, "leverages"),
    ({"leverage_preset": "yolo"}, "leverage_preset"),
    ({"leverage_weights": (1, 2)}, "leverage_weights"),
    ({"leverage_weights": (0,) * 8}, "leverage_weights"),
    ({"leverage_weights": (-1,) + (1,) * 7}, "leverage_weights"),
    ({"side_split": "coin"}, "side_split"),
    ({"long_share": 1.5}, "long_share"),
    ({"entry_price": "vwap"}, "entry_price"),
    ({"oi_decrease": "nearest"}, "oi_decrease"),
    ({"clearing": "close"}, "clearing"),
    ({"half_life_hours": 0}, "half_life_hours"),
    ({"half_life_hours": "soon"}, "half_life_hours"),
    ({"max_age_hours": -1}, "max_age_hours"),
    ({"funding_drift": "maybe"}, "funding_drift"),
    ({"margin_model": "kraken"}, "margin_model"),
    ({"position_size_usd": 0}, "position_size_usd"),
    ({"position_size_sigma": -0.5}, "position_size_sigma"),
    ({"position_size_sigma": 9}, "position_size_sigma"),
    ({"position_size_leverage_exponent": -1}, "position_size_leverage_exponent"),
    ({"bin_width": -1}, "bin_width"),
    ({"bin_width": 9000}, "bin_width"),
    ({"bin_unit": "pct"}, "bin_unit"),
    ({"price_range": 2}, "price_range"),
    ({"time_step": "fortnightly"}, "time_step"),
    ({"time_step": "1M"}, "time_step"),
    ({"start": "yesterday-ish"}, "start"),
    ({"start": "2025-02-01", "end": "2025-01-01"}, "end"),
    ({"venues": ()}, "venues"),
    ({"agreement_threshold": 1.5}, "agreement_threshold"),
    ({"agreement_window_bins": 1.5}, "agreement_window_bins"),
    ({"oi_max_gap_hours": 0}, "oi_max_gap_hours"),
    ({"no_such_thing": 1}, "no_such_thing"),
])
def test_bad_values_raise_parameter_error_naming_the_parameter(changes, name):
    with pytest.raises(ParameterError, match=name):
        HeatmapParams().replace(**changes)


def test_string_values_from_cli_are_coerced():
    p = HeatmapParams().replace(half_life_hours="inf", max_age_hours="none", leverages="5,10,20",
                                leverage_weights="1,1,2", funding_drift="true", venues="bybit,okx",
                                agreement_window_bins="2", bin_width="15")
    assert p.half_life_hours == math.inf and p.max_age_hours is None and p.leverages == (5.0, 10.0, 20.0)
    assert p.funding_drift is True and p.venues == ("bybit", "okx") and p.agreement_window_bins == 2
    assert p.bin_width == 15.0


def test_step_hours():
    assert step_hours("15min") == 0.25 and step_hours("4h") == 4.0 and step_hours("1D") == 24.0
    with pytest.raises(ParameterError, match="time_step"):
        step_hours("nope")


def test_position_size_distribution_strings_are_coerced():
    p = HeatmapParams().replace(position_size_sigma="1.5", position_size_leverage_exponent="0.5")
    assert p.position_size_sigma == 1.5 and p.position_size_leverage_exponent == 0.5
    assert HeatmapParams.from_dict(p.to_dict()) == p
