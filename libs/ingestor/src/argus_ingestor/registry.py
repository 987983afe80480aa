"""Find a Source class by name through the `argus.sources` entry-point group."""

from __future__ import annotations

from importlib.metadata import entry_points

from .source import Source

GROUP = "argus.sources"


class UnknownSource(LookupError):
    pass


def available_sources() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=GROUP))


def load_source(name: str) -> type[Source]:
    """Importing happens only here, so a source's heavy/remote deps load only when chosen."""
    for ep in entry_points(group=GROUP):
        if ep.name == name:
            cls = ep.load()
            if not (isinstance(cls, type) and issubclass(cls, Source)):
                raise UnknownSource(f"entry point {name!r} is not a Source subclass")
            return cls
    raise UnknownSource(f"no source {name!r}; installed: {', '.join(available_sources()) or 'none'}")
