"""The baseline for bench/listener_throughput.py: a bare Bolt app that only acks.

Served exactly like the listener (`standup_bot.listener_app.serve_http`): waitress
`create_server` with the same thread count, body limit and options, Bolt's own WSGI adapter,
signature verification on. Its message handler does nothing (Bolt acks before it runs).

`python bench/_bare_bolt.py --port P --threads 8 --api-url URL --secret S --token T`
"""

from __future__ import annotations

import argparse
import logging

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient
from waitress.server import create_server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--token", required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # as the listener does
    app = App(
        client=WebClient(token=args.token, base_url=args.api_url),
        signing_secret=args.secret,
        token_verification_enabled=False,
    )

    @app.event("message")
    def only_ack() -> None:
        """Nothing: Bolt has acknowledged the event already."""

    server = create_server(
        SlackRequestHandler(app, path="/slack/events"), host=args.host, port=args.port,
        threads=args.threads, max_request_body_size=1024 * 1024, ident="bare-bolt",
        clear_untrusted_proxy_headers=True,
    )
    server.run()


if __name__ == "__main__":
    main()
