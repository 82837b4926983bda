"""The `standup.py` command line: parse, load settings, run a command, map errors to exit codes.

Exit codes: 0 done (or nothing to do), 1 a runtime failure, 2 a configuration or usage
error. Every failure is one line on stderr starting `error:`; tracebacks only with
`--verbose`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TextIO

from .errors import ConfigError, StandupError, UsageError
from .logs import setup_logging
from .settings import Settings, load_settings

if TYPE_CHECKING:
    from .stages import Context

COMMANDS = (
    "run", "prompt", "remind", "digest", "addendum", "schedule", "status", "checks", "away", "back", "check", "demo",
)
log = logging.getLogger("standup_bot")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of `standup.py`."""
    parser = _Parser(
        prog="standup.py",
        description="Run the daily Slack standup: post the prompt, remind, email the digest.",
        epilog="Commands: " + ", ".join(COMMANDS) + ". See README.md for each.",
    )
    parser.add_argument("command", nargs="?", default="run", help="one of: " + ", ".join(COMMANDS))
    parser.add_argument(
        "arguments", nargs="*", help="away: MEMBER FROM [TO] (YYYY-MM-DD); back: MEMBER; checks: handle ID",
    )
    parser.add_argument("--config", type=Path, help="the config file (default: $STANDUP_CONFIG or config.py)")
    parser.add_argument("--date", help="the standup date to act on, YYYY-MM-DD (default: today in TIMEZONE)")
    parser.add_argument("--force", action="store_true", help="do the stage again even if it was done")
    parser.add_argument("--verbose", "-v", action="store_true", help="echo the log to stderr; show tracebacks")
    return parser


def parse_date(text: str | None) -> dt.date | None:
    """Return the --date value as a date; raise UsageError for anything else."""
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"--date: {text!r} is not a date; use YYYY-MM-DD, e.g. 2026-11-26") from None


def main(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    now: Callable[[], dt.datetime] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run `standup.py` with these arguments and return the exit code."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    environ = os.environ if environ is None else environ
    os.umask(0o077)  # state, logs and the demo's output are the owner's alone
    _stop_on_sigterm()
    verbose = "--verbose" in (argv or sys.argv[1:]) or "-v" in (argv or sys.argv[1:])
    settings: Settings | None = None
    try:
        args = build_parser().parse_args(argv)
        verbose = args.verbose
        if args.command not in COMMANDS:
            raise UsageError(f"unknown command {args.command!r}; choose one of: {', '.join(COMMANDS)}")
        date = parse_date(args.date)
        if args.arguments and args.command not in ("away", "back", "checks"):
            raise UsageError(f"unexpected argument(s) after {args.command}: {' '.join(args.arguments)}")
        if args.command == "demo":
            from .demo import run_demo

            return run_demo(say=lambda line: print(line, file=stdout, flush=True), verbose=verbose)
        settings = load_settings(args.config, environ)
        setup_logging(settings.data_dir / "standup.log", settings.secrets(), verbose=verbose, stream=stderr)
        log.info("standup.py %s started (date %s%s)", args.command, date or "today", ", forced" if args.force else "")
        return _dispatch(args.command, settings, date, args.force, now, sleep, stdout, args.arguments)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=stderr)
        return exc.exit_code
    except StandupError as exc:
        log.error("%s", exc)
        print(f"error: {_scrub(str(exc), settings)}", file=stderr)
        if verbose:
            logging.getLogger("standup_bot").exception("traceback")
        return exc.exit_code
    except KeyboardInterrupt:
        log.warning("stopped by a signal; a rerun finishes what is left")
        print("error: stopped; run the same command again to finish what is left", file=stderr)
        return 130
    except Exception as exc:  # the last line of defence: one line, never a traceback by default
        log.exception("unexpected error")
        print(f"error: unexpected {type(exc).__name__}: {_scrub(str(exc), settings)}", file=stderr)
        if verbose:
            import traceback

            # Scrubbed like the error line: the exception's text may hold a secret.
            trace = traceback.format_exc()
            for secret in settings.secrets() if settings else ():
                trace = trace.replace(secret, "[redacted]")
            print(trace, end="", file=stderr)
        return 1


def _stop_on_sigterm() -> None:
    """Let SIGTERM (systemd, `kill`) unwind like Ctrl-C: logged, state consistent, exit 130."""
    import signal
    import threading

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)


def _scrub(text: str, settings: Settings | None) -> str:
    for secret in settings.secrets() if settings else ():
        text = text.replace(secret, "[redacted]")
    return text.replace("\n", " ")


