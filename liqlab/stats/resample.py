"""Block bootstraps for time series: the moving-block indices of the validation CIs and the stationary
block length (Politis–White) of the magnet test and the pipeline null.

Steps and events are in time order; neighbouring values are dependent, so resampling is by blocks.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["block_bootstrap_indices", "default_block_length", "stationary_block_length"]


def default_block_length(n: int) -> int:
    """Moving-block length for ``n`` steps: ⌈n^(1/3)⌉ (the usual rate for variance estimation), at least 1.

    Parameters
    ----------
    n : int
        Number of steps in the series.

    Returns
    -------
    int
        Block length in steps.
    """
    return max(1, math.ceil(n ** (1.0 / 3.0)))


def block_bootstrap_indices(n: int, n_boot: int, block: int | None = None, seed: int = 0) -> np.ndarray:
    """Index arrays of a moving-block bootstrap (overlapping blocks, cut to length ``n``).

    Parameters
    ----------
    n : int
        Length of the series (steps, time order).
    n_boot : int
        Number of resamples.
    block : int, optional
        Block length in steps (default :func:`default_block_length`), clipped to [1, n].
    seed : int
        Seed of the numpy generator.

    Returns
    -------
    np.ndarray
        int64, shape (n_boot, n): row r indexes resample r.
    """
    if n <= 0:
        return np.zeros((n_boot, 0), dtype=np.int64)
    block = default_block_length(n) if block is None else max(1, min(int(block), n))
    rng = np.random.default_rng(seed)
    nblocks = math.ceil(n / block)
    starts = rng.integers(0, n - block + 1, size=(n_boot, nblocks))
    return (starts[:, :, None] + np.arange(block)[None, None, :]).reshape(n_boot, -1)[:, :n]


def stationary_block_length(y: np.ndarray) -> float:
    """Mean block length of the stationary bootstrap for ``y`` (Politis–White, via ``arch``).

    Parameters
    ----------
    y : np.ndarray
        Series in time order, shape (n,).

    Returns
    -------
    float
        Mean block length in observations, at least 1 (1 for fewer than 10 values or a constant series).
    """
    import warnings

    from arch.bootstrap import optimal_block_length

    if len(y) < 10 or np.all(y == y[0]):
        return 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        b = float(optimal_block_length(y)["stationary"].iloc[0])
    return max(1.0, b) if math.isfinite(b) else 1.0
