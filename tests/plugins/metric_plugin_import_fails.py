"""An ``auditor.metrics`` plugin whose import fails (tests/test_metric_plugins.py)."""
raise ImportError("this plugin needs a library that is not installed")