def _dispatch(
    command: str,
    settings: Settings,
    date: dt.date | None,
    force: bool,
    now: Callable[[], dt.datetime] | None,
    sleep: Callable[[float], None],
    stdout: TextIO,
    arguments: Sequence[str] = (),
) -> int:
    from . import stages
    from .slack import SlackApi, make_client
    from .store import Store

    def say(line: str) -> None:
        print(line, file=stdout, flush=True)

    clock = now or (lambda: dt.datetime.now(dt.UTC))
    if command == "check":
        from .check import run_checks

        return run_checks(settings, say=say, today=clock().astimezone(settings.zone).date())

    def make_context() -> stages.Context:
        store = Store.open(settings.data_dir)
        client = make_client(settings.slack_bot_token, settings.slack_api_url, timeout=settings.slack_timeout)
        ctx = stages.Context(settings, store, SlackApi(client, sleep=sleep), now=clock, sleep=sleep, say=say)
        if settings.healthcheck_url:
            from .healthcheck import ping

            def notify(stage: str, day: dt.date, error: str | None) -> None:
                ping(settings.healthcheck_url, stage, day, error, sleep=sleep)

            ctx.notify = notify
        return ctx

    if command == "checks":
        return _checks_command(arguments, settings, make_context, clock, say)
    if command in ("away", "back"):
        return _away_command(command, arguments, settings, clock().astimezone(settings.zone).date(), say)
    if command == "schedule":
        from .scheduler import run_scheduler

        run_scheduler(settings, make_context)
        return 0
    ctx = make_context()
    try:
        day = date or ctx.today()
        if command == "status":
            from .status import status_lines

            for line in status_lines(ctx, day):
                say(line)
            return 0
        reason = settings.calendar.why_not(day)
        if reason and not force and command != "run":  # run says it itself
            say(f"{reason}: no {command} (--force does it anyway)")
            return 0
        if command == "addendum":
            from .addendum import addendum  # rendering and mail: imported only by the commands that send

            addendum(ctx, day, force=force)
            return 0
        {
            "run": stages.run,
            "prompt": stages.prompt,
            "remind": stages.remind,
            "digest": stages.digest,
        }[command](ctx, day, force=force)
    finally:
        ctx.store.close()
    return 0


def _checks_command(
    arguments: Sequence[str], settings: Settings, make_context: Callable[[], Context],
    clock: Callable[[], dt.datetime], say: Callable[[str], None],
) -> int:
    """`checks`: list the open findings; `checks handle ID`: mark one handled (and show it in its DMs)."""
    from .sanity import finding_lines, mark_handled
    from .store import Store

    usage = "usage: standup.py checks  |  standup.py checks handle ID"
    if not arguments:
        store = Store.open(settings.data_dir)
        try:
            findings = store.findings(settings.standup_channel)
        finally:
            store.close()
        if not findings:
            say(f"no open findings for {settings.standup_channel}")
            return 0
        say(f"{len(findings)} open finding(s) for {settings.standup_channel} (handle one: standup.py checks handle ID):")
        for line in finding_lines(findings, settings.zone):
            say(f"  {line}")
        return 0
    if len(arguments) != 2 or arguments[0] != "handle" or not arguments[1].lstrip("#").isdigit():
        raise UsageError(f"unexpected argument(s) after checks: {' '.join(arguments)}; {usage}")
    finding_id = int(arguments[1].lstrip("#"))
    ctx = make_context()
    try:
        changed, finding = mark_handled(settings, ctx.store, ctx.slack, finding_id, "command line", clock())
    finally:
        ctx.store.close()
    if finding is None:
        raise UsageError(f"no finding #{finding_id} for {settings.standup_channel}; `standup.py checks` lists the open ones")
    if not changed:
        when = f"{finding.handled_at.astimezone(settings.zone):%Y-%m-%d %H:%M %Z}" if finding.handled_at else "?"
        say(f"finding #{finding_id} was already handled ({finding.handled_by}, {when}); nothing to do")
        return 0
    say(f"finding #{finding_id} marked handled: {finding.details}")
    return 0


def _away_command(
    command: str, arguments: Sequence[str], settings: Settings, today: dt.date, say: Callable[[str], None]
) -> int:
    import re

    from .away import AwayInputError, apply_request, parse_request
    from .store import Store

    usage = "usage: standup.py away MEMBER FROM [TO]  |  standup.py back MEMBER"
    if not arguments or (command == "back" and len(arguments) != 1):
        raise UsageError(f"{command} needs a member ID; {usage}")
    member, rest = arguments[0], arguments[1:]
    if not re.fullmatch(r"[UW][A-Z0-9]{2,}", member):
        raise UsageError(f"{member!r} is not a member ID (U… or W…); {usage}")
    if command == "away" and not rest:
        raise UsageError(f"away needs a first date (YYYY-MM-DD); {usage}")
    try:
        request = parse_request(" ".join([command, *rest]), today)
    except AwayInputError as exc:
        raise UsageError(str(exc).replace("`/standup ", "`standup.py ")) from None
    store = Store.open(settings.data_dir)
    try:
        say(f"{member}: {apply_request(store, settings.standup_channel, member, request, today, source='cli')}")
    finally:
        store.close()
    return 0
