"""What every Argus ingestor shares."""

from .past import HistoryAnswer, HistoryQuery, HistoryUnavailable
from .registry import available_sources, load_source
from .runner import Runner
from .source import EventQueue, Source, SourceContext, WantedSet

__all__ = [
    "EventQueue",
    "HistoryAnswer",
    "HistoryQuery",
    "HistoryUnavailable",
    "Runner",
    "Source",
    "SourceContext",
    "WantedSet",
    "available_sources",
    "load_source",
]
