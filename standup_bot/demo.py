"""`standup.py demo`: a whole standup day against the local Slack simulator and mail sink.

No credentials, no network: the simulator plays Slack (and delivers signed events to a
real listener), a local SMTP server receives the digest, and the day's stages run one
after the other instead of waiting for the clock. The digest is written to demo-output/.
"""

from __future__ import annotations

import datetime as dt
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from . import stages
from .listener_app import build_app, serve_http
from .mail_sink import MailSink
from .model import Reply
from .settings import PROJECT_DIR, Settings
from .slack import SlackApi, make_client
from .slack_simulator import SlackSimulator
from .store import Store

CHANNEL = "C0DEMOSTANDUP"
SIGNING_SECRET = "demo-signing-secret"
TOKEN = "xoxb-demo-token"
TEAM = {
    "U0ALICE": ("alice", "Alice Adams"),
    "U0BOB": ("bob", "Bob Brown"),
    "U0CAROL": ("carol", "Carol Chen"),
    "U0DAVE": ("dave", "Dave Diaz"),
    "U0ERIN": ("erin", "Erin Evans"),
    "U0LENA": ("lena", "Lena Lopez"),
}
MEMBERS = ("U0ALICE", "U0BOB", "U0DAVE", "U0ERIN")  # Carol is a guest: not in MEMBERS
LEAD = "U0LENA"  # the team lead: gets blockers by DM (BLOCKER_CONTACTS), does not report


def run_demo(*, say: Callable[[str], None], verbose: bool = False, output_dir: Path | None = None) -> int:
    """Run the demo day and return 0; the digest lands in `output_dir` (default demo-output/)."""
    output_dir = output_dir or PROJECT_DIR / "demo-output"
    data_dir = output_dir / "data"
    shutil.rmtree(data_dir, ignore_errors=True)  # each demo starts from a clean day
    output_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    started = time.monotonic()
    with SlackSimulator(token=TOKEN) as sim, MailSink() as sink:
        for user_id, (name, real_name) in TEAM.items():
            sim.add_user(user_id, name, display_name=real_name.split()[0], real_name=real_name)
        sim.add_channel(CHANNEL, "team-standup", list(TEAM))
        settings = Settings(
            slack_bot_token=TOKEN, slack_signing_secret=SIGNING_SECRET, slack_api_url=sim.base_url,
            standup_channel=CHANNEL, members=MEMBERS, timezone="UTC", smtp_host=sink.host,
            smtp_port=sink.port, smtp_security="none", mail_from="standup-bot@demo.example",
            digest_recipients=("manager@demo.example",), data_dir=data_dir, blocker_contacts=(LEAD,),
        )
        store = Store.open(data_dir)
        client = make_client(TOKEN, sim.base_url, timeout=5)
        server = serve_http(build_app(settings, store, client), store, "127.0.0.1", 0, threads=4)
        threading.Thread(target=server.run, name="demo-listener", daemon=True).start()
        sim.deliver_events_to(f"http://127.0.0.1:{server.effective_port}/slack/events", SIGNING_SECRET)
        ctx = stages.Context(
            settings, store, SlackApi(client), now=lambda: dt.datetime.now(dt.UTC),
            sleep=lambda seconds: None, say=lambda line: say(f"   bot: {line}"),
        )
        try:
            date = ctx.today()
            _play_day(ctx, sim, store, date, say)
            [mail] = sink.wait_for(1, timeout=10)
        finally:
            server.close()
            store.close()
    html_path, text_path = output_dir / f"digest-{date}.html", output_dir / f"digest-{date}.txt"
    html_path.write_text(mail.message.get_body(("html",)).get_content(), encoding="utf-8")
    text_path.write_text(mail.message.get_body(("plain",)).get_content(), encoding="utf-8")
    say("")
    say(f"The digest email \"{mail.message['Subject']}\" was sent to {', '.join(mail.rcpt_tos)}.")
    say(f"  HTML: {html_path}")
    say(f"  text: {text_path}")
    say(f"Demo finished in {time.monotonic() - started:.1f} s. Next: ./run_tests.sh, then README's 'Install'.")
    return 0


