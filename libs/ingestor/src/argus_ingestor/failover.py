"""Source failover: which source publishes which markets, decided through leases on NATS.

`failover.markets` lists, per group of markets, its sources in order (`SH,SZ,BJ: [qmt, tdx,
yahoo]`). Each listed ingestor contends for one lease per group (key `failover.<group>` in the
lease bucket, lease.py) and publishes the group's streams only while it holds it:

- the holder writes whether its source is healthy (neither `down` nor `stale`) at every renewal;
- a healthy standby takes the lease from an unhealthy holder at its next try, and from a healthy
  holder of lower rank once its own source has been healthy for `failover.recover_after`;
- an absent lease (released, or lapsed with a dead holder) waits `rank × lease.renew` for better
  ranked sources before a lower one creates it, so at start-up the best source gets it;
- where the lease cannot be checked (no JetStream), only the first source of the list publishes.

A source that is not on a group's list never publishes those markets (two sources would
otherwise interleave one stream). Markets in no group are published by every source that has them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from functools import partial

from argus_service.config import FailoverConfig, LeaseConfig

from .lease import LeaseRecord, SourceLease, lease_key


def healthy_state(state: str) -> bool:
    """A source in this overall state can publish: `closed` and `halted` are states of a market."""
    return state not in ("down", "stale")


class MarketGroup:
    """One group of markets as this source sees it: its order, our rank, our lease on it."""

    def __init__(self, markets: Iterable[str], order: list[str], source: str) -> None:
        self.markets = frozenset(markets)
        self.order = order
        self.rank = order.index(source) if source in order else None
        self.lease: SourceLease | None = None

    @property
    def label(self) -> str:
        return ",".join(sorted(self.markets))

    def ranks_before(self, other: str) -> bool:
        """Is this source listed before `other` (a source missing from the list ranks last)?"""
        theirs = self.order.index(other) if other in self.order else len(self.order)
        return self.rank is not None and self.rank < theirs


class Failover:
    """The groups this source takes part in, each with its lease, and the health they are decided on."""

    def __init__(
        self,
        cfg: FailoverConfig,
        lease_cfg: LeaseConfig,
        source: str,
        *,
        subject_prefix: str = "",
        may_hold: Callable[[], bool] = lambda: True,
        state: Callable[[], str] = lambda: "live",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.recover_after = cfg.recover_after
        self._renew = lease_cfg.renew
        self._may_hold = may_hold  # e.g. this replica holds the source's own lease
        self._state = state  # the source's overall state (StatusBoard)
        self._clock = clock
        self._healthy_since: float | None = None
        self._unhealthy_seen: dict[str, float] = {}  # group -> when we first saw its holder unhealthy
        self.groups: list[MarketGroup] = []
        self._by_market: dict[str, MarketGroup] = {}
        for spec, order in cfg.markets.items():
            group = MarketGroup((m.strip() for m in spec.split(",") if m.strip()), list(order), source)
            if group.rank is not None:
                group.lease = SourceLease(
                    lease_key(f"failover.{group.label.replace(',', '_')}", subject_prefix),
                    lease_cfg,
                    source=source,
                    clock=clock,
                    eligible=self._may_hold,
                    outranks=partial(self.outranks, group),
                    healthy=self.healthy,
                    delay=group.rank * lease_cfg.renew,
                    fail_open=group.rank == 0,
                )
            self.groups.append(group)
            for m in group.markets:
                self._by_market[m] = group

    def group_of(self, market: str) -> MarketGroup | None:
        return self._by_market.get(market)

    def serves(self, market: str) -> bool:
        """May this source ever publish `market` (listed for its group, or the market in no group)?"""
        group = self._by_market.get(market)
        return group is None or group.rank is not None

    def healthy(self) -> bool:
        ok = healthy_state(self._state())
        if not ok:
            self._healthy_since = None
        elif self._healthy_since is None:
            self._healthy_since = self._clock()
        return ok

    def outranks(self, group: MarketGroup, holder: LeaseRecord) -> bool:
        """Take the group from `holder`? When it is unhealthy, or ranks below us and we have
        been healthy for `recover_after` (so a flapping source does not take it back and forth)."""
        if not self.healthy() or holder.source == self.source:
            return False  # a record of ours from before a restart lapses by itself
        if not holder.healthy:  # better-ranked standbys get the first tries, as with an absent lease
            seen = self._unhealthy_seen.setdefault(group.label, self._clock())
            return self._clock() - seen >= (group.rank or 0) * self._renew
        self._unhealthy_seen.pop(group.label, None)
        assert self._healthy_since is not None
        steady = self._clock() - self._healthy_since >= self.recover_after
        return group.ranks_before(holder.source) and steady
