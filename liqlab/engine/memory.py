"""Memory budget: how many bytes a computation may allocate, and the up-front refusal when it would not fit.

A build that does not fit is refused before it allocates (one line naming the parameters that size it,
the estimate and the budget) instead of growing until the kernel's OOM killer ends it (and possibly
other programs on a shared machine) or numpy raises mid-way.

The default budget is :data:`DEFAULT_SHARE` of the memory available to this process when asked: the
smallest of the system's available memory (``MemAvailable``), the room left under a cgroup memory limit
and the room left under an address-space limit (``ulimit -v``). ``--max-memory`` (bytes, or with a
unit: 512M, 8G, 1.5GiB) overrides it.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

from liqlab.errors import ParameterError

__all__ = ["DEFAULT_SHARE", "available_bytes", "default_budget", "resolve_budget", "parse_size", "format_size",
           "check_fits", "heatmap_bytes", "check_heatmap_fits"]

#: Share of the available memory a build may take by default (the rest stays for the system and for
#: the temporaries the estimate leaves out).
DEFAULT_SHARE = 0.5

_UNITS = {"": 1, "b": 1, "k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def _read_int(path: str, pattern: str | None = None) -> int | None:
    try:
        text = Path(path).read_text()
    except OSError:
        return None
    if pattern is not None:
        m = re.search(pattern, text, re.M)
        if m is None:
            return None
        text = m.group(1)
    text = text.strip()
    return int(text) if text.isdigit() else None


def available_bytes() -> int | None:
    """Bytes this process can still allocate.

    Returns
    -------
    int or None
        The smallest of MemAvailable, the cgroup (v2 or v1) limit − usage and the address-space limit −
        current size; None when none of them can be read.
    """
    cands: list[int] = []
    kb = _read_int("/proc/meminfo", r"^MemAvailable:\s+(\d+) kB")
    if kb is not None:
        cands.append(kb * 1024)
    for limit_f, usage_f in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                             ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        limit, usage = _read_int(limit_f), _read_int(usage_f)
        if limit is not None and usage is not None and limit < 2**60:
            cands.append(max(0, limit - usage))
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            vm_kb = _read_int("/proc/self/status", r"^VmSize:\s+(\d+) kB") or 0
            cands.append(max(0, soft - vm_kb * 1024))
    except (ImportError, ValueError, OSError):
        pass
    if not cands:
        try:
            cands.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            return None
    return min(cands)


def default_budget() -> int | None:
    """The default memory budget.

    Returns
    -------
    int or None
        :data:`DEFAULT_SHARE` of :func:`available_bytes` in bytes (None = unknown: no limit is applied).
    """
    avail = available_bytes()
    return None if avail is None else int(avail * DEFAULT_SHARE)


def parse_size(text: str | int | float, name: str = "--max-memory") -> int:
    """Bytes from a size like ``4G``, ``512MB``, ``1.5GiB`` or ``2e9``.

    Parameters
    ----------
    text : str, int or float
        The size (decimal units k/M/G/T; KiB/MiB/GiB/TiB binary).
    name : str
        The parameter named in the error.

    Returns
    -------
    int
        Bytes, > 0; anything else raises ParameterError naming ``name``.
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?\d+)?)\s*([A-Za-z]*)\s*", str(text))
        unit = m.group(2).lower() if m else None
        if m is None or unit not in _UNITS:
            raise ParameterError(f"{name}: not a size like 4G, 512M or 1.5GiB: {text!r}")
        value = float(m.group(1)) * _UNITS[unit]
    if not (math.isfinite(value) and value > 0):
        raise ParameterError(f"{name}: must be > 0, got {text!r}")
    return int(value)


def resolve_budget(max_memory: str | int | float | None, name: str = "--max-memory") -> int | None:
    """The memory budget.

    Parameters
    ----------
    max_memory : str, int, float or None
        A size (see :func:`parse_size`) or None for :func:`default_budget`.
    name : str
        The parameter named in an error.

    Returns
    -------
    int or None
        Bytes (None = no limit).
    """
    return default_budget() if max_memory is None else parse_size(max_memory, name)


def format_size(n: float) -> str:
    """Bytes as text with a binary unit: 1536 -> '1.5 KiB', 17e9 -> '15.8 GiB'.

    Parameters
    ----------
    n : float
        Bytes.

    Returns
    -------
    str
    """
    for unit, f in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= f:
            return f"{n / f:.1f} {unit}"
    return f"{int(n)} B"


def check_fits(estimate: float, budget: int | None, what: str, fix: str) -> None:
    """Refuse work whose estimate exceeds the budget.

    Parameters
    ----------
    estimate : float
        Bytes the work needs.
    budget : int or None
        Bytes allowed (None accepts anything).
    what, fix : str
        The message: "``what`` needs about X, over the memory budget of Y (...); ``fix``".

    Returns
    -------
    None
        Raises ParameterError when over budget.
    """
    if budget is None or estimate <= budget:
        return
    raise ParameterError(f"{what} needs about {format_size(estimate)}, over the memory budget of "
                         f"{format_size(budget)} (--max-memory; default {DEFAULT_SHARE:.0%} of the available "
                         f"memory); {fix}")


def heatmap_bytes(steps: int, bins: int, layers: int, venues: int) -> int:
    """Peak bytes of one heatmap build (the assembly; the fine pass is O(observations), not O(T·B)).

    Per cell of the (T, B) grid: the accumulated long and short layers (2·K float32), one venue's
    layers before they are added (2·K float32, with several venues), the weighted long and short maps
    and one venue's weighted maps before the float32 copy (4 float64), the per-venue maps (2·V float32)
    and the agreement counts (int8).

    Parameters
    ----------
    steps, bins : int
        T and B, the map's time × price shape.
    layers : int
        K, the leverage layers.
    venues : int
        V, the venues built.

    Returns
    -------
    int
        Bytes.
    """
    per_cell = 4 * 2 * layers + (4 * 2 * layers if venues > 1 else 0) + 8 * 4 + 4 * 2 * venues + 1
    return int(steps) * int(bins) * per_cell


def check_heatmap_fits(steps: int, bins: int, params, bin_width: float, venues: int,
                       max_memory: str | int | float | None) -> None:
    """Refuse (ParameterError) a heatmap build whose :func:`heatmap_bytes` exceed the memory budget.

    Parameters
    ----------
    steps, bins : int
        T and B of the map (time × price).
    params : HeatmapParams
        The build's parameters (``leverages``, ``time_step``, ``bin_unit`` name the sizes in the message).
    bin_width : float
        The grid's bin width (bp or USD).
    venues : int
        Venues built.
    max_memory : str, int, float or None
        The budget (see :func:`resolve_budget`).

    Returns
    -------
    None
    """
    k = len(params.leverages)
    unit = "bp" if params.bin_unit == "bp" else "USD"
    check_fits(heatmap_bytes(steps, bins, k, venues), resolve_budget(max_memory),
               f"the heatmap ({steps:,} steps of time_step={params.time_step} x {bins:,} price bins of "
               f"bin_width={bin_width:g} {unit} x {k} leverage layers x {venues} venue(s))",
               "use a longer time_step, a wider bin_width, a shorter start..end or fewer venues")
