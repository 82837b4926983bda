"""The "Write my standup" form and `/standup` status: signed interactivity payloads to the real
Bolt app over HTTP, views.open / chat.update / chat.postEphemeral in the Slack simulator."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from slack_bolt import App

from standup_bot import stages
from standup_bot.form import prefill, submitted_answers
from standup_bot.listener_app import build_app, serve_http
from standup_bot.messages import build_form_report, build_prompt, format_answers
from standup_bot.model import Reply
from standup_bot.reports import reply_from_message
from standup_bot.settings import DEFAULT_QUESTIONS, Settings
from standup_bot.slack import make_client
from standup_bot.slack_simulator import SlackSimulator
from standup_bot.store import FormReport, Store
from tests.conftest import (
    ALICE,
    BOB,
    CAROL,
    CHANNEL,
    DAY,
    FAST_RETRY,
    SIGNING_SECRET,
    FakeClock,
    post_prompt,
    stop_server,
    wait_for,
)

FORM = "application/x-www-form-urlencoded"
_TRIGGERS = itertools.count(1)
QUESTIONS = DEFAULT_QUESTIONS  # yesterday, today, blockers


@dataclass
class FormListener:
    """The live listener, on the test clock, with its Bolt app at hand."""

    url: str
    app: App

    def drain(self) -> None:
        """Wait until every handler that runs after its ack has finished (ends the app's pool)."""
        self.app.listener_runner.listener_executor.shutdown(wait=True)  # type: ignore[attr-defined]


@pytest.fixture
def listener(settings: Settings, store: Store, sim: SlackSimulator, clock: FakeClock) -> Iterator[FormListener]:
    """Serve the Bolt app over HTTP with `/standup`'s "today" taken from the test clock."""
    client = make_client(settings.slack_bot_token, settings.slack_api_url, timeout=5, retry=FAST_RETRY)
    app = build_app(settings, store, client, now=clock.now)
    server = serve_http(app, store, "127.0.0.1", 0, threads=4)

    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.effective_port}/slack/events"
    sim.deliver_events_to(url, SIGNING_SECRET)
    yield FormListener(url, app)
    sim.deliver_events_to(None, SIGNING_SECRET)
    stop_server(server, thread)


@pytest.fixture
def prompt_ts(ctx: stages.Context, store: Store, listener: FormListener) -> str:
    return post_prompt(ctx, store)


# -- payloads ----------------------------------------------------------------------------
def _send(sim: SlackSimulator, listener: FormListener, payload: Any, *, raw: bytes | None = None,
          secret: str = SIGNING_SECRET) -> tuple[int, bytes]:
    body = raw if raw is not None else urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
    return sim.send_signed(listener.url, body, secret, headers={"Content-Type": FORM})


def _click(user: str, action_id: str, value: str, message_ts: str, thread_ts: str = "",
           message: dict | None = None) -> dict:
    container = {"type": "message", "message_ts": message_ts, "channel_id": CHANNEL, "is_ephemeral": False}
    if thread_ts:
        container["thread_ts"] = thread_ts
    return {
        "type": "block_actions", "api_app_id": "A0SIM", "token": "XXYYZZ",
        "user": {"id": user, "username": user.lower(), "team_id": "T0TEST"},
        "team": {"id": "T0TEST", "domain": "simulated"}, "container": container,
        "trigger_id": f"{next(_TRIGGERS)}.1700000000.abcdef",  # unique per click, as Slack's are
        "channel": {"id": CHANNEL, "name": "team-standup"},
        "message": message or {"type": "message", "ts": message_ts},
        "response_url": "https://hooks.example.com/actions/T0TEST/1/x",
        "actions": [{"action_id": action_id, "block_id": "b", "value": value, "type": "button",
                     "action_ts": "1700000000.000001"}],
    }


