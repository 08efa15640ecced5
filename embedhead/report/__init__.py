"""The last stage: result files (run, sweep, experiment, baselines) -> ``report.md`` + plots.

:mod:`.render` holds the tables and plots.
"""
