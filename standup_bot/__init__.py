"""standup bot: a daily async standup in a Slack thread, with a noon email digest."""

__version__ = "0.1.0"
