"""liqlab.engine.store: heatmap files (save, load, files of earlier versions)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from liqlab.engine.heatmap import Heatmap, build_heatmap
from liqlab.errors import DataError, ParameterError
from test_heatmap import random_dataset


@pytest.fixture(scope="module")
def hm():
    return build_heatmap(random_dataset("okx", days=1, seed=12), clearing="mark", progress=False)


def _rewrite_header(src, dst, change):
    z = dict(np.load(src, allow_pickle=False))
    header = json.loads(bytes(z["header"]).decode())
    change(header)
    z["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez(dst, **z)


def test_load_upgrades_list_notes_of_older_files(hm, tmp_path):
    """Files written when the notes were a list of lines load with the notes dict."""
    p = hm.save(tmp_path / "h.npz")
    assert Heatmap.load(p).meta["notes"] == hm.meta["notes"] and "okx/clearing" in hm.meta["notes"]
    old = tmp_path / "old.npz"
    _rewrite_header(p, old, lambda h: h["meta"].update(notes=list(hm.meta["notes"].values())))
    h2 = Heatmap.load(old)
    lines = list(hm.meta["notes"].values())
    assert len(lines) >= 1 and h2.meta["notes"] == {f"note_{i}": t for i, t in enumerate(lines, 1)}
    np.testing.assert_array_equal(h2.long, hm.long)


def test_store_refusals(hm, tmp_path):
    with pytest.raises(ParameterError, match="save"):
        hm.relative("6h").save(tmp_path / "r.npz")
    other = tmp_path / "other.npz"
    np.savez(other, header=np.frombuffer(json.dumps({"format": "x"}).encode(), dtype=np.uint8))
    with pytest.raises(DataError, match="other.npz"):
        Heatmap.load(other)
