"""One publisher per source: a lease in a JetStream KV bucket, renewed by its holder.

The key is the source's name (under the deployment's subject prefix, ``prod.mock``), the value a
`LeaseRecord` naming the holder. The bucket's TTL is the lease's: a holder that stops renewing
(killed, cut off) loses the lease `ttl` seconds after its last renewal, and a standby, trying every
`renew` seconds, takes it. `create` succeeds only on an absent key and `update` only on the
revision the holder wrote last, so two ingestors never both hold it; `held` also expires locally
`ttl` after the last renewal, so a holder cut off from NATS stops publishing before anyone else
can take over; one still connected whose renewal JetStream does not answer (the bucket's leader is
moving) turns `unchecked` and publishes on, since no one else can take the lease meanwhile.

The same lease decides which source publishes a group of markets (failover.py): there `eligible`
says whether this source may hold it at all, `outranks` whether it should take it from the current
holder (whose record says how healthy it is), and `delay` lets better-ranked sources try first. A
lease taken from a live holder is `held` only after `ttl`, so the holder has stopped before we start.

Where JetStream is not there at all, or has not answered for `ttl` seconds, the lease cannot be
checked: the ingestor says so once and publishes anyway (a second publisher would then go
unnoticed, as before leases existed); a standby stays a standby, so only one side fails open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import secrets
import socket
import time
from collections.abc import Callable
from typing import Any, Literal

import msgspec
from argus_protocol import iso_now
from argus_service.config import LeaseConfig
from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import (
    APIError,
    BucketNotFoundError,
    KeyWrongLastSequenceError,
    NotFoundError,
    ServiceUnavailableError,
)
from nats.js.kv import KeyValue
from prometheus_client import CollectorRegistry, Counter, Gauge

log = logging.getLogger("argus.lease")

State = Literal["starting", "held", "standby", "unchecked", "released"]
_JS_NOT_ENABLED = 10076  # JetStream API error: "jetstream not enabled"
_KEY_CHARS = re.compile(r"[^-/_=.a-zA-Z0-9]")
RELEASE_SECONDS = 1.0  # a clean stop's delete: a NATS slower than this lets the TTL free the lease


class LeaseRecord(msgspec.Struct, kw_only=True):
    """What the KV value says about the holder (read by standbys: their log line, failover's ranks)."""

    holder: str
    host: str
    pid: int
    since: str
    source: str = ""  # the holder's source name (failover ranks sources by it)
    healthy: bool = True  # the holder's source is neither down nor stale (renewed every `renew`)


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(LeaseRecord).decode


def lease_key(source: str, subject_prefix: str = "") -> str:
    """`mock`, or `prod.mock` when deployments share a NATS under subject prefixes."""
    key = f"{subject_prefix}.{source}" if subject_prefix else source
    return _KEY_CHARS.sub("_", key).strip(".") or "_"


class LeaseMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.held = Gauge(
            "ingestor_lease_held",
            "1 while this ingestor holds its source's lease (or cannot check it)",
            registry=registry,
        )
        self.withheld = Counter(
            "ingestor_lease_withheld_events_total", "Events not published: another holds the source's or its market group's lease",
            registry=registry,
        )  # fmt: skip
        self.transitions = Counter(
            "ingestor_lease_transitions_total", "Lease state changes, by new state", ["state"], registry=registry
        )


class SourceLease:
    """acquire(nc) / held / on_lost / release(): the whole interface a runner needs."""

    def __init__(
        self,
        key: str,
        cfg: LeaseConfig,
        *,
        registry: CollectorRegistry | None = None,
        holder: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        source: str = "",
        eligible: Callable[[], bool] | None = None,
        outranks: Callable[[LeaseRecord], bool] | None = None,
        healthy: Callable[[], bool] | None = None,
        delay: float = 0.0,
        fail_open: bool = True,
    ) -> None:
        self.key = key
        self.cfg = cfg
        self.holder = holder or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.record = LeaseRecord(
            holder=self.holder, host=socket.gethostname(), pid=os.getpid(), since="", source=source
        )
        self.eligible = eligible  # may we hold it at all now? (a holder that may not lets go)
        self.outranks = outranks  # should we take it from this holder?
        self.healthy = healthy  # written into our record at every renewal
        self.delay = delay  # seconds an absent key waits for better-ranked takers before we create it
        self.fail_open = fail_open  # publish when the lease cannot be checked (only one side may)
        self.on_lost: list[Callable[[], None]] = []  # called when a held lease goes to someone else
        self.on_acquired: list[Callable[[], None]] = []
        self.state: State = "starting"
        self.other: LeaseRecord | None = None  # the holder while we stand by; whom we took it from while held
        self.problem = ""  # why the lease is unchecked
        self.metrics = LeaseMetrics(registry or CollectorRegistry())
        self._clock = clock
        self._nc: Client | None = None
        self._kv: KeyValue | None = None
        self._rev = 0
        self._renewed_at = 0.0
        self._failing_since: float | None = None
        self._absent_since: float | None = None
        self._settled_at = 0.0  # a taken lease is held from then on (its previous holder has stopped)
        self._settle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None

    # the interface ------------------------------------------------------------------------
    async def acquire(self, nc: Client) -> bool:
        """First attempt now, then keep renewing (or, as a standby, keep trying) in the background."""
        self._nc = nc
        if not self.cfg.enabled:
            self._enter("unchecked", problem="lease.enabled is false")
            return True
        await self._attempt()
        self._task = asyncio.create_task(self._keep(), name=f"lease-{self.key}")
        return self.held

    @property
    def held(self) -> bool:
        """May this ingestor publish? Also False once `ttl` passed without a successful renewal."""
        if self.state == "unchecked":
            return self.fail_open
        now = self._clock()
        return self.state == "held" and now - self._renewed_at < self.cfg.ttl and now >= self._settled_at

    async def release(self) -> None:
        """Clean stop: delete our key so a standby takes over at its next try, not after the TTL."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        if self._settle is not None:
            self._settle.cancel()
        was_held = self.state == "held"
        self._enter("released")
        if was_held:
            await self._delete()

    async def _delete(self) -> None:
        if self._kv is not None and self._nc is not None and self._nc.is_connected:
            try:
                async with asyncio.timeout(RELEASE_SECONDS):
                    await self._kv.delete(self.key, last=self._rev)
            except TimeoutError:
                log.warning("lease not released in time; it expires by its TTL", extra={"key": self.key})
            except Exception:  # noqa: BLE001 - e.g. taken over meanwhile: nothing of ours to delete
                pass

    def withhold(self, events: int) -> None:
        self.metrics.withheld.inc(events)

    def describe(self) -> str:
        """One line for /readyz and logs."""
        if self.state == "standby":
            who = (
                f"{self.other.holder} (host {self.other.host}, pid {self.other.pid})"
                if self.other
                else "another ingestor"
            )
            return (
                f"standby: {who} publishes this source (lease {self.key!r}); "
                f"taking over if its lease lapses for {self.cfg.ttl:g}s"
            )
        if self.state == "unchecked":
            return f"lease unchecked ({self.problem}): a second publisher would go unnoticed"
        if self.state == "held" and not self.held:
            return f"lease {self.key!r} not renewed for over {self.cfg.ttl:g}s: not publishing until renewed"
        return f"{self.state}: lease {self.key!r}"

    # the work -----------------------------------------------------------------------------
    async def _keep(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.renew)
            if self._nc is not None and self._nc.is_connected:
                await self._attempt()
            self.metrics.held.set(1 if self.held else 0)  # also falls when renewals stop succeeding

    async def _attempt(self) -> None:
        try:
            kv = await self._bucket()
            if self.healthy is not None:
                self.record.healthy = self.healthy()
            if self.eligible is not None and not self.eligible():
                if self.state in ("held", "unchecked", "starting"):
                    if self.state == "held":
                        await self._delete()  # let the next source take it at once
                    self._enter("standby")
                return
            if self.state == "held":
                try:
                    self._rev = await kv.update(self.key, _encode(self.record), last=self._rev)
                    self._renewed_at = self._clock()
                    return
                except KeyWrongLastSequenceError:
                    pass  # it lapsed (then create below succeeds) or someone else took it
            previous = self.other
            if self.delay > 0 and not await self._waited_our_turn(kv):
                return
            try:
                self.record.since = iso_now()
                self._rev = await kv.create(self.key, _encode(self.record))
                # a holder that failed open may publish until its next try: give it that long
                settle = self.cfg.renew + 0.1 if previous is not None and self.state == "standby" else 0.0
            except KeyWrongLastSequenceError:
                other, revision = await self._read_holder(kv)
                if other is not None and other.holder != self.holder and self.outranks is not None:
                    if self.outranks(other):  # a better or healthier source takes it over
                        self.record.since = iso_now()
                        try:
                            self._rev = await kv.update(self.key, _encode(self.record), last=revision)
                        except KeyWrongLastSequenceError:
                            self._enter("standby", other=other)  # someone else was quicker
                            return
                        self._taken(other, settle=self.cfg.ttl)  # until then the holder may still publish
                        return
                if other is None or other.holder != self.holder:
                    self._failing_since = None
                    # unreadable just after create was refused (it expired in between): the holder we
                    # knew is still whom a take-over next round takes it from
                    self._enter("standby", other=other or self.other)
                    return
                # our own record, from before JetStream stopped answering: still ours
                self._rev = await kv.update(self.key, _encode(self.record), last=revision)
                settle = 0.0
            self._taken(previous, settle=settle)
        except (NoRespondersError, ServiceUnavailableError) as e:
            self._kv = None
            self._enter("unchecked", problem=f"JetStream unavailable: {type(e).__name__}")
        except APIError as e:
            self._kv = None
            if e.err_code == _JS_NOT_ENABLED:
                self._enter("unchecked", problem="JetStream is not enabled on this NATS")
            else:  # e.g. the bucket vanished with a restarted in-memory server: recreate next time
                log.debug("lease attempt failed", extra={"key": self.key, "error": repr(e)})
        except Exception as e:  # noqa: BLE001 - timeouts, reconnects: keep the state, try again next round
            self._kv = None
            log.debug("lease attempt failed", extra={"key": self.key, "error": repr(e)})
            now = self._clock()
            self._failing_since = self._failing_since or now
            # A holder is only tried while connected: JetStream itself is not answering (the bucket's
            # leader is moving after a NATS node died), and no one can take the lease meanwhile, so
            # one that may fail open does so at once rather than leave a hole; others wait a TTL.
            waited = now - self._failing_since >= self.cfg.ttl
            if (self.state == "held" and self.fail_open) or (self.state in ("starting", "held") and waited):
                self._enter("unchecked", problem=f"JetStream did not answer ({type(e).__name__})")

    async def _waited_our_turn(self, kv: KeyValue) -> bool:
        """An absent key is left `delay` seconds to better-ranked takers; False while we wait."""
        try:
            await kv.get(self.key)
            self._absent_since = None
            return True  # present: create fails, and we see who holds it
        except (NotFoundError, KeyError):
            pass
        now = self._clock()
        self._absent_since = self._absent_since or now
        if now - self._absent_since < self.delay:
            if self.state == "starting":
                self._enter("standby")
            return False
        return True

    def _taken(self, previous: LeaseRecord | None, *, settle: float) -> None:
        self._renewed_at = self._clock()
        self._settled_at = self._renewed_at + settle
        self._failing_since = self._absent_since = None
        if settle <= 0:
            self._enter("held", other=previous)
            return
        self._enter("held", other=previous, announce=False)
        if self._settle is not None:
            self._settle.cancel()
        self._settle = asyncio.get_running_loop().call_later(settle, self._settled)

    def _settled(self) -> None:
        self._settle = None
        self._settled_at = min(self._settled_at, self._clock())  # asyncio may run a timer a tick early
        if self.held:
            self.metrics.held.set(1)
            for cb in self.on_acquired:
                cb()

    async def _bucket(self) -> KeyValue:
        if self._kv is not None:
            return self._kv
        assert self._nc is not None
        js = self._nc.jetstream(timeout=max(0.5, min(2.0, self.cfg.ttl / 2)))
        try:
            kv = await js.key_value(self.cfg.bucket)
        except (BucketNotFoundError, NotFoundError):
            kv = await js.create_key_value(
                KeyValueConfig(
                    bucket=self.cfg.bucket,
                    description="Argus ingestor leases: one publisher per source",
                    history=1,
                    ttl=self.cfg.ttl,
                    storage=StorageType.MEMORY,  # leases outlive no restart of their holders anyway
                    replicas=self.cfg.replicas,
                )
            )
        status = await kv.status()
        config = status.stream_info.config
        if (config.num_replicas or 1) < self.cfg.replicas:  # raised to the configured count, never lowered
            config.num_replicas = self.cfg.replicas
            try:
                await js.update_stream(config)
                log.info("lease bucket raised", extra={"bucket": self.cfg.bucket, "replicas": self.cfg.replicas})
            except Exception as e:  # noqa: BLE001 - e.g. fewer servers than replicas: leases work on as they are
                log.warning("lease bucket replicas not raised", extra={"bucket": self.cfg.bucket, "error": repr(e)})
        if status.ttl and abs(status.ttl - self.cfg.ttl) > 0.01:
            log.warning(
                "lease bucket has another TTL than configured; the bucket's wins",
                extra={"bucket": self.cfg.bucket, "bucket_ttl": status.ttl, "lease_ttl": self.cfg.ttl},
            )
        self._kv = kv
        return kv

    async def _read_holder(self, kv: KeyValue) -> tuple[LeaseRecord | None, int]:
        """The current holder's record and its revision (None, 0 when unreadable)."""
        try:
            entry = await kv.get(self.key)
            return (_decode(entry.value) if entry.value else None), int(entry.revision or 0)
        except Exception:  # noqa: BLE001 - unreadable: treated as someone else's
            return None, 0

    def _enter(
        self, state: State, *, other: LeaseRecord | None = None, problem: str = "", announce: bool = True
    ) -> None:
        previous, previous_other = self.state, self.other
        if state == "held" and other is None:
            other = previous_other  # whom we took it from, for the log line
        self.state, self.other, self.problem = state, other, problem
        self.metrics.held.set(1 if self.held else 0)
        same_holder = previous_other is not None and other is not None and previous_other.holder == other.holder
        if state == previous and (state != "standby" or same_holder):
            return
        self.metrics.transitions.labels(state).inc()
        extra: dict[str, Any] = {"key": self.key, "holder": self.holder, "state": state}
        if state == "held":
            took_over = previous == "standby" and previous_other is not None
            log.info(
                f"lease {self.key!r} taken"
                + (f", taking over from {previous_other.holder}" if took_over and previous_other else ""),
                extra=extra,
            )
            if announce:
                for cb in self.on_acquired:
                    cb()
        elif state == "standby":
            what = "second publisher refused" if self.outranks is None else "standing by"
            log.warning(f"{what}: {self.describe()}", extra=extra)
            if previous in ("held", "unchecked"):
                for cb in self.on_lost:
                    cb()
        elif state == "unchecked":
            log.warning(f"cannot check for a second publisher: {problem}; publishing anyway", extra=extra)
