"""The explorer as one self-contained HTML file (BokehJS inline: opens offline, no CDN, no server)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["explorer_html", "save_explorer"]


def explorer_html(hm, data=None, *, title: str | None = None, **kw) -> str:
    """The explorer as one self-contained HTML page.

    Parameters
    ----------
    hm : Heatmap
        A USD heatmap, T × B (time × price).
    data : Dataset, Collection or path, optional
        As :func:`~liqlab.viz.explorer.explorer`.
    title : str, optional
        The page title; default 'liqlab heatmap <symbol>' (with '(SYNTHETIC)' for synthetic data).
    **kw
        :func:`~liqlab.viz.explorer.explorer` options (``note`` is kept and the file size appended).

    Returns
    -------
    str
        The HTML; the note on the plot states the file size (MB).
    """
    from bokeh.document import Document
    from bokeh.embed import file_html
    from bokeh.resources import INLINE

    from liqlab.viz.explorer import add_warm_up, explorer

    meta = dict(getattr(hm, "meta", None) or {})
    page_title = title or f"liqlab heatmap {meta.get('symbol', '')}{' (SYNTHETIC)' if meta.get('synthetic') else ''}"
    note = kw.pop("note", "")
    token = "@@LIQLAB_FILE_MB@@"   # a placeholder in the note, filled in after rendering
    size_note = f"file size {token} MB (BokehJS inline, opens offline)"
    layout = explorer(hm, data, note=" · ".join(x for x in (note, size_note) if x), **kw)
    doc = Document()
    doc.add_root(layout)
    add_warm_up(doc)          # the page builds its state once rendered: the first slider move is not slower
    html = file_html(doc, resources=INLINE, title=page_title)
    if html.count(token) != 1:  # pragma: no cover - the note is serialised once
        return html.replace(token, "?")
    mb = (len(html.encode("utf-8")) - len(token)) / 1e6
    return html.replace(token, f"{mb:.1f}")


def save_explorer(hm, path: str | os.PathLike, data=None, **kw) -> Path:
    """Write the explorer as a standalone HTML file (inline resources), atomically.

    Parameters
    ----------
    hm : Heatmap
        A USD heatmap, T × B (time × price).
    path : str or os.PathLike
        The file to write (replaced whole or not at all).
    data : Dataset, Collection or path, optional
        As :func:`~liqlab.viz.explorer.explorer`.
    **kw
        :func:`explorer_html` options.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    from liqlab.io import atomic

    path = Path(path)
    atomic.write_text(path, explorer_html(hm, data, **kw))
    return path
