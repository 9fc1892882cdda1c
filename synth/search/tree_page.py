"""A picture of a search tree: one self-contained HTML page."""

from __future__ import annotations

import html
from collections.abc import Callable

from synth.search.node import Node, program_diff

__all__ = ["best_path", "tree_html"]

_COLORS = {"root": "#555", "generate": "#1f77b4", "improve": "#2ca02c", "fix": "#d62728", "fit": "#9467bd"}


def best_path(nodes: list[Node], best: Node | None) -> set[int]:
    """Ids from the root to `best`."""
    path = set()
    node = best
    while node is not None:
        path.add(node.id)
        node = nodes[node.parent] if node.parent is not None else None
    return path


def tree_html(nodes: list[Node], best: Node | None, *, title: str,
              log_fields: Callable[[Node], dict] | None = None) -> str:
    """Nested boxes, one per node: action, accuracy (or the error), the best path in bold.

    `log_fields`: the search method's own statistics of a node (its `log_fields`), shown beside it.
    """
    marked = best_path(nodes, best)

    def render(node: Node) -> str:
        if node.action == "root":
            label = "root"
        elif node.buggy:
            first_line = (node.error or "").splitlines()[0] if node.error else ""
            label = f"#{node.id} {node.action}: buggy ({html.escape(first_line[:90])})"
        else:
            label = f"#{node.id} {node.action}: value {node.value:.3f}"
            if node.metrics:
                label += " (" + ", ".join(f"{k} {v:.3f}" for k, v in node.metrics.items()) + ")"
        if node.action != "root":
            stats = _stats_text(log_fields(node) if log_fields is not None else {})
            stats.append(f"{node.tokens} tokens")
            label += f' <small>[{", ".join(stats)}]</small>'
        if node.repeat_of is not None:
            label += f" <em>repeats #{node.repeat_of}</em>"
        if node.note:
            label += f" <em>{html.escape(node.note[:200])}</em>"
        style = f"border-left:4px solid {_COLORS.get(node.action, '#999')};"
        if node.id in marked:
            style += "font-weight:bold;background:#fff7d6;"
        parent_program = nodes[node.parent].program if node.parent is not None else ""
        details = [("feedback shown", node.feedback), ("explanation", node.explanation),
                   ("error", node.error or "" if node.buggy else ""), ("program", node.program),
                   ("diff against the parent", program_diff(parent_program, node.program) if parent_program else ""),
                   ("raw answer", node.completion)]
        program = "".join(f"<details><summary>{name}</summary><pre>{html.escape(text)}</pre></details>"
                          for name, text in details if text)
        children = "".join(f"<li>{render(nodes[c])}</li>" for c in node.children)
        return (f'<div class="node" style="{style}">{label}{program}</div>'
                + (f"<ul>{children}</ul>" if children else ""))

    legend = " ".join(f'<span style="color:{c}">&#9632; {a}</span>' for a, c in _COLORS.items())
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; font-size: 14px; }}
ul {{ list-style: none; padding-left: 24px; border-left: 1px dotted #bbb; }}
.node {{ padding: 2px 6px; margin: 3px 0; }}
pre {{ font-size: 12px; background: #f6f6f6; padding: 6px; }}
</style></head><body>
<h2>{html.escape(title)}</h2>
<p>{legend}; the path to the best program is highlighted.</p>
<ul><li>{render(nodes[0])}</li></ul>
</body></html>
"""


def _stats_text(fields: dict) -> list[str]:
    """`visits 3`, `backed-up 0.650`, `temporary 0.99` (GIF-MCTS), `alpha 2` (any other number)."""
    labels = {"visits": ("visits", "{}"), "backed_up_value": ("backed-up", "{:.3f}"),
              "temp_value": ("temporary", "{:.2f}")}
    text = []
    for name, value in fields.items():
        if value is None:
            continue
        label, form = labels.get(name, (name, "{:g}"))
        text.append(f"{label} {form.format(value)}")
    return text
