import numpy as np
import pandas as pd
import pytest

from mdsgap import report


def results():
    """Two settings of a knob, three seed models and one reference model (missing at knob 1)."""
    rows = [{"model": f"seed {s}", "knob": k, "other": "a", "value": 10 * k + s} for k in (0, 1) for s in range(3)]
    rows.append({"model": "main", "knob": 0, "other": "a", "value": -5.0})
    return pd.DataFrame(rows)


def test_seed_summary_averages_the_seed_models_and_keeps_the_reference_apart():
    t = report.seed_summary(results(), ["knob"], "value", ["seed 0", "seed 1", "seed 2"], "main")
    assert list(t.knob) == [0, 1]
    assert t["value"].tolist() == pytest.approx([1.0, 11.0])  # the reference's -5 is left out of the mean
    assert (t["low"] <= t["value"]).all() and (t["value"] <= t["high"]).all()
    half = 4.303 / np.sqrt(3)   # seeds 0, 1, 2: s = 1, t-interval over the three seeds
    assert t["low"].iloc[0] == pytest.approx(1 - half, abs=1e-3) and t["high"].iloc[0] == pytest.approx(1 + half, abs=1e-3)
    assert t["main"].iloc[0] == -5.0 and np.isnan(t["main"].iloc[1])


def test_seed_summary_groups_by_several_columns_and_only_the_named_seeds():
    t = report.seed_summary(results(), ["knob", "other"], "value", ["seed 2"], "main")
    assert list(zip(t.knob, t.other)) == [(0, "a"), (1, "a")]
    assert t["value"].tolist() == pytest.approx([2.0, 12.0])
