"""Analyses of a training run: curves, thinking words, language mixing, reflective behaviours, length vs
accuracy; plots and one self-contained HTML page (``logicrl report``, docs/report.md)."""

from logicrl.analysis.config import BEHAVIOUR_PATTERNS, THINKING_WORDS, ReportConfig
from logicrl.analysis.report import ReportData, build_report, render_images, write_report

__all__ = ["BEHAVIOUR_PATTERNS", "THINKING_WORDS", "ReportConfig", "ReportData", "build_report",
           "render_images", "write_report"]
