"""The one numba shim: compile a kernel on first use, or run its numpy twin.

Every numba kernel in liqlab is a plain Python function written in the subset numba compiles, with a
numpy twin that gives the same arrays (tests compare them with ``assert_array_equal``). Nothing is
compiled or even imported at import time: :func:`compiled` compiles on the first call (``cache=True``, so
later processes load it from disk) and remembers a failure, after which callers use the twin.

``use_numba``: True or False forces the choice; None means numba unless the environment variable
``LIQLAB_NO_NUMBA`` is ``1``, ``true`` or ``yes``.
"""

from __future__ import annotations

import os
import threading
import types
from collections.abc import Callable, Mapping

__all__ = ["want_numba", "numba_available", "compiled", "compile_error"]

_CACHE: dict[tuple, Callable | None] = {}
_ERRORS: dict[tuple, str] = {}
_LOCK = threading.Lock()


def want_numba(use_numba: bool | None) -> bool:
    """Whether numba kernels should run: ``use_numba`` when given, else not when ``LIQLAB_NO_NUMBA`` is set."""
    if use_numba is None:
        return os.environ.get("LIQLAB_NO_NUMBA", "").strip().lower() not in ("1", "true", "yes")
    return bool(use_numba)


def numba_available() -> bool:
    """True when numba imports here (compiling a given kernel can still fail; see :func:`compile_error`)."""
    try:
        import numba  # noqa: F401
    except Exception:  # noqa: BLE001 - any import failure means: use the numpy twins
        return False
    return True


def _key(fn: Callable, helpers: Mapping[str, Callable] | None) -> tuple:
    return (fn.__module__, fn.__qualname__, tuple(sorted(helpers or ())))


def compiled(fn: Callable, *, helpers: Mapping[str, Callable] | None = None,
             use_numba: bool | None = None) -> Callable | None:
    """``fn`` compiled by ``numba.njit(cache=True, nogil=True)``, or None (numba unwanted, missing or failing).

    Parameters
    ----------
    fn : callable
        The kernel, a plain function in numba's subset.
    helpers : mapping of name to function, optional
        Plain functions the kernel calls by global name; each is compiled too and the kernel is compiled
        against them (a copy of ``fn`` with those names bound to the compiled helpers; the module's own
        globals are never rewritten).
    use_numba : bool or None
        See the module docstring.

    Returns
    -------
    callable or None
        The compiled kernel, cached per process; None means "run the numpy twin".
    """
    if not want_numba(use_numba):
        return None
    key = _key(fn, helpers)
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
        try:
            import numba

            jit = numba.njit(cache=True, nogil=True)
            target = fn
            if helpers:
                env = dict(fn.__globals__)
                env.update({name: jit(h) for name, h in helpers.items()})
                target = types.FunctionType(fn.__code__, env, fn.__name__, fn.__defaults__, fn.__closure__)
                target.__qualname__, target.__module__ = fn.__qualname__, fn.__module__
            _CACHE[key] = jit(target)
        except Exception as exc:  # noqa: BLE001 - fall back to the numpy twin, remember why
            _ERRORS[key] = f"{type(exc).__name__}: {exc}"
            _CACHE[key] = None
        return _CACHE[key]


def compile_error(fn: Callable, *, helpers: Mapping[str, Callable] | None = None) -> str | None:
    """Why :func:`compiled` returned None for ``fn`` (None when it compiled or was never tried)."""
    return _ERRORS.get(_key(fn, helpers))
