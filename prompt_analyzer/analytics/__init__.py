"""Visibility analytics (issue 15): which tracked brands the answers mention, and the metrics built on that.

:mod:`.mentions` the matcher (pure); :mod:`.scoring` stores mentions of stored answers, recording the
brand definitions used; :mod:`.stats` the Wilson interval and the two-proportion test; :mod:`.metrics`
the report's figures (:func:`~.metrics.compute_report`).  Definitions: docs/metrics.md.
"""
