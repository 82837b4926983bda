"""Host the Slack simulator and the SMTP sink for a benchmark, in their own process.

`python bench/_simhost.py '{"token": ..., "page_size_cap": 1000}'` prints nothing until it
gets a command: JSON lines on stdin ({"cmd": NAME, ...}), one JSON line answered on stdout
for each ({"result": ...} or {"error": "..."}). Started by `_support.SimHost`.

The package's simulator as it is: its `limit_rate` holds a per-channel and a workspace-wide
rule on one method at once, as Slack limits chat.postMessage, and counts what it refused
(`rate_limited`). One bench-only extension, a subclass of the package's sink:
* `DeferredParseSink`: keeps each message's raw bytes and parses it only when asked, after the
  clock has stopped (the package's sink parses during SMTP DATA, which the client waits for).
"""

from __future__ import annotations

import json
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from standup_bot.mail_sink import MailSink
from standup_bot.slack_simulator import SlackSimulator


class DeferredParseSink(MailSink):
    """The package's SMTP sink, parsing received mail only when asked."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.raw: list[tuple[str, tuple[str, ...], bytes]] = []

    def _record(self, envelope: Any) -> None:
        with self._condition:
            self.raw.append((envelope.mail_from or "", tuple(envelope.rcpt_tos), envelope.original_content or b""))
            self._condition.notify_all()


def main() -> None:
    options = json.loads(sys.argv[1])
    sim = SlackSimulator(token=options["token"], page_size_cap=int(options.get("page_size_cap", 1000)))
    sink = DeferredParseSink()
    sim.start()
    sink.start()
    try:
        for line in sys.stdin:
            request = json.loads(line)
            cmd = request.pop("cmd")
            if cmd == "stop":
                print(json.dumps({"result": None}), flush=True)
                break
            try:
                result = COMMANDS[cmd](sim, sink, **request)
                print(json.dumps({"result": result}), flush=True)
            except Exception as exc:  # report it to the bench, keep serving
                print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
    finally:
        sink.stop()
        sim.stop()


def _info(sim: SlackSimulator, sink: DeferredParseSink) -> dict:
    return {"base_url": sim.base_url, "smtp_host": sink.host, "smtp_port": sink.port}


def _users(sim: SlackSimulator, sink: DeferredParseSink, ids: list[str], tz: str = "UTC") -> int:
    for i, user_id in enumerate(ids):
        sim.add_user(user_id, f"member{i}", display_name=f"Member {i}", real_name=f"Member Number {i}", tz=tz)
    return len(ids)


def _channel(sim: SlackSimulator, sink: DeferredParseSink, id: str, name: str, members: list[str]) -> str:
    sim.add_channel(id, name, members)
    return id


def _replies(
    sim: SlackSimulator, sink: DeferredParseSink, channel: str, thread_ts: str, users: list[str],
    texts: list[str], envelopes: bool = False,
) -> dict:
    """Each user posts one reply in the thread (with event delivery off); return ts values
    and, if asked, the Events API envelope Slack would deliver for each."""
    # user_posts recomputes the parent's reply fields from the whole channel on every post
    # (quadratic in thread size); do that once at the end instead. Bench setup only.
    refresh = sim._refresh_parent
    sim._refresh_parent = lambda ch, parent_ts: None  # type: ignore[method-assign]
    out_ts: list[str] = []
    out_env: list[dict] = []
    try:
        for user, text in zip(users, texts, strict=True):
            out_ts.append(sim.user_posts(user, channel, text, thread_ts=thread_ts))
            if envelopes:
                out_env.append(sim.last_event())
    finally:
        sim._refresh_parent = refresh  # type: ignore[method-assign]
        with sim._lock:
            refresh(sim._channels[channel], thread_ts)
    return {"ts": out_ts, "envelopes": out_env}


def _limit_rate(sim: SlackSimulator, sink: DeferredParseSink, method: str, per_second: float,
                per_channel: bool, burst: int) -> None:
    sim.limit_rate(method, per_second, per_channel=per_channel, burst=burst)


def _dm_counts(sim: SlackSimulator, sink: DeferredParseSink, users: list[str]) -> list[int]:
    return [len(sim.dms_to(u)) for u in users]


def _stats(sim: SlackSimulator, sink: DeferredParseSink) -> dict:
    with sim._lock:
        calls = Counter(r.method for r in sim.requests)
        times = {}
        for r in sim.requests:
            first, last = times.get(r.method, (r.at, r.at))
            times[r.method] = (min(first, r.at), max(last, r.at))
    return {"calls": dict(calls), "limited": dict(sim.rate_limited), "span": times}


def _reset(sim: SlackSimulator, sink: DeferredParseSink) -> None:
    with sim._lock:
        sim.requests.clear()
        sim.delivery_results.clear()
        sim.rate_limited.clear()


def _mails(sim: SlackSimulator, sink: DeferredParseSink, parse: bool = True) -> list[dict]:
    import email
    import email.policy

    out = []
    with sink._condition:
        raw = list(sink.raw)
    for mail_from, rcpt, data in raw:
        item: dict[str, Any] = {"mail_from": mail_from, "rcpt_tos": list(rcpt), "bytes": len(data)}
        if parse:
            msg = email.message_from_bytes(data.replace(b"\r\n", b"\n"), policy=email.policy.default)
            item["subject"] = str(msg["Subject"])
            item["content_type"] = msg.get_content_type()
            item["text"] = msg.get_body(("plain",)).get_content()
            item["html_bytes"] = len(msg.get_body(("html",)).get_content())
        out.append(item)
    return out


def _clear_mails(sim: SlackSimulator, sink: DeferredParseSink) -> None:
    with sink._condition:
        sink.raw.clear()


def _reactions(sim: SlackSimulator, sink: DeferredParseSink, channel: str, ts: list[str]) -> list[int]:
    return [len(sim.reactions_on(channel, t)) for t in ts]


def _slow(sim: SlackSimulator, sink: DeferredParseSink, method: str, delay: float, times: int) -> None:
    """Make the next `times` calls of `method` take `delay` seconds (Slack's own latency)."""
    sim.fail(method, delay=delay, times=times)


COMMANDS = {
    "slow": _slow,
    "info": _info,
    "users": _users,
    "channel": _channel,
    "replies": _replies,
    "limit_rate": _limit_rate,
    "dm_counts": _dm_counts,
    "stats": _stats,
    "reset": _reset,
    "mails": _mails,
    "clear_mails": _clear_mails,
    "reactions": _reactions,
}

if __name__ == "__main__":
    threading.current_thread().name = "simhost"
    main()
