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
    latencies: list[float]  # seconds, one per request (empty from wrk, which keeps a histogram)
    statuses: dict[int, int]
    events: int = 0  # from wrk: requests sent
    percentiles: dict[float, float] | None = None  # from wrk: {50: s, 90: s, 99: s, 100: max}

    @property
    def count(self) -> int:
        return self.events or len(self.latencies)

    @property
    def rate(self) -> float:
        return self.count / (self.finished - self.started)

    def latency(self, q: float) -> float:
        """Seconds: the q-th percentile of the ack latency (q = 100: the maximum)."""
        if self.percentiles is not None:
            return self.percentiles[q]
        ordered = sorted(self.latencies)
        if q >= 100:
            return ordered[-1]
        k = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
        return ordered[k]


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


# -- wrk: a load generator in C, so that the senders' own CPU does not starve the server -----------
_WRK_SCRIPT = r"""
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk, bench_timespec *tp);
]]
local function now()  -- CLOCK_MONOTONIC, as Python's time.perf_counter() on Linux
  local t = ffi.new("bench_timespec")
  ffi.C.clock_gettime(1, t)
  return tonumber(t.tv_sec) + tonumber(t.tv_nsec) * 1e-9
end

local all_threads = {}
local next_id = 0
function setup(thread)
  thread:set("thread_id", next_id)
  next_id = next_id + 1
  table.insert(all_threads, thread)
end

-- per thread (globals, so that done() can read them with thread:get)
first_sent, last_answer, answered, ok2xx, other, extra = 0, 0, 0, 0, 0, 0
local mine, sent, filler, verifying = {}, 0, nil, false
function init(args)
  for i = thread_id + 1, #REQUESTS, THREADS do table.insert(mine, REQUESTS[i]) end
  filler = wrk.format("GET", FILLER_PATH)
  verifying = thread_id == 0  -- wrk calls thread 0's request() once to check it, and sends nothing
end
function request()
  if verifying then
    verifying = false
    return mine[1] or filler
  end
  sent = sent + 1
  if sent == 1 then first_sent = now() end
  if sent <= #mine then return mine[sent] end
  extra = extra + 1  -- a connection asking after this thread's share is sent: a cheap 404
  return filler
end
function response(status, headers, body)
  if status == 404 then return end  -- a filler's answer (an event is never answered 404)
  answered = answered + 1
  if answered <= #mine then
    if status >= 200 and status < 300 then ok2xx = ok2xx + 1 else other = other + 1 end
    if answered == #mine then
      last_answer = now()
      local f = io.open(DONE_DIR .. "/" .. thread_id, "w"); f:write("done"); f:close()
      wrk.thread:stop()
    end
  end
end
function done(summary, latency, requests)
  local first, last, ok, bad, fill = nil, 0, 0, 0, 0
  for _, t in ipairs(all_threads) do
    local f = t:get("first_sent")
    if f > 0 and (first == nil or f < first) then first = f end
    last = math.max(last, t:get("last_answer"))
    ok, bad, fill = ok + t:get("ok2xx"), bad + t:get("other"), fill + t:get("extra")
  end
  io.write(string.format("BENCH %.6f %.6f %d %d %d %d %d %d %d %d\n", first or 0, last, ok, bad, fill,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, summary.requests))
end
"""


def wrk_available() -> bool:
    """Tell whether wrk is on PATH (Debian: `apt-get install wrk`)."""
    import shutil

    return shutil.which("wrk") is not None


def send_events_wrk(
    url: str, envelopes: list[dict], secret: str, *, connections: int = 16, threads: int = 2,
    extra_headers: dict[str, str] | None = None, timeout: float = 300.0, work: str | None = None,
) -> LoadResult:
    """Post every envelope once, signed, with wrk: `connections` keep-alive connections on
    `threads` threads, closed loop. Latency percentiles are wrk's (its histogram also holds
    the few GETs of a missing page, answered 404, a connection makes after its thread's
    share is sent and before the thread stops)."""
    import os
    import signal
    import subprocess
    import tempfile
    from pathlib import Path

    parts = urlsplit(url)
    stamp = int(time.time())
    lines = ["REQUESTS = {}"]
    for envelope in envelopes:
        body = json.dumps(envelope).encode()
        headers = {"Host": f"{parts.hostname}:{parts.port}", **sign(body, secret, stamp), **(extra_headers or {}),
                   "Content-Length": str(len(body))}
        raw = f"POST {parts.path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        lines.append("REQUESTS[#REQUESTS + 1] = " + json.dumps(raw + body.decode()))
    threads = max(1, min(threads, len(envelopes)))
    folder = Path(tempfile.mkdtemp(prefix="bench-wrk-", dir=work))
    done_dir = folder / "done"
    done_dir.mkdir()
    script = folder / "events.lua"
    script.write_text("\n".join(lines) + f"\nTHREADS = {threads}\nDONE_DIR = {json.dumps(str(done_dir))}\n"
                      f"FILLER_PATH = {json.dumps('/bench-filler')}\n" + _WRK_SCRIPT)
    proc = subprocess.Popen(
        ["wrk", f"-t{threads}", f"-c{max(connections, threads)}", f"-d{int(timeout)}s", "--timeout", "30s",
         "-s", str(script), url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + timeout
    while len(os.listdir(done_dir)) < threads and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # wrk sleeps for its whole -d; its threads are done
    out, err = proc.communicate(timeout=60)
    line = next((x for x in out.splitlines() if x.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no result: {out[-500:]} {err[-500:]}")
    first, last, ok, bad, _health_checks, p50, p90, p99, top, _total = line.split()[1:]
    if float(last) == 0:
        raise RuntimeError(f"wrk did not finish sending within {timeout:.0f} s")
    count = int(ok) + int(bad)
    return LoadResult(
        started=float(first), finished=float(last), latencies=[], statuses={200: int(ok), 0: int(bad)},
        events=count, percentiles={50: int(p50) / 1e6, 90: int(p90) / 1e6, 99: int(p99) / 1e6, 100: int(top) / 1e6},
    )