def _submission(user: str, view: dict, answers: list[str | None]) -> dict:
    values = {f"q{i}": {"answer": {"type": "plain_text_input", "value": a}} for i, a in enumerate(answers)}
    return {
        "type": "view_submission", "api_app_id": "A0SIM", "token": "XXYYZZ",
        "team": {"id": "T0TEST", "domain": "simulated"},
        "user": {"id": user, "username": user.lower(), "team_id": "T0TEST"},
        "trigger_id": f"{next(_TRIGGERS)}.1700000000.fedcba",
        "view": {**view, "state": {"values": values}}, "response_urls": [], "is_enterprise_install": False,
    }


def _open(sim: SlackSimulator, listener: FormListener, user: str, message_ts: str,
          action: str = "standup_open_form", thread_ts: str = "") -> dict:
    before = len(sim.views)
    assert _send(sim, listener, _click(user, action, DAY.isoformat(), message_ts, thread_ts))[0] == 200
    wait_for(lambda: len(sim.views) > before, what="views.open")
    return sim.views[-1]


def _submit(sim: SlackSimulator, listener: FormListener, user: str, view: dict,
            answers: list[str | None]) -> tuple[int, bytes]:
    return _send(sim, listener, _submission(user, view, answers))


def _bot_replies(sim: SlackSimulator, prompt_ts: str) -> list[dict]:
    return [m for m in sim.thread(CHANNEL, prompt_ts)[1:] if m.get("bot_id") == sim.bot_id]


def _live(store: Store) -> list[Reply]:
    return [s.reply for s in store.stored_replies(CHANNEL, DAY) if not s.deleted]


def _slash(sim: SlackSimulator, listener: FormListener, user: str, text: str) -> str:
    body = urllib.parse.urlencode({
        "token": "XXYYZZ", "team_id": "T0TEST", "channel_id": CHANNEL, "user_id": user,
        "command": "/standup", "text": text, "response_url": "https://hooks.example.com/x",
        "trigger_id": f"{next(_TRIGGERS)}.2.3",
    }).encode()
    status, answer = sim.send_signed(listener.url, body, SIGNING_SECRET, headers={"Content-Type": FORM})
    assert status == 200
    decoded = answer.decode()  # Bolt answers a bare ack(text) as text/plain
    return str(json.loads(decoded)["text"]) if decoded.startswith("{") else decoded


