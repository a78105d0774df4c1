"""Thin views (plots and widgets) over the measurements; one module per topic.

Import the module you need, e.g. ``from mlscale_lab.views.monitor import plot_monitor``:
this package itself imports nothing heavy.
"""
