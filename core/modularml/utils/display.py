"""Rich display in notebooks: HTML tables, mermaid diagrams, and showing a diagram or returning its text.

Nothing here imports IPython unless the process is a notebook kernel (it is then already imported).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any

from modularml.utils.environment import in_notebook

__all__ = ["html_section", "html_table", "mermaid_html", "metrics_rows", "show_diagram"]

#: Where the mermaid renderer is loaded from when a notebook shows a diagram (needs the network;
#: offline, the diagram's text shows instead).
MERMAID_MODULE = "https://cdn.jsdelivr.net/npm/mermaid@10/dist/mermaid.esm.min.mjs"


def html_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """An HTML table; every cell is escaped."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def html_section(title: str, *parts: str) -> str:
    """A titled block: ``title`` in bold (escaped), then the HTML ``parts``."""
    return f"<div><p><b>{html.escape(title)}</b></p>{''.join(parts)}</div>"


def mermaid_html(text: str) -> str:
    """A mermaid diagram as HTML: rendered by mermaid's module where the notebook may load it, else its text."""
    return (
        f'<pre class="mermaid">{html.escape(text)}</pre>'
        f'<script type="module">import mermaid from "{MERMAID_MODULE}"; mermaid.run();</script>'
    )


def show_diagram(text: str) -> str | None:
    """In a notebook, display the mermaid diagram and return None; elsewhere return its text.

    Never both, so a notebook cell ending in ``fs.visualize()`` shows the diagram once.
    """
    if not in_notebook():
        return text
    from IPython.display import HTML, display

    display(HTML(mermaid_html(text)))
    return None


def metrics_rows(store: Any) -> list[tuple[Any, ...]]:
    """One row per metric of a MetricStore: name, epochs logged, last and lowest epoch-level value."""
    rows = []
    for name in store.names:
        values = store.epoch_values(name)
        if not values:
            continue
        last = values[max(values)]
        rows.append((name, len(values), f"{last:.4g}", f"{min(values.values()):.4g}"))
    return rows
