"""Reading what the retention streams hold: batched direct gets, and the newest per subject.

`DirectGet` speaks JetStream's batched direct get (`$JS.API.DIRECT.GET.<stream>`, server 2.11+)
over one inbox subscription: `last()` asks for the newest message of up to 1,024 subjects in one
request, `history()` pages through one subject's messages in stream order. Both publish through
the client's normal write queue, so a request sent after a SUB is seen by the server after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import Iterable
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import DeliverPolicy

from .natswire import subscribe_now, unsubscribe_now

log = logging.getLogger("argus.retained")

MULTI_LAST_MAX = 1024  # subjects per multi_last request the server accepts
PAGE = 1000  # messages per history request


class StoreError(Exception):
    """The store did not answer (timeout, no stream, JetStream away)."""


class _Pending:
    __slots__ = ("done", "items", "status", "trailer")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.items: list[tuple[str, int, bytes]] = []  # (subject, stream seq, payload)
        self.done: asyncio.Future[None] = loop.create_future()
        self.status = ""
        self.trailer: dict[str, str] = {}


class DirectGet:
    def __init__(self, nc: Client, *, timeout: float = 3.0, api_prefix: str = "$JS.API") -> None:
        self.nc = nc
        self.timeout = timeout
        self.api = api_prefix
        self.inbox = nc.new_inbox()
        self.calls = 0  # requests sent, for the store-request metrics
        self._ids = itertools.count(1)
        self._pending: dict[str, _Pending] = {}
        self._sub: Any = None

    async def start(self) -> None:
        # answers are taken in nats-py's reader: a history of 1,000 messages is no 1,000 task hops
        self._sub = subscribe_now(self.nc, f"{self.inbox}.*", self._on_msg)

    async def close(self) -> None:
        if self._sub is not None:
            unsubscribe_now(self._sub)
        for p in self._pending.values():
            if not p.done.done():
                p.done.set_exception(StoreError("closed"))

    def _on_msg(self, msg: Msg) -> None:
        pending = self._pending.get(msg.subject.rpartition(".")[2])
        if pending is None or pending.done.done():
            return  # a late answer to a request that timed out
        headers = msg.headers or {}
        status = headers.get("Status")
        if status:
            pending.status = status
            pending.trailer = headers
            pending.done.set_result(None)
            return
        pending.items.append((headers.get("Nats-Subject", ""), int(headers.get("Nats-Sequence", 0)), msg.data))

    async def _request(self, stream: str, body: dict[str, Any]) -> _Pending:
        rid = str(next(self._ids))
        pending = self._pending[rid] = _Pending(asyncio.get_running_loop())
        self.calls += 1
        try:
            await self.nc.publish(
                f"{self.api}.DIRECT.GET.{stream}", json.dumps(body).encode(), reply=f"{self.inbox}.{rid}"
            )
            async with asyncio.timeout(self.timeout):  # not wait_for: in 3.11 it can swallow a cancel
                await pending.done
        except TimeoutError:
            raise StoreError(f"no answer from {stream} within {self.timeout:g}s") from None
        except StoreError:
            raise
        except Exception as e:  # noqa: BLE001 - NATS away or closing
            raise StoreError(f"{stream}: {e!r}") from None
        finally:
            self._pending.pop(rid, None)
        if pending.status not in ("204", "404"):  # 204: end of batch; 404: nothing stored
            raise StoreError(f"{stream}: status {pending.status} {pending.trailer.get('Description', '')}")
        return pending

    async def last(self, stream: str, subjects: Iterable[str]) -> dict[str, bytes]:
        """The newest message of each subject that has one (subjects without are left out)."""
        wanted = list(dict.fromkeys(subjects))
        chunks = [wanted[i : i + MULTI_LAST_MAX] for i in range(0, len(wanted), MULTI_LAST_MAX)]
        answers = await asyncio.gather(
            *(self._request(stream, {"multi_last": chunk, "batch": len(chunk)}) for chunk in chunks)
        )
        return {subject: data for answer in answers for subject, _, data in answer.items}

    async def history(self, stream: str, subject: str, limit: int = 0) -> list[bytes]:
        """Every retained message of one subject, oldest first (at most `limit`, the newest, if set)."""
        out: list[bytes] = []
        start = 0
        while True:
            body: dict[str, Any] = {"next_by_subj": subject, "batch": PAGE}
            if start:
                body["seq"] = start
            answer = await self._request(stream, body)
            out.extend(data for _, _, data in answer.items)
            more = int(answer.trailer.get("Nats-Num-Pending", 0) or 0)
            if not answer.items or more <= 0:
                break
            start = answer.items[-1][1] + 1
        return out[-limit:] if limit else out


async def newest_per_subject(nc: Client, stream: str, subject: str, timeout: float = 30.0) -> dict[str, bytes]:
    """The newest message of every subject a stream holds under `subject` (an ordered consumer
    delivering the last per subject: one pass, however many subjects)."""
    js = nc.jetstream()
    out: dict[str, bytes] = {}
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def on_msg(msg: Msg) -> None:
        out[msg.subject] = msg.data
        if msg.metadata.num_pending == 0 and not done.done():
            done.set_result(None)

    try:
        sub = await js.subscribe(
            subject, stream=stream, ordered_consumer=True, deliver_policy=DeliverPolicy.LAST_PER_SUBJECT, cb=on_msg
        )
    except Exception as e:  # noqa: BLE001 - no stream yet, or JetStream away
        raise StoreError(f"{stream}: {e!r}") from None
    try:
        if (await sub.consumer_info()).num_pending == 0 and not out:
            return out  # nothing under this filter: no message would ever say so
        async with asyncio.timeout(timeout):
            await done
    except TimeoutError:
        raise StoreError(f"{stream}: newest per subject not read within {timeout:g}s") from None
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
    return out
