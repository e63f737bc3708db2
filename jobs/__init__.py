"""Scheduled jobs: the refit -> redistil -> reindex -> gate pipeline and its scheduler.

Imports ``core`` and ``store``; never ``stream`` (consumers see new versions through the registry).
"""

from jobs.gate import Decision, decide
from jobs.pipeline import JOB, STAGES, RefitPipeline, RunOutcome
from jobs.scheduler import build_scheduler, trigger_for

__all__ = ["JOB", "STAGES", "Decision", "RefitPipeline", "RunOutcome", "build_scheduler", "decide", "trigger_for"]
