"""The report's first screen as an HTML fragment, for Jupyter's rich display of a run.

:meth:`auditor.results.AuditRun._repr_html_` calls :func:`render_summary_html`. The fragment is
the ``first_screen`` block of ``report.html.j2`` (verdict card and audit table), rendered from
the same view model as report.html, so a notebook and the report cannot disagree.

No scripts, no external resources. The report's stylesheet (the ``style`` block of
``base.html.j2``) is wrapped in a nested-CSS rule under ``.ra-nb``, so it styles the fragment
and nothing else on the notebook page.
"""
from __future__ import annotations

from typing import Any, Mapping

from reports.render import _env, build_view, partial_names

__all__ = ["render_summary_html"]

_SCOPE = "ra-nb"


def _block(template_name: str, block: str, **context: Any) -> str:
    template = _env().get_template(template_name)
    return "".join(template.blocks[block](template.new_context(context)))


def render_summary_html(results: Mapping[str, Any]) -> str:
    """Verdict card and audit table of ``results`` as a self-contained HTML fragment."""
    view = build_view(results, plots=False)
    css = _block("base.html.j2", "style")
    body = _block("report.html.j2", "first_screen", v=view, partial_names=partial_names)
    # Nested CSS: every rule of the report's sheet applies inside .ra-nb only; the sheet's
    # `:root, .ra-root` variables land on the inner .ra-root element.
    return (f'<div class="{_SCOPE}"><style>.{_SCOPE} {{ {css} }}\n'
            f'.{_SCOPE} .ra-root {{ font: 15px/1.5 var(--sans); color: var(--fg); max-width: 1120px; }}</style>'
            f'<div class="ra-root">{body}'
            '<p class="muted small">Full evidence: <code>run.write_report("DIR")</code> writes report.html; '
            '<code>run.audits["name"]</code> holds each audit\'s conditions and measurements.</p>'
            '</div></div>')
