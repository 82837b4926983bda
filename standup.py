#!/usr/bin/env python3
"""Run the daily Slack standup: `python standup.py [run|prompt|remind|digest|check|demo]`.

See README.md. The code lives in the standup_bot package; this file only starts it.
"""

import sys

if sys.version_info < (3, 11):  # noqa: UP036 - a clear message on an old python3
    sys.exit("error: standup bot needs Python 3.11 or newer")

from standup_bot.cli import main

if __name__ == "__main__":
    sys.exit(main())
