"""The SQLite store: permissions, migrations, refusals, claims, replies, locks and caches.

These tests open the store on their own temporary DATA_DIR (no simulator, no SMTP sink).
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from standup_bot import store as store_module
from standup_bot.errors import StoreError
from standup_bot.model import Reply, StoredReply
from standup_bot.store import BUSY_TIMEOUT_MS, MIGRATIONS, SCHEMA_VERSION, Claim, Store

CHANNEL, OTHER_CHANNEL = "C0STANDUP", "C0OTHER"
ALICE, BOB, CAROL = "UALICE", "UBOB", "UCAROL"
DAY = dt.date(2026, 11, 26)
PROMPT_TS = "1764147600.000100"


def _reply(ts: str, user: str = ALICE, text: str = "did things", edited: bool = False) -> Reply:
    return Reply(ts=ts, user=user, text=text, edited=edited)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def store(data_dir: Path) -> Iterator[Store]:
    opened = Store.open(data_dir)
    yield opened
    opened.close()


def _live(store: Store, channel: str = CHANNEL, date: dt.date = DAY) -> dict[str, StoredReply]:
    return {s.reply.ts: s for s in store.stored_replies(channel, date)}


# -- opening, permissions, migrations --------------------------------------------------------


def test_data_dir_is_private_and_the_database_is_readable_only_by_its_owner(data_dir):
    # Under umask 0 nothing masks the modes: they must come from the store itself.
    previous_umask = os.umask(0)
    try:
        store = Store.open(data_dir)
        store.save_prompt(CHANNEL, DAY, PROMPT_TS)
    finally:
        os.umask(previous_umask)

    assert _mode(data_dir) == 0o700
    assert _mode(data_dir / "standup.db") == 0o600
    for extra in ("standup.db-wal", "standup.db-shm"):
        if (data_dir / extra).exists():
            assert _mode(data_dir / extra) == 0o600, extra
    store.close()


def test_the_database_uses_wal_and_a_busy_timeout(store, data_dir):
    with store.transaction() as conn:
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == BUSY_TIMEOUT_MS
    # WAL is a property of the file, so a fresh connection sees it too.
    with sqlite3.connect(data_dir / "standup.db") as other:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    other.close()


def test_migrations_are_recorded_by_name_and_user_version_matches(store, data_dir):
    with sqlite3.connect(data_dir / "standup.db") as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM migrations ORDER BY name")]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    conn.close()

    assert names == [name for name, _ in MIGRATIONS]
    assert version == SCHEMA_VERSION == len(MIGRATIONS)


def test_reopening_the_store_is_idempotent_and_keeps_the_data(store, data_dir):
    store.save_prompt(CHANNEL, DAY, PROMPT_TS)
    store.close()

    for _ in range(2):
        again = Store.open(data_dir)
        assert again.prompt_ts(CHANNEL, DAY) == PROMPT_TS
        again.close()
    with sqlite3.connect(data_dir / "standup.db") as conn:
        count = conn.execute("SELECT count(*) FROM migrations").fetchone()[0]
    conn.close()
    assert count == len(MIGRATIONS)


def _open_with_migrations(data_dir: Path, migrations: tuple[tuple[str, str], ...], monkeypatch) -> None:
    """Create the database as an earlier build with these migrations would have."""
    with monkeypatch.context() as patch:
        patch.setattr(store_module, "MIGRATIONS", migrations)
        patch.setattr(store_module, "SCHEMA_VERSION", len(migrations))
        earlier = Store.open(data_dir)
        earlier.save_prompt(CHANNEL, DAY, PROMPT_TS)
        earlier.close()


def _every_table_works(store: Store) -> None:
    store.record_reply(CHANNEL, DAY, _reply("1764147700.000200"), event_id="Ev1")
    store.claim_stage(CHANNEL, DAY, "digest", "host:1")
    store.claim_reminder(CHANNEL, DAY, BOB)
    store.record_delivery(CHANNEL, DAY, "digest", ["lead@example.com"])
    store.cache_user(ALICE, "Alice", True, "UTC")
    assert store.delivered(CHANNEL, DAY, "digest") == {"lead@example.com"}


def test_a_database_from_the_first_release_is_upgraded_in_place(data_dir):
    data_dir.mkdir(mode=0o700)
    first_release = Path(__file__).parent / "data" / "standup_db_first_release.sql"
    conn = sqlite3.connect(data_dir / "standup.db")
    conn.executescript(first_release.read_text())
    conn.close()

    upgraded = Store.open(data_dir)

    assert upgraded.prompt_ts(CHANNEL, DAY) == PROMPT_TS
    _every_table_works(upgraded)
    with upgraded.transaction() as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM migrations ORDER BY name")]
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert names == [name for name, _ in MIGRATIONS]
    upgraded.close()


def test_the_deliveries_migration_also_applies_to_a_database_that_already_has_its_table(
    data_dir, monkeypatch
):
    # Some early builds created the deliveries table inside 0001; 0002 must not fail on it.
    everything_in_one = (("0001_initial", MIGRATIONS[0][1] + MIGRATIONS[1][1]),)
    _open_with_migrations(data_dir, everything_in_one, monkeypatch)

    upgraded = Store.open(data_dir)

    _every_table_works(upgraded)
    upgraded.close()


@pytest.mark.parametrize("journal_mode", ["delete", "wal"])
def test_a_database_from_a_newer_version_is_refused_and_left_untouched(data_dir, journal_mode):
    data_dir.mkdir(mode=0o700)
    db = data_dir / "standup.db"
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA journal_mode = {journal_mode}")
    conn.execute("CREATE TABLE from_the_future (x)")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    before = db.read_bytes()

    with pytest.raises(StoreError, match="newer") as raised:
        Store.open(data_dir)

    assert "\n" not in str(raised.value)
    assert db.read_bytes() == before


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(bytes(range(256)) * 32, id="random-bytes"),
        pytest.param(b"DATA_DIR notes\nthis is not a database\n" * 40, id="text-file"),
    ],
)
def test_a_corrupt_database_is_refused_and_left_byte_for_byte_untouched(data_dir, content):
    data_dir.mkdir(mode=0o700)
    db = data_dir / "standup.db"
    db.write_bytes(content)

    with pytest.raises(StoreError, match="cannot be used") as raised:
        Store.open(data_dir)

    assert "\n" not in str(raised.value)
    assert db.read_bytes() == content
    assert sorted(p.name for p in data_dir.iterdir()) == ["standup.db"]


# -- claiming stages --------------------------------------------------------------------------


def test_the_first_claim_of_a_stage_wins(store):
    claim, previous = store.claim_stage(CHANNEL, DAY, "prompt", "host:1")

    assert claim is Claim.CLAIMED
    assert previous is None
    run = store.stage_run(CHANNEL, DAY, "prompt")
    assert run is not None and run.status == "running" and run.owner == "host:1"


def test_a_finished_stage_is_already_done_for_a_second_claim(store):
    store.claim_stage(CHANNEL, DAY, "prompt", "host:1")
    store.finish_stage(CHANNEL, DAY, "prompt", "host:1")

    claim, previous = store.claim_stage(CHANNEL, DAY, "prompt", "host:2")

    assert claim is Claim.ALREADY_DONE
    assert previous is not None and previous.status == "done" and previous.owner == "host:1"


def test_a_running_stage_whose_owner_is_alive_is_in_progress(store):
    store.claim_stage(CHANNEL, DAY, "remind", "host:1")

    claim, previous = store.claim_stage(CHANNEL, DAY, "remind", "host:2", owner_alive=lambda o: True)

    assert claim is Claim.IN_PROGRESS
    assert previous is not None and previous.owner == "host:1"
    assert store.stage_run(CHANNEL, DAY, "remind").owner == "host:1"


def test_a_failed_stage_can_be_claimed_again(store):
    store.claim_stage(CHANNEL, DAY, "digest", "host:1")
    store.finish_stage(CHANNEL, DAY, "digest", "host:1", error="mail server refused")

    claim, previous = store.claim_stage(CHANNEL, DAY, "digest", "host:2")

    assert claim is Claim.CLAIMED
    assert previous is not None and previous.status == "failed"
    assert previous.last_error == "mail server refused"
    run = store.stage_run(CHANNEL, DAY, "digest")
    assert (run.status, run.owner, run.attempts) == ("running", "host:2", 2)


def test_a_running_stage_whose_owner_died_can_be_claimed_again(store):
    store.claim_stage(CHANNEL, DAY, "prompt", "host:1")

    claim, previous = store.claim_stage(
        CHANNEL, DAY, "prompt", "host:2", owner_alive=lambda owner: owner != "host:1"
    )

    assert claim is Claim.CLAIMED
    assert previous is not None and previous.status == "running"
    assert store.stage_run(CHANNEL, DAY, "prompt").owner == "host:2"


def test_force_claims_a_stage_that_is_already_done(store):
    store.claim_stage(CHANNEL, DAY, "digest", "host:1")
    store.finish_stage(CHANNEL, DAY, "digest", "host:1")

    claim, previous = store.claim_stage(CHANNEL, DAY, "digest", "host:2", force=True)

    assert claim is Claim.CLAIMED
    assert previous is not None and previous.status == "done"
    assert store.stage_run(CHANNEL, DAY, "digest").status == "running"


def test_a_stale_owner_cannot_finish_a_stage_someone_else_reclaimed(store):
    store.claim_stage(CHANNEL, DAY, "prompt", "host:1")
    store.claim_stage(CHANNEL, DAY, "prompt", "host:2", owner_alive=lambda o: False)

    store.finish_stage(CHANNEL, DAY, "prompt", "host:1", error="crashed late")

    run = store.stage_run(CHANNEL, DAY, "prompt")
    assert (run.status, run.owner) == ("running", "host:2")


def test_threads_racing_to_claim_a_stage_get_exactly_one_claim(store):
    racers, rounds = 8, 25  # many rounds (one date each) so the claims really overlap
    barrier = threading.Barrier(racers)
    results: dict[dt.date, list[Claim]] = {}
    errors: list[BaseException] = []
    lock = threading.Lock()

    def race(n: int) -> None:
        try:
            for day in range(rounds):
                date = DAY + dt.timedelta(days=day)
                barrier.wait(timeout=10)
                claim, _ = store.claim_stage(CHANNEL, date, "prompt", f"host:{n}")
                with lock:
                    results.setdefault(date, []).append(claim)
        except BaseException as exc:  # a thread's failure must fail the test
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=race, args=(n,)) for n in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert len(results) == rounds
    for claims in results.values():
        assert sorted(c.value for c in claims) == sorted(
            [Claim.CLAIMED.value] + [Claim.IN_PROGRESS.value] * (racers - 1)
        )


PROCESS_ROUNDS = 10


def _claim_in_another_process(data_dir: str, owner: str, barrier, results) -> None:  # type: ignore[no-untyped-def]
    """Open the store in this process; for each round wait for the other racer, then claim."""
    opened = Store.open(Path(data_dir))
    try:
        for day in range(PROCESS_ROUNDS):
            barrier.wait(timeout=30)
            claim, _ = opened.claim_stage(CHANNEL, DAY + dt.timedelta(days=day), "prompt", owner)
            results.put((day, claim.value))
    except Exception as exc:  # tell the test at once instead of letting it time out
        barrier.abort()
        results.put((-1, f"{type(exc).__name__}: {exc}"))
    finally:
        opened.close()


def test_processes_racing_to_claim_a_stage_get_exactly_one_claim(store, data_dir):
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    results = context.Queue()
    processes = [
        context.Process(target=_claim_in_another_process, args=(str(data_dir), f"host:{n}", barrier, results))
        for n in range(2)
    ]
    for process in processes:
        process.start()
    outcomes: dict[int, list[str]] = {}
    for _ in range(PROCESS_ROUNDS * len(processes)):
        day, claim = results.get(timeout=30)
        assert day >= 0, claim
        outcomes.setdefault(day, []).append(claim)
    for process in processes:
        process.join(timeout=30)

    assert [p.exitcode for p in processes] == [0, 0]
    assert len(outcomes) == PROCESS_ROUNDS
    for claims in outcomes.values():
        assert sorted(claims) == sorted([Claim.CLAIMED.value, Claim.IN_PROGRESS.value])


# -- replies ----------------------------------------------------------------------------------


def test_recording_a_reply_is_idempotent_per_event_id(store):
    first = store.record_reply(CHANNEL, DAY, _reply("1764147700.000200"), event_id="Ev1")
    again = store.record_reply(CHANNEL, DAY, _reply("1764147700.000200"), event_id="Ev1")
    # Whatever a redelivery carries, an event ID is applied once.
    odd = store.record_reply(CHANNEL, DAY, _reply("1764147799.000300", user=BOB), event_id="Ev1")

    assert (first, again, odd) == (True, False, False)
    assert [(s.reply.ts, s.reply.text) for s in store.stored_replies(CHANNEL, DAY)] == [
        ("1764147700.000200", "did things")
    ]


def test_a_redelivered_delete_event_is_applied_once(store):
    store.record_reply(CHANNEL, DAY, _reply("1764147700.000200"), event_id="Ev1")

    assert store.delete_reply(CHANNEL, "1764147700.000200", event_id="Ev2") is True
    assert store.delete_reply(CHANNEL, "1764147700.000200", event_id="Ev2") is False
    assert store.mark_event_seen("Ev2") is False
    assert store.mark_event_seen("Ev3") is True
    assert _live(store)["1764147700.000200"].deleted is True


def test_a_redelivered_original_never_overwrites_an_edit(store):
    ts = "1764147700.000200"
    store.record_reply(CHANNEL, DAY, _reply(ts, text="first draft"), event_id="Ev1")
    store.record_reply(
        CHANNEL, DAY, _reply(ts, text="final words", edited=True), version="1764147800.000000", event_id="Ev2"
    )

    late = store.record_reply(CHANNEL, DAY, _reply(ts, text="first draft"), event_id="Ev1-retry")

    assert late is False
    assert _live(store)[ts].reply == _reply(ts, text="final words", edited=True)


def test_a_deleted_reply_stays_deleted_when_an_edit_arrives_later(store):
    ts = "1764147700.000200"
    store.record_reply(CHANNEL, DAY, _reply(ts), event_id="Ev1")
    assert store.delete_reply(CHANNEL, ts, event_id="Ev2") is True

    revived = store.record_reply(
        CHANNEL, DAY, _reply(ts, text="edited", edited=True), version="1764147900.000000", event_id="Ev3"
    )

    assert revived is False
    assert _live(store)[ts].deleted is True
    assert _live(store)[ts].reply.text == "did things"


def test_sync_thread_deletes_missing_older_replies_but_keeps_newer_ones(store):
    kept, gone, arrived_during_read = "1764147700.000200", "1764147750.000300", "1764147900.000500"
    for ts in (kept, gone, arrived_during_read):
        store.record_reply(CHANNEL, DAY, _reply(ts, text=f"reply {ts}"))
    thread = [_reply(kept, text="edited in Slack", edited=True), _reply("1764147800.000400", user=BOB)]

    store.sync_thread(CHANNEL, DAY, thread, read_started="1764147850.000000")

    live = _live(store)
    assert live[kept] == StoredReply(_reply(kept, text="edited in Slack", edited=True), deleted=False)
    assert live["1764147800.000400"] == StoredReply(_reply("1764147800.000400", user=BOB), deleted=False)
    assert live[gone].deleted is True
    assert live[arrived_during_read].deleted is False


# -- locks ------------------------------------------------------------------------------------


def test_a_write_waits_for_another_connections_lock_and_then_succeeds(store, data_dir):
    other = sqlite3.connect(data_dir / "standup.db", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute(
        "INSERT INTO prompts (channel, date, ts, posted_at) VALUES (?, ?, ?, ?)",
        (OTHER_CHANNEL, DAY.isoformat(), "1764140000.000001", "2026-11-26T09:00:00+00:00"),
    )
    release = threading.Timer(0.5, lambda: other.execute("COMMIT"))
    started = time.monotonic()
    release.start()
    try:
        store.save_prompt(CHANNEL, DAY, PROMPT_TS)
        waited = time.monotonic() - started
    finally:
        release.join()
        other.close()

    assert waited >= 0.4
    assert store.prompt_ts(CHANNEL, DAY) == PROMPT_TS
    assert store.prompt_ts(OTHER_CHANNEL, DAY) == "1764140000.000001"


# -- keys -------------------------------------------------------------------------------------


def test_two_channels_on_the_same_date_do_not_interfere(store):
    store.save_prompt(CHANNEL, DAY, PROMPT_TS)
    store.save_prompt(OTHER_CHANNEL, DAY, "1764147600.000999")
    store.record_reply(CHANNEL, DAY, _reply("1764147700.000200", text="in standup"))
    store.record_reply(OTHER_CHANNEL, DAY, _reply("1764147700.000200", text="same ts, other channel"))
    store.claim_stage(CHANNEL, DAY, "prompt", "host:1")
    store.finish_stage(CHANNEL, DAY, "prompt", "host:1")
    store.claim_reminder(CHANNEL, DAY, BOB)
    store.finish_reminder(CHANNEL, DAY, BOB)

    store.sync_thread(OTHER_CHANNEL, DAY, [], read_started="1764149999.000000")

    assert store.prompt_ts(CHANNEL, DAY) == PROMPT_TS
    assert store.prompt_ts(OTHER_CHANNEL, DAY) == "1764147600.000999"
    assert store.date_of_prompt(OTHER_CHANNEL, "1764147600.000999") == DAY
    assert store.date_of_prompt(OTHER_CHANNEL, PROMPT_TS) is None
    assert [(s.reply.text, s.deleted) for s in store.stored_replies(CHANNEL, DAY)] == [("in standup", False)]
    assert [s.deleted for s in store.stored_replies(OTHER_CHANNEL, DAY)] == [True]
    assert store.claim_stage(OTHER_CHANNEL, DAY, "prompt", "host:2")[0] is Claim.CLAIMED
    assert store.reminded(OTHER_CHANNEL, DAY) == {}
    assert store.claim_reminder(OTHER_CHANNEL, DAY, BOB) is True
    assert store.reminded(CHANNEL, DAY) == {BOB: "sent"}


def test_the_same_channel_on_two_dates_does_not_interfere(store):
    tomorrow = DAY + dt.timedelta(days=1)
    store.claim_stage(CHANNEL, DAY, "remind", "host:1")
    store.finish_stage(CHANNEL, DAY, "remind", "host:1")
    store.record_reply(CHANNEL, DAY, _reply("1764147700.000200"))

    assert store.claim_stage(CHANNEL, tomorrow, "remind", "host:1")[0] is Claim.CLAIMED
    assert store.stored_replies(CHANNEL, tomorrow) == []


# -- reminders --------------------------------------------------------------------------------


def test_a_reminder_is_claimed_once_and_not_again_once_sent(store):
    assert store.claim_reminder(CHANNEL, DAY, BOB) is True
    assert store.claim_reminder(CHANNEL, DAY, BOB) is False  # being sent
    assert store.reminded(CHANNEL, DAY) == {BOB: "sending"}

    store.finish_reminder(CHANNEL, DAY, BOB)

    assert store.reminded(CHANNEL, DAY) == {BOB: "sent"}
    assert store.claim_reminder(CHANNEL, DAY, BOB) is False


def test_a_failed_reminder_is_claimed_again_on_the_next_run(store):
    store.claim_reminder(CHANNEL, DAY, BOB)
    store.finish_reminder(CHANNEL, DAY, BOB, error="cannot_dm_bot")
    assert store.reminded(CHANNEL, DAY) == {BOB: "failed"}

    assert store.claim_reminder(CHANNEL, DAY, BOB) is True
    assert store.reminded(CHANNEL, DAY) == {BOB: "sending"}


def test_force_claims_a_reminder_that_was_already_sent(store):
    store.claim_reminder(CHANNEL, DAY, BOB)
    store.finish_reminder(CHANNEL, DAY, BOB)

    assert store.claim_reminder(CHANNEL, DAY, BOB, force=True) is True


# -- blocker escalations ----------------------------------------------------------------------
LEAD, DEPUTY = "ULEAD", "UDEPUTY"


def test_an_escalation_is_claimed_once_per_contact_and_not_again_for_the_same_text(store):
    assert store.claim_escalation(CHANNEL, DAY, ALICE, LEAD, "VPN", "1.1") == "new"
    assert store.claim_escalation(CHANNEL, DAY, ALICE, LEAD, "VPN", "1.1") is None  # being sent
    assert store.claim_escalation(CHANNEL, DAY, ALICE, DEPUTY, "VPN", "1.1") == "new"
    store.finish_escalation(CHANNEL, DAY, ALICE, LEAD, "VPN")

    assert store.claim_escalation(CHANNEL, DAY, ALICE, LEAD, "VPN", "1.1") is None
    assert store.escalations(CHANNEL, DAY) == {(ALICE, LEAD): ("sent", "VPN"), (ALICE, DEPUTY): ("sending", None)}
    # Another member, another date: their own rows.
    assert store.claim_escalation(CHANNEL, DAY, BOB, LEAD, "VPN", "1.2") == "new"
    assert store.claim_escalation(CHANNEL, DAY + dt.timedelta(days=1), ALICE, LEAD, "VPN", "2.1") == "new"


def test_a_changed_blocker_is_claimed_as_an_update_and_a_change_back_as_nothing(store):
    store.claim_escalation(CHANNEL, DAY, ALICE, LEAD, "VPN", "1.1")
    store.finish_escalation(CHANNEL, DAY, ALICE, LEAD, "VPN")

    assert store.claim_escalation(CHANNEL, DAY, ALICE, LEAD, "VPN and the DB", "1.1") == "update"
    store.finish_escalation(CHANNEL, DAY, ALICE, LEAD, "VPN and the DB", error="ratelimited")
    assert store.escalations(CHANNEL, DAY) == {(ALICE, LEAD): ("failed", "VPN")}
    # Edited back before the update got through: the contact already has that text.
    assert store.claim_escalation(CHANNEL, DAY, ALICE, LEAD, "VPN", "1.1") is None
    assert store.escalations(CHANNEL, DAY) == {(ALICE, LEAD): ("sent", "VPN")}


def test_a_failed_escalation_is_claimed_again_as_new_when_nothing_reached_the_contact(store):
    store.claim_escalation(CHANNEL, DAY, ALICE, LEAD, "VPN", "1.1")
    store.finish_escalation(CHANNEL, DAY, ALICE, LEAD, "VPN", error="user_disabled")
    assert store.escalations(CHANNEL, DAY) == {(ALICE, LEAD): ("failed", None)}

    assert store.claim_escalation(CHANNEL, DAY, ALICE, LEAD, "VPN", "1.1") == "new"


def test_a_slow_send_finishing_late_does_not_mark_a_newer_claim_sent(store):
    store.claim_escalation(CHANNEL, DAY, ALICE, LEAD, "VPN", "1.1")
    # An edit is escalated while the first DM is still on its way: it follows as an update.
    assert store.claim_escalation(CHANNEL, DAY, ALICE, LEAD, "VPN and the DB", "1.1") == "update"
    store.finish_escalation(CHANNEL, DAY, ALICE, LEAD, "VPN")
    assert store.escalations(CHANNEL, DAY) == {(ALICE, LEAD): ("sending", "VPN")}

    store.finish_escalation(CHANNEL, DAY, ALICE, LEAD, "VPN and the DB")
    assert store.escalations(CHANNEL, DAY) == {(ALICE, LEAD): ("sent", "VPN and the DB")}


def test_previous_replies_are_a_members_latest_earlier_date_in_the_store(store):
    earlier, before = DAY - dt.timedelta(days=7), DAY - dt.timedelta(days=3)
    store.record_reply(CHANNEL, earlier, _reply("1.1", text="a week ago"))
    store.record_reply(CHANNEL, before, _reply("2.2", text="second"))
    store.record_reply(CHANNEL, before, _reply("2.1", text="first"))
    store.record_reply(CHANNEL, before, _reply("2.3", user=BOB, text="bob's"))
    store.record_reply(CHANNEL, before, _reply("2.4", text="deleted"))
    store.delete_reply(CHANNEL, "2.4")
    store.record_reply(CHANNEL, DAY, _reply("3.1", text="today"))
    store.record_reply(OTHER_CHANNEL, DAY - dt.timedelta(days=1), _reply("4.1", text="elsewhere"))

    date, replies = store.previous_replies(CHANNEL, ALICE, DAY)
    assert date == before
    assert [r.text for r in replies] == ["first", "second"]
    assert store.previous_replies(CHANNEL, ALICE, earlier) is None
    assert store.previous_replies(CHANNEL, CAROL, DAY) is None


def test_previous_replies_of_many_members_are_each_members_previous_replies(store):
    days = [DAY - dt.timedelta(days=n) for n in (9, 5, 2)]
    for number, (user, date) in enumerate([(ALICE, days[0]), (ALICE, days[2]), (BOB, days[0]), (BOB, days[1]),
                                           (ALICE, days[2]), (CAROL, DAY), (BOB, days[1])]):
        store.record_reply(CHANNEL, date, _reply(f"{number + 10}.{9 - number}", user=user, text=f"reply {number}"))
    store.record_reply(CHANNEL, days[1], _reply("30.1", user=ALICE, text="deleted"))
    store.delete_reply(CHANNEL, "30.1")
    store.record_reply(OTHER_CHANNEL, days[2], _reply("40.1", user=BOB, text="elsewhere"))
    members = [ALICE, BOB, CAROL, "UNOBODY"]

    for before in (*days, DAY, DAY + dt.timedelta(days=1)):
        one_by_one = {user: store.previous_replies(CHANNEL, user, before) for user in members}
        assert store.previous_replies_of(CHANNEL, members, before) == {
            user: found for user, found in one_by_one.items() if found is not None
        }
    assert store.previous_replies_of(CHANNEL, [], DAY) == {}


def test_many_users_are_cached_at_once_and_read_back_at_once(store, monkeypatch):
    store.cache_user(ALICE, "old name", True, "UTC")
    many = [(f"U{i:05d}", f"Member {i}", i % 2 == 0, "Europe/Berlin") for i in range(1200)]
    store.cache_users([*many, (ALICE, "Alice", False, "Asia/Tokyo")])

    cached = store.cached_users([user for user, *_ in many] + [ALICE, BOB], dt.timedelta(hours=1))

    assert cached == {user: (name, human, tz) for user, name, human, tz in many} | {ALICE: ("Alice", False, "Asia/Tokyo")}
    assert cached[ALICE] == store.cached_user(ALICE, dt.timedelta(hours=1))
    two_days_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(days=2)).isoformat(timespec="seconds")
    monkeypatch.setattr(store_module, "utc_now_iso", lambda: two_days_ago)
    store.cache_users([(CAROL, "Carol", True, "")])
    assert store.cached_users([CAROL], dt.timedelta(days=1)) == {}
    assert store.cached_users([CAROL], dt.timedelta(days=3)) == {CAROL: ("Carol", True, "")}
    store.cache_users([])  # nothing to write: no transaction either


# -- user cache -------------------------------------------------------------------------------


def test_a_cached_user_is_returned_until_it_is_older_than_max_age(store, monkeypatch):
    store.cache_user(ALICE, "Alice", True, "Europe/Berlin")
    assert store.cached_user(ALICE, dt.timedelta(hours=1)) == ("Alice", True, "Europe/Berlin")

    two_days_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(days=2)).isoformat(timespec="seconds")
    monkeypatch.setattr(store_module, "utc_now_iso", lambda: two_days_ago)
    store.cache_user(CAROL, "Carol", False, "")

    assert store.cached_user(CAROL, dt.timedelta(days=1)) is None
    assert store.cached_user(CAROL, dt.timedelta(days=3)) == ("Carol", False, "")
    assert store.cached_user(BOB, dt.timedelta(days=3)) is None


def test_caching_a_user_again_replaces_the_old_entry(store):
    store.cache_user(ALICE, "alice", True, "UTC")
    store.cache_user(ALICE, "Alice A.", False, "Europe/Berlin")

    assert store.cached_user(ALICE, dt.timedelta(hours=1)) == ("Alice A.", False, "Europe/Berlin")



def test_first_statements_wait_while_another_process_switches_a_new_file_to_wal(monkeypatch):
    # Two cron runs opening a fresh install's database together: SQLite may answer "locked" at
    # once (no busy handler) while the other switches the file to WAL. Seen as a flaky
    # test_two_overlapping_wrapper_runs_post_the_prompt_once; reproduced 1 in ~35 runs.
    answers = [sqlite3.OperationalError("database is locked"), sqlite3.OperationalError("database is locked"), 7]

    def step() -> int:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert store_module._when_unlocked(step) == 7

    def broken() -> int:
        raise sqlite3.OperationalError("disk I/O error")

    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        store_module._when_unlocked(broken)  # not a lock: no waiting

    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_MS", 50)

    def always_locked() -> int:
        raise sqlite3.OperationalError("database is locked")

    with pytest.raises(sqlite3.OperationalError, match="locked"):
        store_module._when_unlocked(always_locked)  # gives up after the busy timeout
