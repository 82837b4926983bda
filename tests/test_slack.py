"""Our Slack wrapper against the simulator, through the real WebClient that make_client builds.

Retries are timed with FAST_RETRY (tiny back-off; slack_sdk still adds up to 1 s of jitter per
5xx or connection retry), so each test that retries takes about a second at most. A 429 waits
through the `wait` given to make_client, which the tests record.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from slack_sdk.http_retry.response import HttpResponse

from standup_bot.errors import SlackError
from standup_bot.slack import (
    DEFAULT_RETRY_AFTER,
    MAX_RETRY_AFTER,
    RateLimitRetry,
    RetryPolicy,
    SlackApi,
    display_name,
    explain,
    is_human,
    make_client,
)
from standup_bot.slack_simulator import SlackSimulator
from tests.conftest import ALICE, BOB, CAROL, CHANNEL, DAVE, FAST_RETRY, ROBOT, TOKEN


def _api(base_url: str, *, token: str = TOKEN, timeout: float = 5, retry: RetryPolicy = FAST_RETRY,
         sleep: Callable[[float], None] = lambda seconds: None,
         wait: Callable[[float], None] = time.sleep) -> SlackApi:
    """Return our wrapper; `sleep` is its own (HTTP 200 rate limits), `wait` the 429 handler's."""
    return SlackApi(make_client(token, base_url, timeout=timeout, retry=retry, sleep=wait), sleep=sleep)


@pytest.fixture
def api(sim: SlackSimulator) -> SlackApi:
    return _api(sim.base_url)


