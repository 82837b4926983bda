#!/usr/bin/env python3
"""Record standup replies as they arrive: `python listener.py [--config PATH] [--host H] [--port P]`.

Socket Mode when SLACK_APP_TOKEN is set, otherwise an HTTP server for the Events API.
See README.md. The code lives in the standup_bot package; this file only starts it.
"""

import sys

if sys.version_info < (3, 11):  # noqa: UP036 - a clear message on an old python3
    sys.exit("error: standup bot needs Python 3.11 or newer")

from standup_bot.listener_cli import main

if __name__ == "__main__":
    sys.exit(main())
