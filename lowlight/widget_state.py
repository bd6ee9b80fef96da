"""Widget state in executed notebooks: what a static view needs to draw ipywidgets.

A cell that displays an ipywidget (notebook 01's explorer) outputs ``application/vnd.jupyter.widget-view+json``
-- a model id -- with a ``text/plain`` fallback such as ``interactive(children=(FloatSlider(...``. A
static view (nbviewer, ``jupyter nbconvert --to html``) draws the sliders only when the notebook's
``metadata.widgets`` holds the state of those models (``application/vnd.jupyter.widget-state+json``,
recorded by nbclient's ``store_widget_state``); without it the fallback text is all a reader sees.
The drawing is done in the page by the widget manager script that nbconvert's HTML loads (by default
from a CDN; ``HTMLExporter.widget_renderer_url`` and ``require_js_url`` point it at local copies).

:func:`keep_displayed_widgets` trims the recorded state to the models that a displayed widget needs,
so widgets closed during the run (progress bars) or never shown, and the state of an earlier run,
do not stay in the committed notebook. nbval ignores both the widget-view outputs (their model ids
are random) and the notebook's metadata.
"""
from __future__ import annotations

__all__ = ["WIDGET_STATE_MIME", "WIDGET_VIEW_MIME", "widget_states", "displayed_models", "keep_displayed_widgets"]

WIDGET_STATE_MIME = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"
_REF = "IPY_MODEL_"   # how one widget's state refers to another (children, layout, style)


def widget_states(book) -> dict:
    """``{model_id: entry}`` of the widget state recorded in ``book``'s metadata (empty if none)."""
    widgets = (book.get("metadata") or {}).get("widgets") or {}
    return (widgets.get(WIDGET_STATE_MIME) or {}).get("state") or {}


def _refs(obj) -> set[str]:
    """Model ids that ``obj`` refers to: widget-view outputs (``model_id``, also those an Output
    widget holds) and ``"IPY_MODEL_<id>"`` strings, at any depth."""
    found, stack = set(), [obj]
    while stack:
        o = stack.pop()
        if isinstance(o, dict):
            view = o.get(WIDGET_VIEW_MIME)
            if isinstance(view, dict) and isinstance(view.get("model_id"), str):
                found.add(view["model_id"])
            stack.extend(o.values())
        elif isinstance(o, list):
            stack.extend(o)
        elif isinstance(o, str) and o.startswith(_REF):
            found.add(o[len(_REF):])
    return found


def displayed_models(book) -> set[str]:
    """Ids of the models that a static view of ``book`` draws: those its cells' outputs display,
    and every model these refer to, transitively (children, layouts, styles, widgets shown inside
    an Output widget). Ids without a recorded state are included (a viewer cannot draw them)."""
    state = widget_states(book)
    todo = _refs([cell.get("outputs", []) for cell in book.get("cells", [])])
    seen: set[str] = set()
    while todo:
        mid = todo.pop()
        if mid not in seen:
            seen.add(mid)
            todo |= _refs(state.get(mid, {})) - seen
    return seen


def keep_displayed_widgets(book) -> int:
    """Trim ``book.metadata.widgets`` in place to the models :func:`displayed_models` names; remove
    the key when no model is left. Returns the number of models kept."""
    meta = book.get("metadata")
    if not meta or "widgets" not in meta:
        return 0
    state = widget_states(book)
    shown = displayed_models(book)
    kept = {mid: entry for mid, entry in state.items() if mid in shown}
    if not kept:
        meta.pop("widgets")
        return 0
    meta["widgets"] = {WIDGET_STATE_MIME: {**meta["widgets"][WIDGET_STATE_MIME], "state": kept}}
    return len(kept)
