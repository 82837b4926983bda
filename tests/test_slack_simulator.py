"""Exercise the Slack simulator through the real slack_sdk WebClient and a real HTTP listener."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier

from standup_bot.slack_simulator import Request, SlackSimulator

TOKEN = "xoxb-sim-test"
SECRET = "sim-signing-secret"
CHANNEL = "C0SIM"
PRIVATE = "G0SECRET"
ALICE, BOB, CAROL = "UALICE", "UBOB", "UCAROL"


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep WebClient off any proxy: it honours HTTP(S)_PROXY and ignores NO_PROXY."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


def _workspace(sim: SlackSimulator) -> SlackSimulator:
    """Add the test cast and channels to a simulator."""
    sim.add_user(ALICE, "alice", display_name="Alice", real_name="Alice Adams", tz="Europe/Berlin")
    sim.add_user(BOB, "bob", real_name="Bob Brown", is_restricted=True)
    sim.add_user(CAROL, "carol", deleted=True)
    sim.add_channel(CHANNEL, "standup", [ALICE, BOB])
    sim.add_channel(PRIVATE, "secret", [ALICE], is_private=True, bot_is_member=False)
    return sim


@pytest.fixture
def sim() -> Iterator[SlackSimulator]:
    """Return a running simulator with the test workspace."""
    with _workspace(SlackSimulator(token=TOKEN)) as simulator:
        yield simulator


@pytest.fixture
def client(sim: SlackSimulator) -> WebClient:
    """Return a real WebClient pointed at the simulator."""
    return WebClient(token=TOKEN, base_url=sim.base_url)


@dataclass
class Listener:
    """A tiny events listener that keeps every request it gets and answers ``status``."""

    url: str = ""
    status: int = 200
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)

    def envelopes(self) -> list[dict[str, Any]]:
        """Return the JSON bodies received so far."""
        return [json.loads(body) for _, body in self.received]


@pytest.fixture
def listener() -> Iterator[Listener]:
    """Run a local HTTP server that records the events the simulator delivers."""
    state = Listener()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            state.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            state.arrived.set()
            self.send_response(state.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/slack/events"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _error(call: Any) -> SlackApiError:
    """Run a WebClient call that must fail and return its error."""
    with pytest.raises(SlackApiError) as caught:
        call()
    return caught.value


# ---------------------------------------------------------------------- auth and basics


def test_auth_test_returns_the_bot_identity(sim: SlackSimulator, client: WebClient) -> None:
    answer = client.auth_test()
    assert answer["ok"] is True
    assert (answer["user_id"], answer["bot_id"], answer["team_id"]) == ("UBOT", "BBOT", "T0TEST")
    assert answer["user"] == "standupbot" and answer["is_enterprise_install"] is False
    [request] = sim.requests
    assert isinstance(request, Request)
    assert (request.method, request.token) == ("auth.test", TOKEN)
    assert "token" not in request.params and request.at <= time.time()


def test_a_wrong_or_missing_token_is_refused(sim: SlackSimulator) -> None:
    wrong = _error(WebClient(token="xoxb-wrong", base_url=sim.base_url).auth_test)
    assert wrong.response.status_code == 200 and wrong.response["error"] == "invalid_auth"
    missing = _error(WebClient(base_url=sim.base_url).auth_test)
    assert missing.response["error"] == "not_authed"
    app_token = WebClient(token="xapp-1-A-1-x", base_url=sim.base_url)
    assert _error(app_token.auth_test).response["error"] == "not_allowed_token_type"
    assert app_token.apps_connections_open(app_token="xapp-1-A-1-x")["url"].startswith("wss://")
    bot_token = WebClient(token=TOKEN, base_url=sim.base_url)
    refused = _error(lambda: bot_token.api_call("apps.connections.open"))
    assert refused.response["error"] == "not_allowed_token_type"


def test_the_token_is_also_accepted_as_a_form_parameter(sim: SlackSimulator) -> None:
    anonymous = WebClient(base_url=sim.base_url)
    answer = anonymous.api_call("auth.test", params={"token": TOKEN})
    assert answer["user_id"] == "UBOT"
    assert sim.requests[-1].token == TOKEN


def test_an_unknown_method_is_a_404(sim: SlackSimulator, client: WebClient) -> None:
    error = _error(lambda: client.api_call("no.such.method"))
    assert error.response.status_code == 404
    assert error.response["error"] == "unknown_method"


def test_base_url_needs_a_running_simulator() -> None:
    sim = SlackSimulator()
    with pytest.raises(RuntimeError):
        _ = sim.base_url
    with sim:
        assert sim.base_url.startswith("http://127.0.0.1:") and sim.base_url.endswith("/api/")
    with pytest.raises(RuntimeError):
        _ = sim.base_url


# ---------------------------------------------------------------------- posting and threads


def test_post_message_answers_like_slack_and_threads_replies(
    sim: SlackSimulator, client: WebClient
) -> None:
    posted = client.chat_postMessage(channel=CHANNEL, text="Standup time!")
    assert posted["channel"] == CHANNEL
    message = posted["message"]
    assert (message["type"], message["user"], message["bot_id"]) == ("message", "UBOT", "BBOT")
    assert message["ts"] == posted["ts"] and message["text"] == "Standup time!"

    reply = sim.user_posts(ALICE, CHANNEL, "done &amp; <@UBOB>", thread_ts=posted["ts"])
    bot_reply = client.chat_postMessage(channel=CHANNEL, text="thanks", thread_ts=posted["ts"])
    assert bot_reply["message"]["thread_ts"] == posted["ts"]

    parent, first, second = sim.thread(CHANNEL, posted["ts"])
    assert parent["reply_count"] == 2 and parent["reply_users"] == [ALICE, "UBOT"]
    assert parent["latest_reply"] == bot_reply["ts"] and parent["thread_ts"] == posted["ts"]
    assert first["ts"] == reply and first["parent_user_id"] == "UBOT" and first["client_msg_id"]
    assert second["bot_id"] == "BBOT"
    assert [m["ts"] for m in sim.messages(CHANNEL)] == [posted["ts"]]


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
def test_post_message_errors(sim: SlackSimulator, client: WebClient) -> None:
    assert _error(lambda: client.chat_postMessage(channel=CHANNEL)).response["error"] == "no_text"
    unknown = _error(lambda: client.chat_postMessage(channel="C0NOPE", text="x"))
    assert unknown.response["error"] == "channel_not_found"
    hidden = _error(lambda: client.chat_postMessage(channel=PRIVATE, text="x"))
    assert hidden.response["error"] == "channel_not_found"
    sim.add_channel("C0OUTSIDE", "outside", [ALICE], bot_is_member=False)
    outside = _error(lambda: client.chat_postMessage(channel="C0OUTSIDE", text="x"))
    assert outside.response["error"] == "not_in_channel"
    bad_thread = _error(lambda: client.chat_postMessage(channel=CHANNEL, text="x", thread_ts="0"))
    assert bad_thread.response["error"] == "invalid_thread_ts"
    assert sim.messages(CHANNEL) == []


def test_timestamps_are_unique_and_sort_as_strings(sim: SlackSimulator) -> None:
    stamps = [sim.user_posts(ALICE, CHANNEL, f"m{n}") for n in range(50)]
    assert len(set(stamps)) == 50
    assert stamps == sorted(stamps)
    assert all(len(ts.split(".")[1]) == 6 for ts in stamps)


def test_concurrent_posts_are_all_kept(sim: SlackSimulator, client: WebClient) -> None:
    def post(n: int) -> None:
        for i in range(10):
            client.chat_postMessage(channel=CHANNEL, text=f"{n}-{i}")

    threads = [threading.Thread(target=post, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    messages = sim.messages(CHANNEL)
    assert len(messages) == 60 and len({m["ts"] for m in messages}) == 60
    assert len(sim.calls("chat.postMessage")) == 60


def test_human_messages_carry_rich_text_blocks(sim: SlackSimulator) -> None:
    ts = sim.user_posts(ALICE, CHANNEL, "a &amp; b <@UBOB> <https://x.test/a?b=1&amp;c=2|PR> <!here>")
    [message] = sim.messages(CHANNEL)
    assert message["ts"] == ts
    [block] = message["blocks"]
    elements = block["elements"][0]["elements"]
    assert elements == [
        {"type": "text", "text": "a & b "},
        {"type": "user", "user_id": "UBOB"},
        {"type": "text", "text": " "},
        {"type": "link", "url": "https://x.test/a?b=1&c=2", "text": "PR"},
        {"type": "text", "text": " "},
        {"type": "broadcast", "range": "here"},
    ]


def test_files_broadcasts_and_classic_bots_in_replies(
    sim: SlackSimulator, client: WebClient
) -> None:
    parent = client.chat_postMessage(channel=CHANNEL, text="prompt")["ts"]
    sim.user_posts(ALICE, CHANNEL, "", thread_ts=parent, files=[{"name": "plan.pdf"}])
    sim.user_posts(BOB, CHANNEL, "also here", thread_ts=parent, subtype="thread_broadcast")
    sim.user_posts("jenkins", CHANNEL, "build ok", thread_ts=parent, subtype="bot_message")

    replies = client.conversations_replies(channel=CHANNEL, ts=parent)["messages"][1:]
    shared, broadcast, classic = replies
    assert shared["subtype"] == "file_share"
    assert shared["files"][0]["name"] == "plan.pdf" and shared["files"][0]["title"] == "plan.pdf"
    assert shared["files"][0]["id"].startswith("F")
    assert broadcast["subtype"] == "thread_broadcast"
    assert classic["subtype"] == "bot_message" and classic["username"] == "jenkins"
    assert "user" not in classic and classic["bot_id"]

    history = client.conversations_history(channel=CHANNEL)["messages"]
    assert [m["ts"] for m in history] == [broadcast["ts"], parent]
    assert history[0]["root"]["ts"] == parent


# ---------------------------------------------------------------------- pagination


def test_replies_paginate_in_pages_of_the_cap() -> None:
    with _workspace(SlackSimulator(token=TOKEN, page_size_cap=15)) as sim:
        client = WebClient(token=TOKEN, base_url=sim.base_url)
        parent = client.chat_postMessage(channel=CHANNEL, text="prompt")["ts"]
        replies = [sim.user_posts(ALICE, CHANNEL, f"r{n}", thread_ts=parent) for n in range(33)]

        seen: list[str] = []
        cursor = ""
        pages = 0
        while True:
            page = client.conversations_replies(
                channel=CHANNEL, ts=parent, limit=200, cursor=cursor or None
            )
            pages += 1
            assert len(page["messages"]) <= 15
            seen += [m["ts"] for m in page["messages"]]
            cursor = page["response_metadata"]["next_cursor"]
            assert page["has_more"] is bool(cursor)
            if not cursor:
                break
        assert pages == 3
        assert seen == [parent, *replies]
        assert sim.calls("conversations.replies")[0].get("cursor") is None
        assert all(c["cursor"] for c in sim.calls("conversations.replies")[1:])

        iterated = [
            m["ts"]
            for page in client.conversations_replies(channel=CHANNEL, ts=parent, limit=15)
            for m in page["messages"]
        ]
        assert iterated == seen


def test_replies_oldest_latest_and_bad_cursor(sim: SlackSimulator, client: WebClient) -> None:
    parent = client.chat_postMessage(channel=CHANNEL, text="prompt")["ts"]
    first, second, third = (sim.user_posts(BOB, CHANNEL, t, thread_ts=parent) for t in "abc")
    window = client.conversations_replies(channel=CHANNEL, ts=parent, oldest=first, latest=third)
    assert [m["ts"] for m in window["messages"]] == [parent, second]
    inclusive = client.conversations_replies(
        channel=CHANNEL, ts=parent, oldest=first, latest=third, inclusive=True
    )
    assert [m["ts"] for m in inclusive["messages"]] == [parent, first, second, third]
    by_reply = client.conversations_replies(channel=CHANNEL, ts=second)
    assert by_reply["messages"][0]["ts"] == parent
    bad = _error(lambda: client.conversations_replies(channel=CHANNEL, ts=parent, cursor="zz!"))
    assert bad.response["error"] == "invalid_cursor"
    missing = _error(lambda: client.conversations_replies(channel=CHANNEL, ts="123.000001"))
    assert missing.response["error"] == "thread_not_found"


def test_history_is_newest_first_paginated_with_metadata_on_request(
    sim: SlackSimulator, client: WebClient
) -> None:
    metadata = {"event_type": "standup_prompt", "event_payload": {"date": "2026-11-26"}}
    prompt = client.chat_postMessage(channel=CHANNEL, text="prompt", metadata=metadata)["ts"]
    chatter = [sim.user_posts(ALICE, CHANNEL, f"c{n}") for n in range(4)]
    sim.user_posts(BOB, CHANNEL, "hidden reply", thread_ts=prompt)

    stamps = [
        m["ts"]
        for page in client.conversations_history(channel=CHANNEL, limit=2)
        for m in page["messages"]
    ]
    assert stamps == [*reversed(chatter), prompt]
    plain = client.conversations_history(channel=CHANNEL, oldest=chatter[-1], inclusive=True)
    assert [m["ts"] for m in plain["messages"]] == [chatter[-1]]
    without = client.conversations_history(channel=CHANNEL)["messages"][-1]
    assert "metadata" not in without and without["reply_count"] == 1
    with_meta = client.conversations_history(channel=CHANNEL, include_all_metadata=True)
    assert with_meta["messages"][-1]["metadata"] == metadata


def test_members_paginate_and_include_the_bot(sim: SlackSimulator, client: WebClient) -> None:
    people = [f"UM{n:02d}" for n in range(7)]
    for user in people:
        sim.add_user(user, user.lower())
    sim.add_channel("C0BIG", "big", people)

    pages = [page["members"] for page in client.conversations_members(channel="C0BIG", limit=3)]
    assert [len(p) for p in pages] == [3, 3, 2]
    assert [m for p in pages for m in p] == [*people, "UBOT"]
    assert len(sim.calls("conversations.members")) == 3
    secret = _error(lambda: client.conversations_members(channel=PRIVATE))
    assert secret.response["error"] == "channel_not_found"


# ---------------------------------------------------------------------- edits and deletes


def test_edits_and_deletes_show_in_replies(sim: SlackSimulator, client: WebClient) -> None:
    parent = client.chat_postMessage(channel=CHANNEL, text="prompt")["ts"]
    draft = sim.user_posts(ALICE, CHANNEL, "frist", thread_ts=parent)
    oops = sim.user_posts(BOB, CHANNEL, "wrong thread", thread_ts=parent)
    sim.user_edits(CHANNEL, draft, "first")
    sim.user_deletes(CHANNEL, oops)

    parent_msg, edited = client.conversations_replies(channel=CHANNEL, ts=parent)["messages"]
    assert edited["text"] == "first" and edited["edited"]["user"] == ALICE
    assert edited["edited"]["ts"] > draft
    assert edited["blocks"][0]["elements"][0]["elements"] == [{"type": "text", "text": "first"}]
    assert parent_msg["reply_count"] == 1 and parent_msg["reply_users"] == [ALICE]
    with pytest.raises(ValueError):
        sim.user_edits(CHANNEL, oops, "too late")


def test_deleting_a_parent_with_replies_leaves_a_tombstone(sim: SlackSimulator) -> None:
    parent = sim.user_posts(ALICE, CHANNEL, "question")
    reply = sim.user_posts(BOB, CHANNEL, "answer", thread_ts=parent)
    sim.user_deletes(CHANNEL, parent)
    tombstone, kept = sim.thread(CHANNEL, parent)
    assert tombstone["subtype"] == "tombstone" and kept["ts"] == reply
    sim.user_deletes(CHANNEL, reply)
    assert sim.messages(CHANNEL) == []


def test_chat_update_and_delete_only_touch_the_bots_own_messages(
    sim: SlackSimulator, client: WebClient
) -> None:
    ts = client.chat_postMessage(channel=CHANNEL, text="v1")["ts"]
    human = sim.user_posts(ALICE, CHANNEL, "mine")
    updated = client.chat_update(channel=CHANNEL, ts=ts, text="v2")
    assert updated["message"]["text"] == "v2" and updated["message"]["edited"]["user"] == "UBOT"
    refused = _error(lambda: client.chat_update(channel=CHANNEL, ts=human, text="x"))
    assert refused.response["error"] == "cant_update_message"
    refused = _error(lambda: client.chat_delete(channel=CHANNEL, ts=human))
    assert refused.response["error"] == "cant_delete_message"
    client.chat_delete(channel=CHANNEL, ts=ts)
    assert [m["ts"] for m in sim.messages(CHANNEL)] == [human]


# ---------------------------------------------------------------------- other methods


def test_users_info_shapes_and_default_members(client: WebClient) -> None:
    alice = client.users_info(user=ALICE)["user"]
    assert alice["profile"]["display_name"] == "Alice" and alice["real_name"] == "Alice Adams"
    assert alice["tz"] == "Europe/Berlin" and alice["tz_offset"] in (3600, 7200)
    assert alice["is_bot"] is False and alice["is_app_user"] is False
    assert client.users_info(user=BOB)["user"]["is_restricted"] is True
    assert client.users_info(user=CAROL)["user"]["deleted"] is True
    slackbot = client.users_info(user="USLACKBOT")["user"]
    assert slackbot["name"] == "slackbot" and slackbot["is_bot"] is False
    assert client.users_info(user="UBOT")["user"]["is_bot"] is True
    assert _error(lambda: client.users_info(user="UNOPE")).response["error"] == "user_not_found"
    listed = [u["id"] for page in client.users_list(limit=2) for u in page["members"]]
    assert listed == ["USLACKBOT", "UBOT", ALICE, BOB, CAROL]


def test_dms_open_once_per_user(sim: SlackSimulator, client: WebClient) -> None:
    first = client.conversations_open(users=ALICE)["channel"]["id"]
    again = client.conversations_open(users=[ALICE])
    assert first.startswith("D") and again["channel"]["id"] == first and again["already_open"]
    client.chat_postMessage(channel=first, text="reminder")
    assert [m["text"] for m in sim.dms_to(ALICE)] == ["reminder"]
    assert sim.dms_to(BOB) == []
    assert _error(lambda: client.conversations_open(users="UNOPE")).response["error"] == (
        "user_not_found"
    )
    assert _error(lambda: client.conversations_open(users=CAROL)).response["error"] == (
        "user_disabled"
    )
    info = client.conversations_info(channel=first)["channel"]
    assert info["is_im"] is True and info["user"] == ALICE
    by_user = client.chat_postMessage(channel=BOB, text="nudge")
    assert by_user["channel"] == sim.open_im(BOB) != first
    assert [m["text"] for m in sim.dms_to(BOB)] == ["nudge"]


def test_conversations_info_permalinks_and_reactions(
    sim: SlackSimulator, client: WebClient
) -> None:
    info = client.conversations_info(channel=CHANNEL)["channel"]
    assert (info["id"], info["name"], info["is_private"], info["is_member"]) == (
        CHANNEL,
        "standup",
        False,
        True,
    )
    parent = client.chat_postMessage(channel=CHANNEL, text="prompt")["ts"]
    reply = sim.user_posts(ALICE, CHANNEL, "done", thread_ts=parent)
    link = client.chat_getPermalink(channel=CHANNEL, message_ts=parent)["permalink"]
    assert link == f"https://simulated.slack.com/archives/{CHANNEL}/p{parent.replace('.', '')}"
    reply_link = client.chat_getPermalink(channel=CHANNEL, message_ts=reply)["permalink"]
    assert reply_link.endswith(f"?thread_ts={parent}&cid={CHANNEL}")
    missing = _error(lambda: client.chat_getPermalink(channel=CHANNEL, message_ts="1.000001"))
    assert missing.response["error"] == "message_not_found"

    client.reactions_add(channel=CHANNEL, timestamp=reply, name="white_check_mark")
    again = _error(lambda: client.reactions_add(channel=CHANNEL, timestamp=reply, name="white_check_mark"))
    assert again.response["error"] == "already_reacted"
    gone = _error(lambda: client.reactions_add(channel=CHANNEL, timestamp="1.000001", name="x"))
    assert gone.response["error"] == "message_not_found"
    assert sim.reactions_on(CHANNEL, reply) == ["white_check_mark"]
    client.reactions_remove(channel=CHANNEL, timestamp=reply, name="white_check_mark")
    assert sim.reactions_on(CHANNEL, reply) == []
    never = _error(lambda: client.reactions_remove(channel=CHANNEL, timestamp=reply, name="x"))
    assert never.response["error"] == "no_reaction"


def test_ephemerals_and_views_are_recorded(sim: SlackSimulator, client: WebClient) -> None:
    answer = client.chat_postEphemeral(channel=CHANNEL, user=ALICE, text="only you")
    assert answer["message_ts"]
    assert sim.ephemerals[-1]["user"] == ALICE and sim.ephemerals[-1]["text"] == "only you"
    outsider = _error(lambda: client.chat_postEphemeral(channel=CHANNEL, user=CAROL, text="x"))
    assert outsider.response["error"] == "user_not_in_channel"

    view = {"type": "modal", "title": {"type": "plain_text", "text": "Report"}, "blocks": []}
    opened = client.views_open(trigger_id="123.456.abc", view=view)
    assert opened["view"]["id"].startswith("V")
    assert sim.views == [opened["view"]]
    assert sim.calls("views.open")[0]["trigger_id"] == "123.456.abc"


def test_malformed_bodies_and_helper_misuse_are_reported(sim: SlackSimulator) -> None:
    request = urllib.request.Request(
        sim.base_url + "auth.test",
        data=b"{not json",
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request) as answer:
        assert json.load(answer) == {"ok": False, "error": "invalid_json"}
    with pytest.raises(ValueError):
        sim.user_posts(ALICE, "C0NOPE", "x")
    with pytest.raises(ValueError):
        sim.user_posts("UNOPE", CHANNEL, "x")
    with pytest.raises(ValueError):
        sim.user_posts(ALICE, CHANNEL, "x", thread_ts="1.000001")
    with pytest.raises(ValueError):
        sim.add_channel("X0BAD", "bad", [])
    with pytest.raises(ValueError):
        sim.add_user("UTZ", "tz", tz="Mars/Olympus")
    with pytest.raises(ValueError):
        sim.fail("auth.test")  # nothing to inject
    with pytest.raises(ValueError):
        sim.limit_rate("auth.test", per_second=0)


# ---------------------------------------------------------------------- failures and limits


def test_an_injected_429_reaches_the_client_with_retry_after(
    sim: SlackSimulator, client: WebClient
) -> None:
    sim.fail("conversations.replies", status=429, retry_after=7)
    error = _error(lambda: client.conversations_replies(channel=CHANNEL, ts="1.000001"))
    assert error.response.status_code == 429
    assert error.response.headers["Retry-After"] == "7"
    assert error.response["error"] == "ratelimited"
    # The injection was used up: the next call reaches the method itself.
    after = _error(lambda: client.conversations_replies(channel=CHANNEL, ts="1.000001"))
    assert after.response["error"] == "thread_not_found"


def test_the_rate_limit_retry_handler_recovers_after_one_429(
    sim: SlackSimulator, client: WebClient
) -> None:
    sim.fail("chat.postMessage", status=429, retry_after=1)
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=1))
    started = time.monotonic()
    answer = client.chat_postMessage(channel=CHANNEL, text="eventually")
    assert answer["ok"] is True
    assert time.monotonic() - started >= 1
    assert len(sim.calls("chat.postMessage")) == 2
    assert len(sim.messages(CHANNEL)) == 1


def test_injected_ok_false_errors_carry_extra_fields(
    sim: SlackSimulator, client: WebClient
) -> None:
    sim.fail("conversations.history", error="missing_scope", extra={"needed": "channels:history"})
    sim.fail("users.info", error="fatal_error", status=500, times=2)
    sim.fail("auth.test", status=503)
    error = _error(lambda: client.conversations_history(channel=CHANNEL))
    assert error.response.status_code == 200
    assert (error.response["error"], error.response["needed"]) == ("missing_scope", "channels:history")
    assert client.conversations_history(channel=CHANNEL)["ok"] is True
    for _ in range(2):
        assert _error(lambda: client.users_info(user=ALICE)).response.status_code == 500
    assert client.users_info(user=ALICE)["ok"] is True
    assert _error(client.auth_test).response.status_code == 503
    with pytest.raises(ValueError):
        sim.fail("no.such.method", error="x")


def test_an_injected_delay_times_the_client_out(sim: SlackSimulator) -> None:
    sim.fail("auth.test", delay=2.0)
    impatient = WebClient(token=TOKEN, base_url=sim.base_url, timeout=0.2, retry_handlers=[])
    started = time.monotonic()
    with pytest.raises(OSError):  # TimeoutError, or URLError wrapping it
        impatient.auth_test()
    assert time.monotonic() - started < 1.5
    assert impatient.auth_test()["ok"] is True


def test_rate_limits_apply_per_channel(sim: SlackSimulator, client: WebClient) -> None:
    sim.add_channel("C0OTHER", "other", [ALICE])
    sim.limit_rate("chat.postMessage", per_second=0.01, per_channel=True)
    client.chat_postMessage(channel=CHANNEL, text="one")
    limited = _error(lambda: client.chat_postMessage(channel=CHANNEL, text="two"))
    assert limited.response.status_code == 429
    assert int(limited.response.headers["Retry-After"]) >= 1
    client.chat_postMessage(channel="C0OTHER", text="elsewhere")
    assert len(sim.messages(CHANNEL)) == 1 and len(sim.messages("C0OTHER")) == 1


def test_a_per_channel_and_a_workspace_limit_hold_at_once(
    sim: SlackSimulator, client: WebClient
) -> None:
    # chat.postMessage as Slack limits it: per channel, and for the whole workspace.
    sim.add_channel("C0OTHER", "other", [ALICE])
    sim.limit_rate("chat.postMessage", per_second=0.01, per_channel=True, burst=1)
    sim.limit_rate("chat.postMessage", per_second=0.01, burst=2)

    client.chat_postMessage(channel=CHANNEL, text="one")
    by_channel = _error(lambda: client.chat_postMessage(channel=CHANNEL, text="two"))
    client.chat_postMessage(channel="C0OTHER", text="the refused post took no workspace token")
    by_workspace = _error(lambda: client.chat_postMessage(channel=ALICE, text="a third channel"))

    assert by_channel.response.status_code == by_workspace.response.status_code == 429
    assert by_workspace.response.headers["Retry-After"] == "100"  # whole seconds: 1 / 0.01 per s
    assert len(sim.messages(CHANNEL)) == 1 and len(sim.messages("C0OTHER")) == 1
    assert sim.dms_to(ALICE) == []
    assert sim.rate_limited["chat.postMessage"] == 2


def test_a_post_to_a_user_id_and_one_to_their_dm_share_the_dms_limit(
    sim: SlackSimulator, client: WebClient
) -> None:
    sim.limit_rate("chat.postMessage", per_second=0.01, per_channel=True, burst=1)

    dm = client.chat_postMessage(channel=ALICE, text="by user ID")["channel"]
    limited = _error(lambda: client.chat_postMessage(channel=dm, text="by DM ID"))
    client.chat_postMessage(channel=BOB, text="another DM")

    assert dm.startswith("D") and limited.response.status_code == 429
    assert len(sim.dms_to(ALICE)) == 1 and len(sim.dms_to(BOB)) == 1


def test_an_injection_for_one_channel_lets_calls_to_others_pass(
    sim: SlackSimulator, client: WebClient
) -> None:
    sim.fail("chat.postMessage", error="fatal_error", channel=BOB)

    client.chat_postMessage(channel=ALICE, text="to alice")
    failed = _error(lambda: client.chat_postMessage(channel=BOB, text="to bob"))
    client.chat_postMessage(channel=BOB, text="to bob again")

    assert failed.response["error"] == "fatal_error"
    assert [m["text"] for m in sim.dms_to(ALICE)] == ["to alice"]
    assert [m["text"] for m in sim.dms_to(BOB)] == ["to bob again"]


# ---------------------------------------------------------------------- events


def test_events_are_delivered_signed(sim: SlackSimulator, listener: Listener) -> None:
    sim.deliver_events_to(listener.url, SECRET)
    parent = sim.user_posts(ALICE, CHANNEL, "parent")
    ts = sim.user_posts(BOB, CHANNEL, "done &amp; dusted", thread_ts=parent)

    assert len(listener.received) == 2
    headers, body = listener.received[1]
    assert headers["content-type"] == "application/json"
    verifier = SignatureVerifier(SECRET)
    assert verifier.is_valid(
        body=body, timestamp=headers["x-slack-request-timestamp"],
        signature=headers["x-slack-signature"],
    )
    envelope = json.loads(body)
    assert envelope["type"] == "event_callback" and envelope["api_app_id"] == "A0SIM"
    assert envelope["event_id"].startswith("Ev") and envelope["team_id"] == "T0TEST"
    assert envelope["authorizations"] == [
        {"enterprise_id": None, "team_id": "T0TEST", "user_id": "UBOT", "is_bot": True,
         "is_enterprise_install": False}
    ]
    event = envelope["event"]
    assert (event["type"], event["user"], event["text"], event["ts"]) == (
        "message", BOB, "done &amp; dusted", ts
    )
    assert event["thread_ts"] == parent and event["parent_user_id"] == ALICE
    assert event["channel"] == CHANNEL and event["channel_type"] == "channel"
    assert event["event_ts"] == ts and event["team"] == "T0TEST" and event["client_msg_id"]
    assert sim.last_event() == envelope
    assert [status for _, status in sim.delivery_results] == [200, 200]
    ids = [event_id for event_id, _ in sim.delivery_results]
    assert len(set(ids)) == 2 and ids[1] == envelope["event_id"]


def test_bot_posts_edits_and_deletes_produce_events(
    sim: SlackSimulator, client: WebClient, listener: Listener
) -> None:
    sim.deliver_events_to(listener.url, SECRET)
    parent = client.chat_postMessage(channel=CHANNEL, text="prompt")["ts"]
    reply = sim.user_posts(ALICE, CHANNEL, "frist", thread_ts=parent)
    sim.user_edits(CHANNEL, reply, "first")
    sim.user_deletes(CHANNEL, reply)
    dm = client.conversations_open(users=BOB)["channel"]["id"]
    sim.user_posts(BOB, dm, "hi bot")

    bot_post, _, changed, deleted, im = [e["event"] for e in listener.envelopes()]
    assert bot_post["bot_id"] == "BBOT" and bot_post["user"] == "UBOT"
    assert "client_msg_id" not in bot_post
    assert changed["subtype"] == "message_changed" and changed["hidden"] is True
    assert changed["message"]["text"] == "first" and changed["message"]["thread_ts"] == parent
    assert changed["message"]["edited"]["user"] == ALICE
    assert changed["previous_message"]["text"] == "frist" and changed["ts"] > reply
    assert "user" not in changed and "text" not in changed
    assert deleted["subtype"] == "message_deleted" and deleted["deleted_ts"] == reply
    assert deleted["previous_message"]["text"] == "first" and deleted["ts"] > reply
    assert im["channel"] == dm and im["channel_type"] == "im"


def test_delivery_off_drops_events_and_redelivery_resends_them(
    sim: SlackSimulator, listener: Listener
) -> None:
    sim.deliver_events_to(None, SECRET)
    sim.user_posts(ALICE, CHANNEL, "nobody listens")
    dropped = sim.last_event()
    assert dropped is not None and dropped["event"]["text"] == "nobody listens"
    assert listener.received == [] and sim.delivery_results == []

    sim.deliver_events_to(listener.url, SECRET)
    sim.user_posts(ALICE, CHANNEL, "back up")
    assert [e["event"]["text"] for e in listener.envelopes()] == ["back up"]

    assert sim.redeliver(dropped, retry_num=2, reason="http_error") == 200
    headers, body = listener.received[-1]
    assert headers["x-slack-retry-num"] == "2" and headers["x-slack-retry-reason"] == "http_error"
    assert json.loads(body) == dropped


def test_private_channels_without_the_bot_produce_no_events(
    sim: SlackSimulator, listener: Listener
) -> None:
    sim.deliver_events_to(listener.url, SECRET)
    sim.user_posts(ALICE, PRIVATE, "secret")
    assert listener.received == [] and sim.last_event() is None


def test_failed_deliveries_are_recorded_not_raised(sim: SlackSimulator, listener: Listener) -> None:
    listener.status = 404
    sim.deliver_events_to(listener.url, SECRET)
    sim.user_posts(ALICE, CHANNEL, "unhandled")
    assert sim.delivery_results[-1][1] == 404

    unused = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    dead_url = f"http://127.0.0.1:{unused.server_address[1]}/slack/events"
    unused.server_close()
    sim.deliver_events_to(dead_url, SECRET)
    sim.user_posts(ALICE, CHANNEL, "nobody home")
    event_id, status = sim.delivery_results[-1]
    assert status == 0 and event_id == sim.last_event()["event_id"]


def test_send_signed_can_forge_bad_requests(sim: SlackSimulator, listener: Listener) -> None:
    body = b'{"type":"event_callback"}'
    stale = int(time.time()) - 600
    status, _ = sim.send_signed(
        listener.url, body, SECRET, timestamp=stale, headers={"x-slack-signature": "v0=bad"}
    )
    assert status == 200
    headers, received = listener.received[-1]
    assert received == body
    assert headers["x-slack-request-timestamp"] == str(stale)
    assert headers["x-slack-signature"] == "v0=bad"
    sim.send_signed(listener.url, body, SECRET, headers={"X-Slack-Signature": ""})
    assert "x-slack-signature" not in listener.received[-1][0]
