"""The `listener.py` command line: load settings, check the token, serve Socket Mode or HTTP."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn, TextIO

from .errors import ConfigError, StandupError, UsageError
from .logs import setup_logging
from .settings import Settings, load_settings

log = logging.getLogger("standup_bot.listener")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of `listener.py`."""
    parser = _Parser(prog="listener.py", description="Record standup replies from Slack as they arrive.")
    parser.add_argument("--config", type=Path, help="the config file (default: $STANDUP_CONFIG or config.py)")
    parser.add_argument("--host", default="127.0.0.1", help="HTTP mode: address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=3000, help="HTTP mode: port (default 3000)")
    parser.add_argument("--threads", type=int, default=8, help="HTTP mode: worker threads (default 8)")
    parser.add_argument("--verbose", "-v", action="store_true", help="debug logging; show tracebacks")
    return parser


def main(argv: Sequence[str] | None = None, *, environ: Mapping[str, str] | None = None,
         stderr: TextIO | None = None) -> int:
    """Run the listener until stopped; return the exit code."""
    stderr = stderr or sys.stderr
    os.umask(0o077)
    settings: Settings | None = None
    verbose = False
    try:
        args = build_parser().parse_args(argv)
        verbose = args.verbose
        settings = load_settings(args.config, os.environ if environ is None else environ)
        if not settings.slack_app_token and not settings.slack_signing_secret:
            raise ConfigError([
                "SLACK_SIGNING_SECRET: required for the HTTP listener (Basic Information → Signing "
                "Secret), or set SLACK_APP_TOKEN to use Socket Mode"
            ])
        # A daemon's stderr goes to journald, so the listener always echoes its log there.
        setup_logging(settings.data_dir / "listener.log", settings.secrets(), verbose=verbose,
                      stream=stderr, echo=True)
        serve(settings, args.host, args.port, args.threads)
        return 0
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=stderr)
        return exc.exit_code
    except StandupError as exc:
        message = str(exc)
        for secret in settings.secrets() if settings else ():
            message = message.replace(secret, "[redacted]")
        print(f"error: {message}", file=stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 0


def serve(settings: Settings, host: str, port: int, threads: int) -> None:
    """Check the token, then serve until SIGTERM or Ctrl-C."""
    from .confirmations import ConfirmationQueue
    from .listener_app import build_app, reaction_sender, serve_http, serve_socket_mode
    from .slack import SlackApi, make_client
    from .store import Store

    store = Store.open(settings.data_dir)
    confirmations: ConfirmationQueue | None = None
    try:
        client = make_client(settings.slack_bot_token, settings.slack_api_url, timeout=settings.slack_timeout)
        identity = SlackApi(client).auth_test()
        socket_mode = bool(settings.slack_app_token)
        _stop_on_sigterm()
        confirmations = ConfirmationQueue(reaction_sender(SlackApi(client)))
        app = build_app(settings, store, client, socket_mode=socket_mode, confirmations=confirmations)
        if socket_mode:
            _serve_socket_mode(serve_socket_mode(app, settings.slack_app_token), settings, identity)
            return
        server = serve_http(app, store, host, port, threads=threads)
        log.info("listener for %s as %s on http://%s:%s/slack/events (health: /healthz)",
                 settings.standup_channel, identity.get("user_id"), host, server.effective_port)
        try:
            server.run()
        finally:
            server.close()
    finally:
        if confirmations is not None:
            confirmations.close()
        store.close()


def _serve_socket_mode(handler: Any, settings: Settings, identity: dict[str, Any]) -> None:
    from slack_sdk.errors import SlackApiError

    try:
        try:
            handler.connect()
        except SlackApiError as exc:
            code = exc.response.get("error") if isinstance(exc.response.data, dict) else exc.response.status_code
            raise ConfigError([
                f"SLACK_APP_TOKEN: Slack refused it for Socket Mode ({code}); use the app-level token "
                "(xapp-…) with the connections:write scope from Basic Information → App-Level Tokens"
            ]) from None
        log.info("listener for %s connected as %s (Socket Mode)", settings.standup_channel, identity.get("user_id"))
        threading.Event().wait()  # the handler's threads serve; SIGTERM ends this wait
    finally:
        handler.close()


def _stop_on_sigterm() -> None:
    # systemd stops services with SIGTERM; unwind like Ctrl-C so the store is closed.
    def handler(signum: int, frame: FrameType | None) -> None:
        log.info("stopping on signal %s", signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)