# -- the prompt's button ---------------------------------------------------------------------
def test_the_prompt_carries_a_write_my_standup_button_for_its_date():
    text, blocks = build_prompt(QUESTIONS, DAY, dt.time(12), "Europe/Berlin")
    buttons = [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert [(b["action_id"], b["value"], b["text"]["text"]) for b in buttons] == [
        ("standup_open_form", "2026-11-26", "Write my standup")
    ]
    assert "reply in this thread, or use the \"Write my standup\" button" in text


def test_the_button_opens_the_form_with_what_you_planned_last_time_in_the_first_field(
    sim, store, listener, prompt_ts
):
    yesterday = DAY - dt.timedelta(days=1)
    store.save_prompt(CHANNEL, yesterday, "1764000000.000100")
    store.record_reply(CHANNEL, yesterday, Reply(
        "1764000100.000200", ALICE, "*Yesterday:* reviews\n*Today:* write the parser &amp; its tests\n*Blockers:* none"))
    store.record_reply(CHANNEL, yesterday, Reply("1764000200.000300", BOB, "*Today:* not alice's plan"))

    view = _open(sim, listener, ALICE, prompt_ts)

    call = sim.calls("views.open")[-1]
    assert call["trigger_id"].endswith(".1700000000.abcdef")
    assert view["callback_id"] == "standup_form"
    assert json.loads(view["private_metadata"]) == {"date": "2026-11-26", "channel": CHANNEL}
    blocks = view["blocks"]
    assert [(b["block_id"], b["label"]["text"], b["optional"]) for b in blocks] == [
        ("q0", QUESTIONS[0], False), ("q1", QUESTIONS[1], False), ("q2", QUESTIONS[2], True)
    ]
    assert all(b["element"]["action_id"] == "answer" and b["element"]["multiline"] for b in blocks)
    assert blocks[0]["element"]["initial_value"] == "write the parser & its tests"
    assert blocks[0]["hint"]["text"].startswith("Last time (Wed 25 Nov) you said you would do this")
    assert "initial_value" not in blocks[1]["element"] and "initial_value" not in blocks[2]["element"]

    # Bob's last plan is his own, and carol has none: nothing to prefill.
    assert _open(sim, listener, BOB, prompt_ts)["blocks"][0]["element"]["initial_value"] == "not alice's plan"
    assert "initial_value" not in _open(sim, listener, CAROL, prompt_ts)["blocks"][0]["element"]


# -- submitting -----------------------------------------------------------------------------
def test_a_submission_posts_one_reply_naming_the_member_and_counts_as_their_report(
    sim, store, ctx, smtp, listener, prompt_ts
):
    view = _open(sim, listener, ALICE, prompt_ts)
    status, body = _submit(sim, listener, ALICE, view, ["fixed the login bug", "ship 2.0 & <celebrate>", None])
    assert (status, body) == (200, b"")  # an empty ack closes the modal

    reply = wait_for(lambda: _bot_replies(sim, prompt_ts), what="the form report in the thread")
    assert len(reply) == 1
    message = reply[0]
    assert message["text"] == (
        "*Standup from <@UALICE>*\n*What did you do yesterday?*\nfixed the login bug\n\n"
        "*What will you do today?*\nship 2.0 &amp; &lt;celebrate&gt;"
    )
    assert message["metadata"] == {"event_type": "standup_report", "event_payload": {
        "user": ALICE, "date": "2026-11-26", "answers": ["fixed the login bug", "ship 2.0 & <celebrate>", ""]}}
    edit = [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [(e["action_id"], e["value"]) for e in edit] == [("standup_edit_form", "2026-11-26")]

    wait_for(lambda: _live(store), what="the report to be recorded")
    [recorded] = _live(store)
    assert (recorded.ts, recorded.user) == (message["ts"], ALICE)
    assert recorded.text == message["text"].split("\n", 1)[1]

    stages.remind(ctx, DAY)
    assert sim.dms_to(ALICE) == [] and len(sim.dms_to(BOB)) == 1
    stages.digest(ctx, DAY)
    text = smtp.wait_for(1)[0].message.get_body(("plain",)).get_content()
    assert "fixed the login bug" in text
    assert "Alice" not in text.split("Not reported:")[1]


def test_submitting_again_edits_the_one_reply_and_replaces_the_report(sim, store, listener, prompt_ts):
    first = _open(sim, listener, ALICE, prompt_ts)
    _submit(sim, listener, ALICE, first, ["first draft", "", ""])
    [posted] = wait_for(lambda: _bot_replies(sim, prompt_ts), what="the first report")
    wait_for(lambda: store.form_report(CHANNEL, DAY, ALICE), what="the form report to be recorded")

    # Edit on the reply reopens the form with everything as sent.
    again = _open(sim, listener, ALICE, posted["ts"], action="standup_edit_form", thread_ts=prompt_ts)
    assert [b["element"].get("initial_value") for b in again["blocks"]] == ["first draft", None, None]
    assert again["submit"]["text"] == "Update"
    assert _submit(sim, listener, ALICE, again, ["final words", "more", "waiting for ops"]) == (200, b"")

    wait_for(lambda: "final words" in _bot_replies(sim, prompt_ts)[0]["text"], what="the reply to be edited")
    assert len(sim.calls("chat.update")) == 1
    replies = _bot_replies(sim, prompt_ts)
    assert [m["ts"] for m in replies] == [posted["ts"]]
    assert "final words" in replies[0]["text"] and "first draft" not in replies[0]["text"]
    assert replies[0]["metadata"]["event_payload"]["answers"] == ["final words", "more", "waiting for ops"]
    assert len(sim.calls("chat.postMessage")) == 2  # the prompt and the first report, nothing more
    wait_for(lambda: "final words" in _live(store)[0].text, what="the report to be replaced")
    [recorded] = _live(store)
    assert recorded.ts == posted["ts"] and recorded.edited
    assert store.form_report(CHANNEL, DAY, ALICE) == FormReport(
        DAY, ALICE, posted["ts"], ("final words", "more", "waiting for ops"))


def test_a_resubmission_edits_the_reply_in_the_thread_even_when_the_store_lost_it(sim, store, listener, prompt_ts):
    view = _open(sim, listener, ALICE, prompt_ts)
    _submit(sim, listener, ALICE, view, ["one", "", ""])
    [posted] = wait_for(lambda: _bot_replies(sim, prompt_ts), what="the first report")
    wait_for(lambda: store.form_report(CHANNEL, DAY, ALICE), what="the form report to be recorded")
    with store.transaction() as conn:  # the listener crashed before recording it, say
        conn.execute("DELETE FROM form_reports")
        conn.execute("DELETE FROM replies")

    _submit(sim, listener, ALICE, _open(sim, listener, ALICE, prompt_ts), ["two", "", ""])

    wait_for(lambda: store.form_report(CHANNEL, DAY, ALICE), what="the second report to be recorded")
    assert [m["ts"] for m in _bot_replies(sim, prompt_ts)] == [posted["ts"]]
    assert "two" in _bot_replies(sim, prompt_ts)[0]["text"]


def test_edit_pressed_by_someone_else_is_refused_ephemerally_and_opens_nothing(sim, store, listener, prompt_ts):
    _submit(sim, listener, ALICE, _open(sim, listener, ALICE, prompt_ts), ["mine", "", ""])
    [posted] = wait_for(lambda: _bot_replies(sim, prompt_ts), what="the report")
    wait_for(lambda: store.form_report(CHANNEL, DAY, ALICE), what="the form report to be recorded")
    views = len(sim.views)

    click = _click(BOB, "standup_edit_form", DAY.isoformat(), posted["ts"], prompt_ts)
    assert _send(sim, listener, click) == (200, b"")

    [told] = wait_for(lambda: sim.ephemerals, what="the refusal")
    assert (told["user"], told["text"], told["thread_ts"]) == (BOB, "Only <@UALICE> can edit this report.", prompt_ts)
    listener.drain()
    assert len(sim.views) == views and sim.calls("views.open") == sim.calls("views.open")[:views]
    assert sim.calls("chat.update") == []


@pytest.mark.parametrize("answers", [[None, None, None], ["", "  ", "\n"]], ids=["none", "blank"])
def test_an_empty_submission_keeps_the_modal_open_with_an_error(sim, store, listener, prompt_ts, answers):
    status, body = _submit(sim, listener, ALICE, _open(sim, listener, ALICE, prompt_ts), answers)

    assert status == 200
    assert json.loads(body) == {"response_action": "errors", "errors": {"q0": "Write at least one answer."}}
    listener.drain()
    assert len(sim.calls("chat.postMessage")) == 1  # the prompt
    assert _live(store) == [] and store.form_report(CHANNEL, DAY, ALICE) is None


def test_a_form_report_the_listener_posted_but_never_recorded_is_read_back_from_the_thread(sim, store, ctx, smtp):
    # The listener posted the reply, then died before writing it down (or its database was
    # restored from an older backup): no listener now, nothing in the store.
    stages.prompt(ctx, DAY)
    prompt_ts = store.prompt_ts(CHANNEL, DAY)
    text, blocks, metadata = build_form_report(ALICE, QUESTIONS, ["wrote the importer", "test it", ""], DAY)
    ctx.slack.post_message(CHANNEL, text, blocks=blocks, thread_ts=prompt_ts, metadata=metadata)
    assert store.stored_replies(CHANNEL, DAY) == []

    stages.remind(ctx, DAY)
    assert sim.dms_to(ALICE) == [] and len(sim.dms_to(BOB)) == 1
    assert all(call.get("include_all_metadata") for call in sim.calls("conversations.replies"))
    stages.digest(ctx, DAY)
    mail = smtp.wait_for(1)[0].message.get_body(("plain",)).get_content()
    assert "wrote the importer" in mail
    assert "Alice" not in mail.split("Not reported:")[1]
    assert [r.user for r in _live(store)] == [ALICE]


# -- only form reports count among bot messages ------------------------------------------------
_THREAD = "1764147600.000100"
_BOT_POST = {"type": "message", "ts": "1764147700.000200", "thread_ts": _THREAD, "user": "UBOT", "bot_id": "BBOT",
             "text": "*Standup from <@UALICE>*\n*What did you do yesterday?*\nthings"}
_REPORT = {"event_type": "standup_report", "event_payload": {"user": ALICE, "date": "2026-11-26", "answers": ["x"]}}


@pytest.mark.parametrize(
    ("message", "bot_id", "expected"),
    [
        ({**_BOT_POST, "metadata": _REPORT}, "", Reply(_BOT_POST["ts"], ALICE, "*What did you do yesterday?*\nthings")),
        ({**_BOT_POST, "metadata": _REPORT}, "BBOT", Reply(_BOT_POST["ts"], ALICE, "*What did you do yesterday?*\nthings")),
        ({**_BOT_POST, "metadata": _REPORT, "bot_id": "BOTHER"}, "BBOT", None),  # another app's imitation
        (_BOT_POST, "", None),  # no metadata (read without include_all_metadata)
        ({**_BOT_POST, "metadata": {"event_type": "standup_prompt", "event_payload": {"date": "2026-11-26"}}}, "", None),
        ({**_BOT_POST, "metadata": {**_REPORT, "event_payload": {"user": "<@UALICE>"}}}, "", None),
        ({**_BOT_POST, "metadata": {**_REPORT, "event_payload": "UALICE"}}, "", None),
        ({**_BOT_POST, "metadata": _REPORT, "subtype": "channel_join"}, "", None),
    ],
    ids=["report", "our-bot", "other-bot", "no-metadata", "prompt-metadata", "bad-user", "bad-payload", "subtype"],
)
def test_a_bot_message_is_a_report_only_with_standup_report_metadata(message, bot_id, expected):
    assert reply_from_message(message, _THREAD, bot_id=bot_id) == expected


# -- pure helpers ---------------------------------------------------------------------------
def test_the_formatted_answers_split_back_into_the_questions():
    from standup_bot.answers import split_answers

    text = format_answers(QUESTIONS, ["did a\n\nand more", "", "blocked by <ops> & co"])
    assert split_answers(text, QUESTIONS).parts == ("did a\nand more", None, "blocked by &lt;ops&gt; &amp; co")


def test_prefill_prefers_this_dates_form_report_then_the_last_form_answers():
    current = FormReport(DAY, ALICE, "1.1", ("a", "b"))
    assert prefill(QUESTIONS, current, None, None)[0] == ["a", "b", ""]
    yesterday = DAY - dt.timedelta(days=1)
    previous = (yesterday, [Reply("1.2", ALICE, "*What will you do today?*\nparsed")])
    form = FormReport(yesterday, ALICE, "1.2", ("x", "typed <exactly>", ""))
    assert prefill(QUESTIONS, None, previous, form)[0] == ["typed <exactly>"]
    assert prefill(QUESTIONS, None, previous, None)[0] == ["parsed"]
    assert prefill(QUESTIONS, None, (yesterday, [Reply("1.2", ALICE, "just words")]), None) == ([], "")
    assert prefill(("Anything?",), None, previous, None) == ([], "")


def test_submitted_answers_tolerate_missing_blocks_and_values():
    view = {"state": {"values": {"q0": {"answer": {"value": " a "}}, "q1": {"answer": {}}, "q2": "junk"}}}
    assert submitted_answers(view, 4) == ("a", "", "", "")
    assert submitted_answers({"state": None}, 2) == ("", "")


# -- /standup --------------------------------------------------------------------------------
def test_slash_standup_says_what_is_expected_today_and_whether_your_report_is_in(
    sim, store, clock, listener, prompt_ts
):
    answer = _slash(sim, listener, ALICE, "")
    assert answer.startswith(f"*Standup in <#{CHANNEL}> today, Thursday 2026-11-26*\n"
                             "Answer these by *12:00 (Europe/Berlin)*, when the digest goes out:\n"
                             "1. What did you do yesterday?\n2. What will you do today?\n3. Anything blocking you?\n")
    assert "Your report for today is *not recorded yet*" in answer
    assert "`/standup away YYYY-MM-DD [YYYY-MM-DD]`" in answer and "`/standup mine [N]`" in answer
    assert _slash(sim, listener, ALICE, "help") == answer

    _submit(sim, listener, ALICE, _open(sim, listener, ALICE, prompt_ts), ["done", "", ""])
    wait_for(lambda: store.form_report(CHANNEL, DAY, ALICE), what="the report")
    assert "Your report for today is *recorded* :white_check_mark: (sent with the form)." in _slash(
        sim, listener, ALICE, "status")
    ts = sim.user_posts(BOB, CHANNEL, "typed in the thread", thread_ts=prompt_ts)
    wait_for(lambda: any(r.ts == ts for r in _live(store)), what="bob's reply")
    assert "*recorded* :white_check_mark: (1 message(s) in the thread)" in _slash(sim, listener, BOB, "STATUS")

    clock.advance(days=2)  # Saturday
    weekend = _slash(sim, listener, ALICE, "status")
    assert weekend.startswith(f"*No standup in <#{CHANNEL}> today*: 2026-11-28 is a Saturday, not one of WORKDAYS.")
    assert "the prompt is not posted yet (none is planned)" in weekend


def test_slash_standup_mine_lists_your_last_reports_newest_first(sim, store, listener):
    for day in range(1, 10):
        date = dt.date(2026, 11, day)
        store.record_reply(CHANNEL, date, Reply(f"17640{day:02d}000.000100", ALICE, f"day {day}: " + "x" * 400))
        store.record_reply(CHANNEL, date, Reply(f"17640{day:02d}000.000200", BOB, f"bob {day}"))
    store.record_reply(CHANNEL, dt.date(2026, 11, 9), Reply("1764009000.000300", ALICE, "and <@UBOB> too"))

    two = _slash(sim, listener, ALICE, "mine 2").split("\n")
    assert two[0] == f"Your last 2 report(s) in <#{CHANNEL}>:"
    assert two[1].startswith("• *Mon 2026-11-09*: day 9: xxx") and two[2].startswith("• *Sun 2026-11-08*: day 8: x")
    assert all(line.endswith("…") and len(line.split("*: ", 1)[1]) <= 300 for line in two[1:])
    assert len(_slash(sim, listener, ALICE, "mine").split("\n")) == 1 + 7
    capped = _slash(sim, listener, ALICE, "mine 100").split("\n")
    assert capped[0] == f"Your last 9 report(s) in <#{CHANNEL}> (I show at most 30):" and len(capped) == 10
    assert _slash(sim, listener, BOB, "mine 1") == f"Your last 1 report(s) in <#{CHANNEL}>:\n• *Mon 2026-11-09*: bob 9"
    assert _slash(sim, listener, CAROL, "mine") == f"I have no reports of yours from <#{CHANNEL}> yet."
    assert _slash(sim, listener, ALICE, "mine seven").startswith("`seven` is not a number of reports")


def test_slash_standup_away_back_and_skip_still_work(sim, store, listener):
    assert _slash(sim, listener, BOB, "skip") == (
        "OK, you skip today's standup (2026-11-26): no reminder, and the digest shows you as away.")
    assert store.away_on(CHANNEL, DAY) == {BOB}
    assert "You are marked away today" in _slash(sim, listener, BOB, "")
    assert _slash(sim, listener, BOB, "back") == "Welcome back: reminders are on again from today."
    assert _slash(sim, listener, BOB, "holiday").startswith("I don't know `holiday`.")


# -- bad payloads ------------------------------------------------------------------------------
def _garbage(prompt_ts: str) -> list[tuple[str, Any, bytes | None]]:
    good_view = {"id": "V1", "type": "modal", "callback_id": "standup_form",
                 "private_metadata": json.dumps({"date": "2026-11-26", "channel": CHANNEL})}
    click = _click(ALICE, "standup_open_form", "2026-11-26", prompt_ts)
    return [
        ("not json", None, b"payload=%7Bnot+json"),
        ("a list", None, b"payload=%5B1%2C2%5D"),
        ("null", None, b"payload=null"),
        ("empty", None, b"payload="),
        ("no payload", None, b"foo=bar"),
        ("{}", {}, None),
        ("no actions", {**click, "actions": []}, None),
        ("actions not a list", {**click, "actions": "standup_open_form"}, None),
        ("unknown action", _click(ALICE, "something_else", "x", prompt_ts), None),
        ("bad date", _click(ALICE, "standup_open_form", "yesterday", prompt_ts), None),
        ("no prompt that date", _click(ALICE, "standup_open_form", "1999-01-01", "1.1"), None),
        ("no trigger", {**click, "trigger_id": None}, None),
        ("no user", {**click, "user": "UALICE"}, None),
        ("other channel", {**click, "channel": {"id": "C0OTHER"}, "container": {"channel_id": "C0OTHER"}}, None),
        ("edit without message", {**_click(ALICE, "standup_edit_form", "2026-11-26", ""), "message": None}, None),
        ("view not a dict", {"type": "view_submission", "user": {"id": ALICE}, "view": "standup_form"}, None),
        ("view of another app", _submission(ALICE, {**good_view, "callback_id": "other"}, ["a"]), None),
        ("bad private_metadata", _submission(ALICE, {**good_view, "private_metadata": "{"}, ["a"]), None),
        ("other channel in view", _submission(
            ALICE, {**good_view, "private_metadata": json.dumps({"date": "2026-11-26", "channel": "C0X"})}, ["a"]), None),
        ("no state", {**_submission(ALICE, good_view, []), "view": good_view}, None),
        ("no user in submission", {**_submission(ALICE, good_view, ["a"]), "user": None}, None),
    ]


def test_interactivity_payloads_with_missing_or_garbage_fields_are_acked_and_change_nothing(
    sim, store, listener, prompt_ts
):
    # A ("no prompt that date") click on a date whose prompt is gone tells the member so, and
    # nothing else; every other one is acknowledged and dropped.
    for name, payload, raw in _garbage(prompt_ts):
        status, body = _send(sim, listener, payload, raw=raw)
        assert status == 200, name
        if body:
            assert json.loads(body)["response_action"] == "errors", name
    listener.drain()

    assert [e["text"] for e in sim.ephemerals] == [
        "There is no standup thread for 1999-01-01 any more, so there is nothing to answer."]
    for method in ("views.open", "chat.update"):
        assert sim.calls(method) == [], method
    assert len(sim.calls("chat.postMessage")) == 1  # the prompt
    assert _live(store) == [] and store.form_report(CHANNEL, DAY, ALICE) is None


def test_an_unsigned_interactivity_payload_is_refused(sim, listener, prompt_ts):
    for raw in (None, b"payload=%7Bnot+json"):
        status, _ = _send(sim, listener, _click(ALICE, "standup_open_form", "2026-11-26", prompt_ts), raw=raw,
                          secret="not-the-secret")
        assert status == 401
    listener.drain()
    assert sim.views == []