def _closed_port() -> int:
    """Return a loopback port that nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _failure(call: Callable[[], Any]) -> SlackError:
    with pytest.raises(SlackError) as raised:
        call()
    return raised.value


# -- transient failures are retried ------------------------------------------------------------


def test_a_429_is_retried_after_exactly_its_retry_after_and_then_succeeds(sim):
    waited: list[float] = []
    api = _api(sim.base_url, wait=waited.append)
    sim.fail("conversations.members", status=429, retry_after=3)

    members = api.channel_members(CHANNEL)

    assert ALICE in members
    assert len(sim.calls("conversations.members")) == 2
    assert waited == [3.0]  # no random jitter on top: one sequential client herds nobody


def test_posts_under_the_simulators_rate_limit_wait_whole_retry_afters_and_all_land(sim):
    waited: list[float] = []

    def wait(seconds: float) -> None:
        waited.append(seconds)
        time.sleep(seconds)  # really: the simulator's bucket refills meanwhile

    api = _api(sim.base_url, wait=wait)
    sim.limit_rate("chat.postMessage", per_second=2, burst=1)

    posted = [api.post_message(CHANNEL, f"message {n}") for n in range(2)]

    assert [m["ts"] for m in sim.messages(CHANNEL)] == posted
    refused = len(sim.calls("chat.postMessage")) - len(posted)
    assert refused >= 1 and waited == [1.0] * refused  # Slack's (and the simulator's) whole seconds


def test_a_429_storm_is_retried_as_often_as_the_policy_says_then_reported(sim):
    waited: list[float] = []
    api = _api(sim.base_url, retry=RetryPolicy(rate_limited=2), wait=waited.append)
    sim.fail("chat.postMessage", status=429, retry_after=1, times=10)

    error = _failure(lambda: api.post_message(CHANNEL, "hello"))

    assert str(error) == explain("chat.postMessage", "ratelimited")
    assert len(sim.calls("chat.postMessage")) == 3 and waited == [1.0, 1.0]
    assert sim.messages(CHANNEL) == []


def test_an_absurd_retry_after_fails_at_once_saying_how_long_slack_asked_for(sim):
    waited: list[float] = []
    api = _api(sim.base_url, wait=waited.append)
    sim.fail("conversations.members", status=429, retry_after=3600)

    error = _failure(lambda: api.channel_members(CHANNEL))

    assert str(error) == (
        f"Slack rate-limited conversations.members and asked to wait 3600 s (ratelimited), longer than "
        f"the {MAX_RETRY_AFTER:g} s the bot waits out: try again later"
    )
    assert error.code == "ratelimited"
    assert waited == [] and len(sim.calls("conversations.members")) == 1


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": ["2"]}, 2.0),
        ({"retry-after": "30"}, 30.0),  # any case, a bare string
        ({"Retry-After": ["1.5"]}, 1.5),
        ({}, DEFAULT_RETRY_AFTER),
        ({"Retry-After": ["soon"]}, DEFAULT_RETRY_AFTER),
        ({"Retry-After": ["Wed, 21 Oct 2026 07:28:00 GMT"]}, DEFAULT_RETRY_AFTER),  # Slack sends seconds
        ({"Retry-After": ["-5"]}, DEFAULT_RETRY_AFTER),
        ({"Retry-After": ["nan"]}, DEFAULT_RETRY_AFTER),
        ({"Retry-After": [""]}, DEFAULT_RETRY_AFTER),
    ],
    ids=["seconds", "lowercase-string", "fraction", "missing", "garbage", "http-date", "negative", "nan", "empty"],
)
def test_a_missing_or_unreadable_retry_after_waits_the_default(headers, seconds):
    assert RateLimitRetry.wait_for(HttpResponse(status_code=429, headers=headers)) == seconds


@pytest.mark.parametrize("status", [503, 502, 500])
def test_a_server_error_is_retried_and_then_succeeds(sim, api, status):
    sim.fail("auth.test", status=status)

    assert api.auth_test()["user_id"] == sim.bot_user_id
    assert len(sim.calls("auth.test")) == 2


@pytest.mark.parametrize("retries", [0, 2])
def test_a_server_error_that_never_recovers_fails_after_one_try_plus_the_retries(sim, retries):
    api = _api(sim.base_url, retry=RetryPolicy(server_errors=retries, backoff_factor=0.01))
    sim.fail("auth.test", status=503, times=retries + 5)

    error = _failure(api.auth_test)

    assert len(sim.calls("auth.test")) == 1 + retries
    assert "\n" not in str(error)
    assert str(error).startswith("Slack API auth.test failed with HTTP 503 after retries")


def test_an_unreachable_server_fails_quickly_with_a_one_line_reason(sim):
    url = f"http://127.0.0.1:{_closed_port()}/api/"
    api = _api(url)

    started = time.monotonic()
    error = _failure(api.auth_test)

    assert time.monotonic() - started < 5
    assert str(error).startswith(f"cannot reach Slack at {url} (auth.test: ")
    assert str(error).endswith("check the network and SLACK_API_URL")
    assert "\n" not in str(error)
    assert error.code == "unreachable"


def test_a_server_that_hangs_up_is_retried_then_reported_as_unreachable():
    accepted: list[int] = []
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.settimeout(0.05)
        stop = threading.Event()

        def hang_up() -> None:
            while not stop.is_set():
                try:
                    connection, _ = server.accept()
                except TimeoutError:
                    continue
                accepted.append(1)
                connection.close()  # no answer at all: RemoteDisconnected on the client

        thread = threading.Thread(target=hang_up, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{server.getsockname()[1]}/api/"
        try:
            error = _failure(_api(url, retry=RetryPolicy(connection_errors=1, backoff_factor=0.01)).auth_test)
        finally:
            stop.set()
            thread.join(timeout=5)

    assert len(accepted) == 2
    assert str(error).startswith(f"cannot reach Slack at {url} (auth.test: ")


def test_a_call_that_times_out_is_retried(sim):
    api = _api(sim.base_url, timeout=1)
    sim.fail("conversations.members", delay=1.5)

    started = time.monotonic()
    members = api.channel_members(CHANNEL)

    assert ALICE in members
    assert len(sim.calls("conversations.members")) == 2
    assert time.monotonic() - started >= 1


@pytest.mark.parametrize("code", ["ratelimited", "rate_limited"])
def test_an_http_200_rate_limit_error_is_retried_with_the_injected_sleep(sim, code):
    slept: list[float] = []
    api = _api(sim.base_url, sleep=slept.append)
    sim.fail("chat.postMessage", error=code, times=2)

    ts = api.post_message(CHANNEL, "hello")

    assert [m["ts"] for m in sim.messages(CHANNEL)] == [ts]
    assert len(sim.calls("chat.postMessage")) == 3
    assert slept == [1.0, 2.0]


def test_an_http_200_rate_limit_that_persists_gives_up_with_a_hint(sim):
    slept: list[float] = []
    api = _api(sim.base_url, sleep=slept.append)
    sim.fail("chat.postMessage", error="ratelimited", times=3)

    error = _failure(lambda: api.post_message(CHANNEL, "hello"))

    assert str(error) == explain("chat.postMessage", "ratelimited")
    assert "kept rate-limiting chat.postMessage" in str(error)
    assert len(sim.calls("chat.postMessage")) == 3
    assert sim.messages(CHANNEL) == []


# -- permanent errors are explained and not retried --------------------------------------------


def test_a_rejected_token_is_explained_and_not_retried(sim):
    api = _api(sim.base_url, token="xoxb-not-the-right-one")

    error = _failure(api.auth_test)

    assert str(error) == explain("auth.test", "invalid_auth")
    assert "SLACK_BOT_TOKEN" in str(error)
    assert error.code == "invalid_auth"
    assert len(sim.calls("auth.test")) == 1


def test_an_unknown_channel_is_explained_and_not_retried(sim, api):
    error = _failure(lambda: api.channel_info("C0NOSUCH"))

    assert str(error) == explain("conversations.info", "channel_not_found", channel="C0NOSUCH")
    assert "C0NOSUCH" in str(error) and "STANDUP_CHANNEL" in str(error)
    assert len(sim.calls("conversations.info")) == 1


def test_a_channel_the_bot_is_not_in_is_explained_and_not_retried(sim, api):
    sim.add_channel("C0OUTSIDE", "outside", [ALICE], bot_is_member=False)
    parent = sim.user_posts(ALICE, "C0OUTSIDE", "a thread")

    error = _failure(lambda: api.thread("C0OUTSIDE", parent))

    assert str(error) == explain("conversations.replies", "not_in_channel", channel="C0OUTSIDE")
    assert "/invite" in str(error)
    assert error.code == "not_in_channel"
    assert len(sim.calls("conversations.replies")) == 1


def test_a_missing_scope_names_the_scope_needed_and_is_not_retried(sim, api):
    sim.fail(
        "conversations.replies", error="missing_scope",
        extra={"needed": "channels:history", "provided": "chat:write"},
    )

    error = _failure(lambda: api.thread(CHANNEL, "1764147600.000100"))

    assert str(error) == explain(
        "conversations.replies", "missing_scope", channel=CHANNEL, needed="channels:history"
    )
    assert "channels:history" in str(error)
    assert len(sim.calls("conversations.replies")) == 1


def test_an_unknown_error_code_is_reported_as_it_is(sim, api):
    sim.fail("conversations.info", error="team_added_to_org")

    error = _failure(lambda: api.channel_info(CHANNEL))

    assert str(error) == "Slack API conversations.info failed: team_added_to_org"
    assert len(sim.calls("conversations.info")) == 1


@pytest.mark.parametrize("code", ["invalid_auth", "channel_not_found", "not_in_channel", "missing_scope"])
def test_every_hint_is_one_line_that_names_the_code(code):
    message = explain("conversations.replies", code, channel=CHANNEL, needed="channels:history")

    assert "\n" not in message
    assert f"({code})" in message
    assert not message.startswith("Slack API")  # a hint, not the generic fallback


# -- pagination ---------------------------------------------------------------------------------


def test_a_thread_is_read_across_pages_when_slack_caps_the_page_at_15():
    with SlackSimulator(token=TOKEN, page_size_cap=15) as capped:
        capped.add_user(ALICE, "alice", display_name="Alice")
        capped.add_user(BOB, "bob", real_name="Bob Brown")
        capped.add_channel(CHANNEL, "team-standup", [ALICE, BOB])
        api = _api(capped.base_url)
        parent = api.post_message(CHANNEL, "Standup for today")
        posted = [
            capped.user_posts((ALICE, BOB)[n % 2], CHANNEL, f"reply {n}", thread_ts=parent) for n in range(40)
        ]

        messages = api.thread(CHANNEL, parent)
        calls = capped.calls("conversations.replies")

    assert [m["ts"] for m in messages] == [parent, *posted]
    assert len(calls) == 3  # 15 + 15 + 11
    assert "cursor" not in calls[0]
    assert all(call.get("cursor") for call in calls[1:])


def test_channel_members_are_read_across_pages(sim, api):
    crowd = [f"U{n:05d}" for n in range(450)]
    for user in crowd:
        sim.add_user(user, user.lower())
    sim.add_channel("C0CROWD", "crowd", crowd)

    members = api.channel_members("C0CROWD")

    assert members == [*crowd, sim.bot_user_id]
    assert len(sim.calls("conversations.members")) == 3  # 200 + 200 + 51


# -- direct messages ----------------------------------------------------------------------------


def test_a_dm_is_one_post_to_the_member_id_answered_with_the_dm_channel(sim, api):
    channel = api.post_dm(ALICE, "hello", metadata={"event_type": "standup_reminder", "event_payload": {}})

    [dm] = sim.dms_to(ALICE)
    assert dm["text"] == "hello" and dm["metadata"]["event_type"] == "standup_reminder"
    assert [call["channel"] for call in sim.calls("chat.postMessage")] == [ALICE]
    assert sim.calls("conversations.open") == []
    assert channel.startswith("D") and api.open_dm(ALICE) == channel  # the DM conversations.open opens


@pytest.mark.parametrize(("user", "code"), [(DAVE, "user_disabled"), (ROBOT, "cannot_dm_bot")])
def test_a_refused_dm_names_the_member_and_is_not_retried(sim, api, user, code):
    error = _failure(lambda: api.post_dm(user, "hello"))

    assert str(error) == explain("chat.postMessage", code, user=user)
    assert f"member {user} is" in str(error) and "MEMBERS" in str(error)
    assert error.code == code
    assert len(sim.calls("chat.postMessage")) == 1


def test_a_dm_slack_will_not_open_names_the_member_not_the_standup_channel(sim, api):
    sim.fail("chat.postMessage", error="channel_not_found", channel=ALICE)

    error = _failure(lambda: api.post_dm(ALICE, "hello"))

    assert str(error) == (
        f"Slack would not open a DM with member {ALICE} (channel_not_found): check MEMBERS holds member IDs "
        "of this workspace"
    )
    assert error.code == "channel_not_found"


def test_a_dm_refused_for_the_apps_messages_tab_says_where_to_turn_it_on(sim, api):
    sim.fail("chat.postMessage", error="messages_tab_disabled")

    error = _failure(lambda: api.post_dm(ALICE, "hello"))

    assert str(error).startswith(f"Slack refused a DM to {ALICE} because the app's Messages tab is off")
    assert "'App Home'" in str(error)


# -- names and people ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ({"id": "U1", "real_name": "Ann Real", "profile": {"display_name": "ann", "real_name": "Ann Real"}}, "ann"),
        ({"id": "U1", "real_name": "Ann Real", "profile": {"display_name": "", "real_name": "Ann Real"}},
         "Ann Real"),
        ({"id": "U1", "real_name": "Ann Real", "profile": {"display_name": "   "}}, "Ann Real"),
        ({"id": "U1", "profile": {"display_name": "", "real_name": ""}}, "U1"),
        ({"id": "U1"}, "U1"),
    ],
    ids=["display-name", "real-name", "blank-display-name", "neither", "no-profile"],
)
def test_a_slack_name_is_the_display_name_else_the_real_name_else_the_id(user, expected):
    assert display_name(user) == expected


def test_slack_names_of_the_cast_come_from_users_info(api):
    assert display_name(api.user_info(ALICE)) == "Alice"
    assert display_name(api.user_info(BOB)) == "Bob Brown"  # empty display name


def test_users_list_pages_through_the_workspace_and_stops_when_the_caller_does(api, sim):
    for i in range(1500):
        sim.add_user(f"UMANY{i:04d}", f"many{i}", display_name=f"Many {i}", tz="Asia/Tokyo")

    everyone = list(api.users_list())
    assert [call["limit"] for call in sim.calls("users.list")] == ["1000", "1000"]
    assert len({user["id"] for user in everyone}) == len(everyone) > 1500
    assert display_name(next(user for user in everyone if user["id"] == ALICE)) == "Alice"
    assert next(user for user in everyone if user["id"] == "UMANY0007")["tz"] == "Asia/Tokyo"

    first = next(iter(api.users_list()))  # taking one member reads one page only
    assert first["id"] == everyone[0]["id"]
    assert len(sim.calls("users.list")) == 3


@pytest.mark.parametrize(
    ("user", "human"),
    [
        ({"id": "U1"}, True),
        ({"id": "U1", "is_restricted": True}, True),  # guests count
        ({"id": "U1", "is_bot": True}, False),
        ({"id": "U1", "deleted": True}, False),
        ({"id": "U1", "is_app_user": True}, False),
        ({"id": "USLACKBOT"}, False),
    ],
    ids=["person", "guest", "bot", "deleted", "app-user", "slackbot"],
)
def test_only_people_who_can_report_are_human(user, human):
    assert is_human(user) is human


def test_the_cast_is_sorted_into_people_and_the_rest(api):
    kinds = {user: is_human(api.user_info(user)) for user in (ALICE, BOB, CAROL, DAVE, ROBOT, "USLACKBOT")}

    assert kinds == {ALICE: True, BOB: True, CAROL: True, DAVE: False, ROBOT: False, "USLACKBOT": False}


# -- secrets ------------------------------------------------------------------------------------


def _every_kind_of_failure(sim: SlackSimulator) -> list[SlackError]:
    api = _api(sim.base_url, retry=RetryPolicy(server_errors=0, connection_errors=0))
    sim.fail("auth.test", status=503)
    sim.fail("auth.test", status=404)
    sim.fail("auth.test", error="invalid_auth")
    sim.fail("auth.test", error="missing_scope", extra={"needed": "users:read"})
    sim.fail("auth.test", error="some_new_error", extra={"token": TOKEN})
    errors = [_failure(api.auth_test) for _ in range(5)]
    unreachable = _api(f"http://127.0.0.1:{_closed_port()}/api/", retry=RetryPolicy(connection_errors=0))
    errors.append(_failure(unreachable.auth_test))
    return errors


def test_the_token_never_appears_in_an_error(sim):
    errors = _every_kind_of_failure(sim)

    assert len(errors) == 6
    for error in errors:
        assert TOKEN not in str(error)
        assert TOKEN not in repr(error.args)
        assert TOKEN not in error.code
