"""What every Argus ingestor shares."""

from .past import HistoryAnswer, HistoryQuery, HistoryUnavailable
from .quoteblock import QuoteBlock
from .registry import available_sources, load_source
from .runner import Runner
from .source import Batch, EventQueue, Source, SourceContext, WantedSet

__all__ = [
    "Batch",
    "EventQueue",
    "HistoryAnswer",
    "HistoryQuery",
    "HistoryUnavailable",
    "QuoteBlock",
    "Runner",
    "Source",
    "SourceContext",
    "WantedSet",
    "available_sources",
    "load_source",
]
