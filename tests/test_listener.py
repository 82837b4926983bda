"""The real Bolt listener over HTTP: signed requests in, replies stored, everything acked."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from standup_bot import stages
from standup_bot.listener_app import interpret_message_event
from tests.conftest import (
    ALICE,
    BOB,
    CAROL,
    CHANNEL,
    DAY,
    SIGNING_SECRET,
    LiveListener,
    stop_server,
    stored_texts,
    wait_for,
)


def _envelope(event: dict, event_id: str = "Ev0TEST1") -> bytes:
    return json.dumps({
        "token": "XXYYZZ", "team_id": "T0TEST", "api_app_id": "A0SIM", "type": "event_callback",
        "event_id": event_id, "event_time": int(time.time()), "event": event,
        "authorizations": [{"team_id": "T0TEST", "user_id": "UBOT", "is_bot": True}],
    }).encode()


def test_a_reply_is_recorded_and_confirmed_with_a_tick(sim, store, prompt_ts):
    ts = sim.user_posts(ALICE, CHANNEL, "done &amp; dusted", thread_ts=prompt_ts)

    wait_for(lambda: stored_texts(store).get(ts) == "done &amp; dusted", what="the reply to be stored")
    wait_for(lambda: sim.reactions_on(CHANNEL, ts) == ["white_check_mark"], what="the ✅")
    assert all(status == 200 for _, status in sim.delivery_results)


def test_no_tick_when_the_setting_is_off(make_settings, store, sim, make_ctx):
    from standup_bot.listener_app import build_app, serve_http
    from standup_bot.slack import make_client

    settings = make_settings(CONFIRM_WITH_REACTION=False)
    server = serve_http(build_app(settings, store, make_client(settings.slack_bot_token, sim.base_url)),
                        store, "127.0.0.1", 0)
    import threading

    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        sim.deliver_events_to(f"http://127.0.0.1:{server.effective_port}/slack/events", SIGNING_SECRET)
        stages.prompt(make_ctx(settings), DAY)
        ts = sim.user_posts(ALICE, CHANNEL, "hi", thread_ts=store.prompt_ts(CHANNEL, DAY))
        wait_for(lambda: ts in stored_texts(store))
        assert sim.calls("reactions.add") == []
    finally:
        stop_server(server, thread)


def test_edits_and_deletions_are_applied(sim, store, prompt_ts):
    ts = sim.user_posts(BOB, CHANNEL, "frist", thread_ts=prompt_ts)
    wait_for(lambda: ts in stored_texts(store))
    sim.user_edits(CHANNEL, ts, "first")
    wait_for(lambda: stored_texts(store).get(ts) == "first", what="the edit")
    assert [s.reply.edited for s in store.stored_replies(CHANNEL, DAY)] == [True]

    sim.user_deletes(CHANNEL, ts)
    wait_for(lambda: ts not in stored_texts(store), what="the deletion")


def test_a_redelivered_event_never_duplicates_or_undoes_anything(sim, store, prompt_ts):
    ts = sim.user_posts(ALICE, CHANNEL, "original", thread_ts=prompt_ts)
    original = sim.last_event()
    wait_for(lambda: ts in stored_texts(store))
    sim.user_edits(CHANNEL, ts, "edited")
    wait_for(lambda: stored_texts(store).get(ts) == "edited")

    assert sim.redeliver(original, retry_num=1) == 200
    assert sim.redeliver(original, retry_num=2, reason="http_error") == 200
    time.sleep(0.2)  # give the (wrongly) re-run handler a chance to act before we look
    assert stored_texts(store) == {ts: "edited"}
    assert len(sim.calls("reactions.add")) == 1


def test_bot_messages_top_level_messages_and_other_threads_are_not_stored(sim, store, prompt_ts):
    sim.user_posts("UROBOT", CHANNEL, "beep", thread_ts=prompt_ts, bot_id="BROBOT")
    sim.user_posts(ALICE, CHANNEL, "top level")
    other = sim.user_posts(CAROL, CHANNEL, "another thread")
    sim.user_posts(BOB, CHANNEL, "in the other thread", thread_ts=other)
    marker = sim.user_posts(ALICE, CHANNEL, "marker", thread_ts=prompt_ts)

    wait_for(lambda: marker in stored_texts(store))
    assert list(stored_texts(store).values()) == ["marker"]


def test_requests_with_a_bad_missing_or_stale_signature_get_401_and_change_nothing(
    sim, store, prompt_ts, listener: LiveListener
):
    event = {"type": "message", "user": ALICE, "text": "forged", "ts": "1800000000.000100",
             "thread_ts": prompt_ts, "channel": CHANNEL, "channel_type": "channel"}
    body = _envelope(event)

    assert sim.send_signed(listener.url, body, "wrong-secret")[0] == 401
    assert sim.send_signed(listener.url, body, SIGNING_SECRET, timestamp=int(time.time()) - 600)[0] == 401
    request = urllib.request.Request(listener.url, data=body, headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as unsigned:
        urllib.request.urlopen(request, timeout=5)
    assert unsigned.value.code == 401
    time.sleep(0.1)
    assert stored_texts(store) == {}


def test_every_valid_event_is_acked_even_the_ones_the_bot_has_no_use_for(sim, listener: LiveListener):
    for event in (
        {"type": "reaction_added", "user": ALICE, "reaction": "tada"},
        {"type": "app_mention", "user": ALICE, "text": "<@UBOT> hi", "ts": "1.2", "channel": CHANNEL},
        {"type": "member_joined_channel", "user": BOB, "channel": CHANNEL},
        {"type": "message", "subtype": "channel_join", "user": BOB, "ts": "1.3", "channel": CHANNEL},
    ):
        started = time.monotonic()
        status, _ = sim.send_signed(listener.url, _envelope(event, f"Ev{event['type']}"), SIGNING_SECRET)
        assert status == 200, event
        assert time.monotonic() - started < 3


def test_url_verification_answers_the_challenge(sim, listener: LiveListener):
    body = json.dumps({"token": "XXYYZZ", "challenge": "abc123", "type": "url_verification"}).encode()
    status, answer = sim.send_signed(listener.url, body, SIGNING_SECRET)
    assert status == 200 and b"abc123" in answer


def test_health_endpoint_and_unknown_paths(listener: LiveListener):
    health = listener.url.replace("/slack/events", "/healthz")
    with urllib.request.urlopen(health, timeout=5) as response:
        assert response.status == 200 and json.load(response) == {"ok": True}
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(listener.url.replace("/slack/events", "/nope"), timeout=5)
    assert missing.value.code == 404


def test_an_oversized_body_is_refused(sim, listener: LiveListener):
    status, _ = sim.send_signed(listener.url, b"{" + b" " * (2 * 1024 * 1024) + b"}", SIGNING_SECRET)
    assert status == 413


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"type": "message", "channel": "C1", "ts": "2.0", "thread_ts": "1.0", "user": "U1"}, "reply"),
        ({"type": "message", "channel": "C1", "ts": "1.0", "thread_ts": "1.0", "user": "U1"}, None),
        ({"type": "message", "channel": "C1", "ts": "1.0", "user": "U1"}, None),
        ({"type": "message", "subtype": "message_deleted", "channel": "C1", "deleted_ts": "2.0"}, "delete"),
        ({"type": "message", "subtype": "message_deleted", "channel": "C1"}, None),
        ({"type": "message", "subtype": "message_changed", "channel": "C1", "ts": "3.0",
          "message": {"ts": "2.0", "thread_ts": "1.0", "user": "U1", "text": "x", "edited": {"ts": "3.0"}}}, "edit"),
        ({"type": "message", "subtype": "message_changed", "channel": "C1", "message": "garbage"}, None),
        ({"type": "message", "channel": None, "ts": "2.0", "thread_ts": "1.0"}, None),
        ({"type": "message", "channel": "C1", "ts": 2.0, "thread_ts": 1.0}, None),
    ],
)
def test_message_events_are_interpreted_by_shape(event, expected):
    change = interpret_message_event(event)
    assert (change.kind if change else None) == expected


def test_a_late_original_event_does_not_undo_an_edit_read_from_the_thread(
    sim, store, ctx, prompt_ts, listener: LiveListener
):
    sim.deliver_events_to(None, SIGNING_SECRET)  # the listener misses the reply and its edit
    ts = sim.user_posts(ALICE, CHANNEL, "draft", thread_ts=prompt_ts)
    original = sim.last_event()
    sim.user_edits(CHANNEL, ts, "final")
    stages.remind(ctx, DAY)  # reads the thread back: the store now has "final"
    assert stored_texts(store) == {ts: "final"}

    sim.deliver_events_to(listener.url, SIGNING_SECRET)  # back up
    assert sim.redeliver(original) == 200  # Slack's late retry of the original event
    time.sleep(0.2)  # give the (wrongly) re-run handler a chance to act before we look
    assert stored_texts(store) == {ts: "final"}


def test_a_replayed_request_gets_401_and_changes_nothing(sim, store, prompt_ts, listener: LiveListener):
    event = {"type": "message", "user": ALICE, "text": "once", "ts": "1900000000.000100",
             "thread_ts": prompt_ts, "channel": CHANNEL, "channel_type": "channel"}
    body = _envelope(event, "Ev0REPLAY")
    timestamp = int(time.time())

    assert sim.send_signed(listener.url, body, SIGNING_SECRET, timestamp=timestamp)[0] == 200
    wait_for(lambda: "1900000000.000100" in stored_texts(store))
    status, answer = sim.send_signed(listener.url, body, SIGNING_SECRET, timestamp=timestamp)
    assert (status, answer) == (401, b'{"error": "replayed request"}')
    assert stored_texts(store) == {"1900000000.000100": "once"}


def test_a_forged_request_does_not_block_the_genuine_one(sim, store, prompt_ts, listener: LiveListener):
    from slack_sdk.signature import SignatureVerifier

    event = {"type": "message", "user": ALICE, "text": "genuine", "ts": "1900000000.000200",
             "thread_ts": prompt_ts, "channel": CHANNEL, "channel_type": "channel"}
    body = _envelope(event, "Ev0GENUINE")
    timestamp = int(time.time())
    signature = SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=str(timestamp), body=body)
    tampered = body.replace(b"genuine", b"forged!")
    headers = {"X-Slack-Signature": signature}

    assert sim.send_signed(listener.url, tampered, SIGNING_SECRET, timestamp=timestamp, headers=headers)[0] == 401
    assert sim.send_signed(listener.url, body, SIGNING_SECRET, timestamp=timestamp)[0] == 200
    wait_for(lambda: stored_texts(store).get("1900000000.000200") == "genuine")
