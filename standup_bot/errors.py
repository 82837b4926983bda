"""The exceptions that reach the user, each carrying a one-line message that says what to do."""

from __future__ import annotations


class StandupError(Exception):
    """Base of the errors the CLI turns into one line on stderr and an exit code."""

    exit_code = 1


class ConfigError(StandupError):
    """One or more settings are invalid or missing; each problem is one line."""

    exit_code = 2

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class UsageError(StandupError):
    """A bad command-line argument (unknown command, bad --date)."""

    exit_code = 2


class SlackError(StandupError):
    """A Slack Web API call failed for good (after retries, or a permanent error)."""

    def __init__(self, message: str, code: str = "") -> None:
        self.code = code
        super().__init__(message)


class MailError(StandupError):
    """The mail server could not be reached or refused the digest.

    `delivered_to` names the recipients the server accepted it for anyway (a partial
    refusal), so a retry can leave them out.
    """

    def __init__(self, message: str, delivered_to: tuple[str, ...] = ()) -> None:
        self.delivered_to = tuple(delivered_to)
        super().__init__(message)


class StoreError(StandupError):
    """The SQLite database cannot be used (corrupt, from a newer version, not writable)."""


class StageError(StandupError):
    """A stage cannot run (e.g. a reminder for a date with no prompt)."""