def _play_day(
    ctx: stages.Context, sim: SlackSimulator, store: Store, date: dt.date, say: Callable[[str], None]
) -> None:
    say(f"Demo standup day {date} in #team-standup (a local Slack simulator; no network).")
    _seed_previous_day(store, date - dt.timedelta(days=1))
    say("0. the store already holds yesterday's reports of alice and bob (for 'Planned last time')")
    say("1. 10:00 the bot posts the prompt")
    stages.prompt(ctx, date)
    prompt_ts = store.prompt_ts(CHANNEL, date)
    assert prompt_ts is not None

    say("2. the team replies in the thread; the listener records each reply and adds a ✅")
    sim.user_posts("U0ALICE", CHANNEL, (
        "*Yesterday:* finished the <https://example.com/pr/42|login PR> &amp; reviewed <@U0BOB>'s draft\n"
        "*Today:* release notes\n*Blockers:* none"
    ), thread_ts=prompt_ts)
    bob = sim.user_posts("U0BOB", CHANNEL, "Yesterday: fixed the flaky tests\nToday: dashbaord", thread_ts=prompt_ts)
    say("   bob spots a typo and edits his reply")
    sim.user_edits(CHANNEL, bob, "Yesterday: fixed the flaky tests\nToday: dashboard\nBlockers: waiting on <#C0DEMOSTANDUP|team-standup> for API keys")
    say("   carol (a guest, not in MEMBERS) clicks 'Write my standup' and fills in the form instead")
    sim.user_clicks("U0CAROL", CHANNEL, prompt_ts, "standup_open_form", date.isoformat())
    _wait(lambda: bool(sim.views))
    answers = ["paired with Alice on the release <3", "release docs", "none"]
    sim.user_submits_view("U0CAROL", sim.views[-1], {
        f"q{i}": {"answer": {"type": "plain_text_input", "value": answer}} for i, answer in enumerate(answers)
    })
    _wait(lambda: len(store.stored_replies(CHANNEL, date)) >= 3)
    form_reply = [m for m in sim.thread(CHANNEL, prompt_ts)[1:] if m.get("bot_id")]
    if form_reply:
        say(f"   the bot posts it in the thread: {_indented(form_reply[-1]['text'])}")
    say(f"   the listener recorded {len(store.stored_replies(CHANNEL, date))} replies")
    say("   bob's reply now names a blocker: the listener escalates it to the lead (BLOCKER_CONTACTS)")
    _wait(lambda: bool(sim.dms_to(LEAD)))
    for dm in sim.dms_to(LEAD):
        say(f"   DM to {TEAM[LEAD][1]}: {_indented(dm['text'])}")

    say("3. the listener goes down; erin replies meanwhile (the bot reads the thread back, so she still counts)")
    sim.deliver_events_to(None, SIGNING_SECRET)
    sim.user_posts("U0ERIN", CHANNEL, (
        "Yesterday: on-call\nToday: postmortem write-up\nBlockers: need <@U0ALICE>'s review of the runbook"
    ), thread_ts=prompt_ts)

    say("4. 11:30 the bot reminds whoever hasn't answered (dave never does)")
    stages.remind(ctx, date)
    for user in MEMBERS:
        for dm in sim.dms_to(user):
            say(f"   DM to {TEAM[user][1]}: {dm['text']}")
    say("   reading the thread back, the bot also finds erin's blocker and escalates it")
    for dm in sim.dms_to(LEAD)[1:]:
        say(f"   DM to {TEAM[LEAD][1]}: {_indented(dm['text'])}")

    say("5. 12:00 the bot emails the digest")
    stages.digest(ctx, date)


def _seed_previous_day(store: Store, previous: dt.date) -> None:
    """Store yesterday's prompt and two reports, as if the bot had run then too."""
    base = dt.datetime.combine(previous, dt.time(10, 0), tzinfo=dt.UTC).timestamp()
    store.save_prompt(CHANNEL, previous, f"{base:.6f}")
    store.record_reply(CHANNEL, previous, Reply(f"{base + 600:.6f}", "U0ALICE", (
        "*Yesterday:* login page\n*Today:* finish the login PR and review bob's draft\n*Blockers:* none"
    )))
    store.record_reply(CHANNEL, previous, Reply(f"{base + 900:.6f}", "U0BOB", (
        "Yesterday: CI cleanup\nToday: fix the flaky tests\nBlockers: waiting on ops for API keys"
    )))


def _indented(text: str) -> str:
    return "\n      ".join(text.splitlines())


def _wait(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
