"""The audit's settings, verdict rule, multiple-testing correction, JSON and report (fast settings)."""

from __future__ import annotations

import json
import math

import pytest

from liqlab.errors import ParameterError
from liqlab.stats.audit import (NOT_SUPPORTED, NOT_TESTABLE, SUPPORTED, VERDICTS, AuditSettings, Power, Run,
                                load_settings, run_audit)
from liqlab.stats.audit.registry import Draft, _with_q, judge

KEYS = ["id", "claim", "hypothesis", "statistic", "data", "effect", "ci", "power", "verdict", "notes"]


@pytest.fixture(scope="module")
def fast_audit(repo):
    return run_audit([repo / "data" / "sample"], AuditSettings.fast(), progress=False)


def test_fast_audit_has_all_eight_claims_in_strict_json(fast_audit):
    d = fast_audit.to_dict()
    text = json.dumps(d, allow_nan=False)  # strict JSON: no NaN/inf
    assert [c["id"] for c in d["claims"]] == list(range(1, 9))
    for c in json.loads(text)["claims"]:
        assert list(c) == KEYS
        assert c["verdict"] in VERDICTS
        for r in c["data"]:
            assert r["kind"] in ("real", "synthetic")
    # the sample is synthetic: no real run, so every claim is 'not testable here' and says why
    assert all(c["verdict"] == NOT_TESTABLE and c["notes"] for c in d["claims"])
    pw = {c["id"]: c["power"] for c in d["claims"] if c["power"]}
    assert set(pw) == {1, 2, 6}
    for p in pw.values():
        assert set(p["choose_seeds"]).isdisjoint(p["report_seeds"]) and 0 <= p["power"] <= 1
    assert fast_audit.worlds_made > 0 and d["synthetic_note"]


def test_markdown_report_has_the_table_and_every_claim(fast_audit):
    from liqlab.stats.audit.markdown import audit_markdown, findings_table

    d = fast_audit.to_dict()
    md = audit_markdown(d)
    assert md.count("\n## Claim ") == 8 and "SIMULATED" in md
    table = findings_table(d)
    assert table.count("\n") == 10 and "not testable here" in table


def test_settings_are_checked():
    assert AuditSettings().sim_days > AuditSettings.fast().sim_days
    with pytest.raises(ParameterError, match="overlap"):
        AuditSettings(choose_seeds=(1, 2), report_seeds=(2, 3))
    with pytest.raises(ParameterError, match="bootstrap_reps"):
        AuditSettings(bootstrap_reps=5)
    with pytest.raises(ParameterError, match="ladders.hunt_intensity"):
        AuditSettings(ladders={"hunt_intensity": (0.0,)})


def test_settings_file(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("fast: true\nreport_seeds: [7, 8, 9]\nladders: {cascade_impact: [2]}\n")
    s = load_settings(f)
    assert s.report_seeds == (7, 8, 9) and s.sim_days == AuditSettings.fast().sim_days
    assert s.ladders == {"cascade_impact": (2.0,)}
    (tmp_path / "bad.json").write_text('{"no_such": 1}')
    with pytest.raises(ParameterError, match="no_such"):
        load_settings(tmp_path / "bad.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ParameterError, match="broken.json: not valid JSON"):
        load_settings(tmp_path / "broken.json")


def _run(name, effect, p, kind="real", ci=None, q=None, n=100):
    return Run(name=name, kind=kind, effect=effect, ci=ci, p_value=p, n=n, q_value=q)


def _power(value):
    return Power(knob="k", value=1.0, ladder=(1.0,), choose_seeds=(1,), report_seeds=(2, 3), choose_rates=(1.0,),
                 power=value, power_ci=(0.0, 1.0), null_rejection=0.0, days=1.0, alpha=0.05)


def test_verdict_rule():
    s = AuditSettings()
    good = _run("a", 0.2, 0.001, q=0.004)
    assert judge(Draft((good,), ("a",), +1, ""), s)[0] == SUPPORTED
    assert judge(Draft((good,), ("a",), -1, ""), s)[0] == NOT_SUPPORTED  # wrong sign
    assert judge(Draft((_run("a", 0.2, 0.03, q=0.2),), ("a",), +1, ""), s)[0] == NOT_SUPPORTED  # BY
    weak = judge(Draft((good,), ("a",), +1, "", power=_power(0.5)), s)
    assert weak[0] == NOT_TESTABLE and "50%" in weak[1]
    assert judge(Draft((good,), ("a",), +1, "", power=_power(0.9)), s)[0] == SUPPORTED
    assert judge(Draft((_run("x", 0.1, 0.01, kind="synthetic", q=0.01),), ("x",), +1, ""), s)[0] == NOT_TESTABLE
    assert judge(Draft((good,), ("a",), +1, "", untestable="why"), s) == (NOT_TESTABLE, "why")


def test_equivalence_rule_for_an_absence():
    s = AuditSettings(equivalence_margin=0.05)
    inside = _run("a", 0.0, 0.9, ci=(-0.03, 0.04), q=1.0)
    wide = _run("b", 0.0, 0.9, ci=(-0.2, 0.2), q=1.0, n=10)
    assert judge(Draft((inside, wide), ("a", "b"), 0, ""), s)[0] == SUPPORTED  # the largest sample decides
    assert judge(Draft((wide,), ("b",), 0, ""), s)[0] == NOT_TESTABLE
    more = _run("c", 0.15, 0.001, ci=(0.08, 0.2), q=0.01)
    assert judge(Draft((inside, more), ("a", "c"), 0, ""), s)[0] == NOT_SUPPORTED


def test_benjamini_yekutieli_runs_over_every_real_p_value():
    drafts = {1: Draft((_run("a", 0.1, 0.01), _run("s", 0.1, 0.01, kind="synthetic")), ("a",), 1, ""),
              2: Draft((_run("b", 0.1, 0.04), _run("c", None, math.nan)), ("b",), 1, "")}
    out = _with_q(drafts)
    qa, qb = out[1].runs[0].q_value, out[2].runs[0].q_value
    assert qa >= 0.01 and qb >= 0.04 and qa <= qb
    assert out[1].runs[1].q_value is None and out[2].runs[1].q_value is None


def test_real_data_audit_of_three_claims(real_data, tmp_path):
    """The shared real folder is imported on the fly; the cascade claim runs on the hourly realized file."""
    from liqlab.app.cli import main

    out = tmp_path / "audit.json"
    assert main(["audit", str(real_data), "--fast", "--claims", "2,3,8", "--json", str(out), "--no-progress"]) == 0
    d = json.loads(out.read_text())
    assert [c["id"] for c in d["claims"]] == [2, 3, 8]
    c2 = d["claims"][0]
    real = [r for r in c2["data"] if r["kind"] == "real" and r["effect"] is not None]
    assert real and all(r["q_value"] is not None for r in real)
    assert d["claims"][2]["verdict"] == NOT_TESTABLE and any("no open interest" in x for x in d["skipped"])


test_real_data_audit_of_three_claims = pytest.mark.real_data(test_real_data_audit_of_three_claims)
