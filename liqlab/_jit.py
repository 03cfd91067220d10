"""The one numba shim: compile a kernel on first use, or run its numpy twin.

Every numba kernel in liqlab is a plain Python function written in the subset numba compiles, with a
numpy twin that gives the same arrays (tests compare them with ``assert_array_equal``). Nothing is
compiled or even imported at import time: :func:`compiled` makes the numba dispatcher (``cache=True``, so
later processes load the machine code from disk) and remembers a failure to make it, after which callers
use the twin. numba types and compiles lazily, at the kernel's first call with its argument types, so a
kernel outside numba's subset raises there (the tests run every kernel under numba and catch that).

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
        Plain functions the kernel calls by global name; the helpers may call one another by those names
        too. Each is compiled, and the kernel and every helper are compiled against the compiled helpers
        (copies of the functions whose globals bind those names; no module's globals are ever rewritten).
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
            _CACHE[key] = jit(_bound(fn, helpers, jit) if helpers else fn)
        except Exception as exc:  # noqa: BLE001 - fall back to the numpy twin, remember why
            _ERRORS[key] = f"{type(exc).__name__}: {exc}"
            _CACHE[key] = None
        return _CACHE[key]


def _bound(fn: Callable, helpers: Mapping[str, Callable], jit: Callable) -> Callable:
    """A copy of ``fn`` whose globals name the jitted copies of ``helpers`` (which see one another likewise).

    numba types a call to a global name only when the name is a jitted function, so a helper that calls
    another helper needs the compiled one in its own globals. Compilation is lazy (at the first call), so
    the dispatchers can be created first and put into every copy's globals afterwards.
    """
    envs = {name: dict(h.__globals__) for name, h in helpers.items()}
    jitted = {name: jit(_with_globals(h, envs[name])) for name, h in helpers.items()}
    for env in envs.values():
        env.update(jitted)
    return _with_globals(fn, {**fn.__globals__, **jitted})


def _with_globals(fn: Callable, env: dict) -> Callable:
    """``fn`` with ``env`` as its globals (same code, defaults, closure, name, qualname, module)."""
    out = types.FunctionType(fn.__code__, env, fn.__name__, fn.__defaults__, fn.__closure__)
    out.__qualname__, out.__module__ = fn.__qualname__, fn.__module__
    return out


def compile_error(fn: Callable, *, helpers: Mapping[str, Callable] | None = None) -> str | None:
    """Why :func:`compiled` returned None for ``fn`` (None when it compiled or was never tried)."""
    return _ERRORS.get(_key(fn, helpers))
