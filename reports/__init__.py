"""Rendering of a run's ``results.json``: HTML report, JUnit XML, Markdown summary, terminal table.

- :mod:`reports.render` -- ``render_all(results, out_dir)``, ``render_html``, ``render_junit``,
  ``render_markdown``, ``print_summary``;
- :mod:`reports.compare` -- ``compare_results(a, b)``, ``render_compare_html``, ``print_compare``;
- :mod:`reports.plots` -- the generic plot specs drawn as inline SVG;
- :mod:`reports.svg` -- the small hand-built SVG chart writer the plots use (no matplotlib).

Every output is a function of the results dict alone (docs/RESULTS_SCHEMA.md), so they agree.
Submodules are imported on use: importing :mod:`reports` loads none of them.
"""
