"""standup bot: a daily async standup in a Slack thread, with a noon email digest."""

import logging

__version__ = "0.1.0"

# Until the CLI sets up the log file, log records must not reach Python's last-resort
# stderr handler: errors are reported to the user as one `error:` line instead.
logging.getLogger(__name__).addHandler(logging.NullHandler())
