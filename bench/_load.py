"""Closed-loop HTTP load: N sender processes, each on one keep-alive connection (http.client).

Each sender posts its share of the signed bodies one after another, timing each request from
just before it is written to just after the whole response is read. Senders are processes,
not threads, so that one sender waiting for the GIL does not inflate another's latency.
Bodies are signed in the parent before the start signal (Slack signs with the current time;
a run lasts well under the five minutes a signature is valid).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import multiprocessing as mp
import random
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass
class LoadResult:
    started: float  # time.perf_counter() (CLOCK_MONOTONIC, comparable across processes)
    finished: float
    latencies: list[float]  # seconds, one per request
    statuses: dict[int, int]

    @property
    def count(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.count / (self.finished - self.started)


def sign(body: bytes, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """Return Slack's signature headers for a body (same as slack_sdk's SignatureVerifier)."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": f"v0={digest}",
    }


def _sender(url: str, items: list[tuple[bytes, dict[str, str]]], ready: Any, go: Any, out: Any,
            interval: float = 0.0) -> None:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.connect()
    results: list[tuple[float, float, int]] = []
    ready.put(1)
    go.wait()
    perf = time.perf_counter
    due = perf() + random.random() * interval  # senders out of step with each other
    for body, headers in items:
        if interval:  # paced: one request every `interval` seconds from this sender
            due += interval
            delay = due - perf()
            if delay > 0:
                time.sleep(delay)
        t0 = perf()
        conn.request("POST", parts.path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        results.append((t0, perf(), response.status))
        if response.will_close:  # the server closed keep-alive: reconnect (counted in latency)
            conn.close()
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.close()
    out.put(results)


def send_events(
    url: str, envelopes: list[dict], secret: str, *, senders: int = 16,
    extra_headers: dict[str, str] | None = None, rate: float = 0.0,
) -> LoadResult:
    """Post every envelope once, signed, spread round-robin over `senders` processes.

    With `rate` (events/s, all senders together) each sender paces itself (open loop);
    without it each sends the next as soon as the last is answered (closed loop).
    """
    ctx = mp.get_context("spawn")
    stamp = int(time.time())
    signed = []
    for envelope in envelopes:
        body = json.dumps(envelope).encode()
        signed.append((body, {**sign(body, secret, stamp), **(extra_headers or {})}))
    shares = [signed[i::senders] for i in range(senders)]
    ready, out, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    interval = senders / rate if rate else 0.0
    procs = [ctx.Process(target=_sender, args=(url, share, ready, go, out, interval), daemon=True)
             for share in shares if share]
    for proc in procs:
        proc.start()
    for _ in procs:
        ready.get(timeout=60)
    go.set()
    rows: list[tuple[float, float, int]] = []
    for _ in procs:
        rows.extend(out.get(timeout=600))
    for proc in procs:
        proc.join(10)
    statuses: dict[int, int] = {}
    for _, _, status in rows:
        statuses[status] = statuses.get(status, 0) + 1
    return LoadResult(
        started=min(r[0] for r in rows), finished=max(r[1] for r in rows),
        latencies=[r[1] - r[0] for r in rows], statuses=statuses,
    )
