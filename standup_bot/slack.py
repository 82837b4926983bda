"""Our wrapper over slack_sdk's WebClient: retries, pagination, and errors that say what to do.

Every Web API call of the bot goes through `SlackApi`, so the retry policy and the hints
for permanent errors live in one place. Methods return plain data (dicts and strings).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from http.client import RemoteDisconnected
from typing import Any
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from .errors import SlackError

log = logging.getLogger(__name__)

# conversations.replies and .members: ask for 200 a page (Slack's recommendation); the
# pagination loop copes with any smaller page Slack imposes (15 for some apps since 2025).
PAGE_SIZE = 200
# After Slack proved unreachable, further calls fail at once for this long.
UNREACHABLE_PAUSE = 60.0
# Errors after which a post may or may not have reached Slack.
AMBIGUOUS = frozenset({"timeout", "server_error"})
SLACKBOT_ID = "USLACKBOT"
# A 429 without a readable Retry-After waits this long (Slack always sends whole seconds).
DEFAULT_RETRY_AFTER = 1.0
# The longest Retry-After waited out. Slack's limits are per minute, so a longer wait means
# something is wrong; the call fails saying so rather than hanging a stage for an hour.
MAX_RETRY_AFTER = 120.0
# From this many members to look up, one users.list pass (Tier 2, up to 1,000 a page) is
# cheaper than a users.info (Tier 4) each.
USERS_LIST_FROM = 5


def _is_post(request: HttpRequest) -> bool:
    """Tell whether a request posts a message (a retry could post it twice)."""
    return request.url.rstrip("/").endswith("/chat.postMessage")


def retry_after(headers: Mapping[str, Any]) -> float | None:
    """Return a response's Retry-After in seconds, or None when it is missing or not a number.

    Header names are matched case-insensitively; slack_sdk gives values as strings or as
    one-item lists depending on the path.
    """
    for name, value in headers.items():
        if str(name).lower() != "retry-after":
            continue
        raw = value[0] if isinstance(value, (list, tuple)) and value else value
        try:
            seconds = float(str(raw).strip())
        except ValueError:
            return None
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    return None


class RateLimitRetry(RetryHandler):
    """Retry HTTP 429 after exactly Retry-After seconds.

    slack_sdk's RateLimitErrorRetryHandler sleeps Retry-After plus 0-1 s of random jitter,
    which spreads out many clients; a stage is one sequential client, so the jitter only
    made it slower (a reminder fan-out with a one-second burst took 1.61x the floor with it;
    docs/benchmarks.md, section 3). A missing or unreadable Retry-After waits
    DEFAULT_RETRY_AFTER. One longer than `max_wait` is not waited out: the call fails with
    the 429, and `SlackApi` says how long Slack asked for.
    https://docs.slack.dev/apis/web-api/rate-limits
    """

    def __init__(
        self, max_retry_count: int = 1, *, max_wait: float = MAX_RETRY_AFTER,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(max_retry_count)
        self.max_wait = max_wait
        self._sleep = sleep

    @staticmethod
    def wait_for(response: HttpResponse) -> float:
        """Return how long to wait before retrying a 429 answer."""
        seconds = retry_after(response.headers)
        return DEFAULT_RETRY_AFTER if seconds is None else seconds

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return response is not None and response.status_code == 429 and self.wait_for(response) <= self.max_wait

    def prepare_for_next_attempt(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        assert response is not None  # _can_retry accepted only a 429 answer
        state.next_attempt_requested = True
        self._sleep(self.wait_for(response))
        state.increment_current_attempt()


class ServerErrorRetry(RetryHandler):
    """Retry HTTP 5xx answers (slack_sdk's own handler only knows 500 and 503), except posts."""

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        # A post answered with a 5xx may have been posted all the same; the stage checks for
        # it before trying again, so it is not retried blindly here.
        if _is_post(request):
            return False
        return response is not None and 500 <= response.status_code < 600


class ConnectionRetry(ConnectionErrorRetryHandler):
    """Retry connection errors, except where a post may already have gone through.

    A timeout or a dropped connection after `chat.postMessage` was sent leaves it unknown
    whether Slack posted it; retrying could post twice. Those fail instead, and the
    stage's rerun looks for what it posted before posting again.
    """

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        ambiguous = isinstance(error, (TimeoutError, RemoteDisconnected)) or (
            isinstance(error, URLError) and isinstance(error.reason, TimeoutError)
        )
        if ambiguous and _is_post(request):
            return False
        return super()._can_retry(state=state, request=request, response=response, error=error)


@dataclass(frozen=True)
class RetryPolicy:
    """How often to retry transient failures, and how long to back off.

    slack_sdk counts a request's retries together: once any handler has used up its
    count, the others get no more tries either.
    """

    rate_limited: int = 5  # each waits exactly Retry-After
    max_retry_after: float = MAX_RETRY_AFTER  # a longer Retry-After fails the call at once
    server_errors: int = 3
    connection_errors: int = 3
    backoff_factor: float = 0.5  # 0.5 s, 1 s, 2 s … plus jitter


def make_client(
    token: str, base_url: str, *, timeout: float = 15.0, retry: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> WebClient:
    """Build a WebClient with timeouts and retry handlers for 429, 5xx and connection errors.

    `sleep` is how the 429 handler waits out Retry-After (tests record it).
    """
    retry = retry or RetryPolicy()
    backoff = BackoffRetryIntervalCalculator(backoff_factor=retry.backoff_factor)
    return WebClient(
        token=token,
        base_url=base_url,
        timeout=max(1, round(timeout)),
        retry_handlers=[
            ConnectionRetry(
                max_retry_count=retry.connection_errors,
                interval_calculator=backoff,
                error_types=[URLError, ConnectionError, RemoteDisconnected, TimeoutError],
            ),
            RateLimitRetry(max_retry_count=retry.rate_limited, max_wait=retry.max_retry_after, sleep=sleep),
            ServerErrorRetry(max_retry_count=retry.server_errors, interval_calculator=backoff),
        ],
    )


_HINTS: dict[str, str] = {
    "invalid_auth": "Slack rejected SLACK_BOT_TOKEN ({code}): copy the Bot User OAuth Token (xoxb-…) "
    "from your app's 'OAuth & Permissions' page into .env",
    "not_authed": "no Slack token was sent ({code}): set SLACK_BOT_TOKEN in .env",
    "account_inactive": "the Slack token belongs to a deactivated app or user ({code}): reinstall the "
    "app and update SLACK_BOT_TOKEN",
    "token_revoked": "the Slack token was revoked ({code}): reinstall the app and update SLACK_BOT_TOKEN",
    "token_expired": "the Slack token expired ({code}): turn off token rotation or reinstall the app",
    "channel_not_found": "Slack has no channel {channel} that the bot can see ({code}): check "
    "STANDUP_CHANNEL is the channel ID, and invite the bot if the channel is private",
    "not_in_channel": "the bot is not a member of {channel} ({code}): type /invite @standup in the channel",
    "is_archived": "channel {channel} is archived ({code}): unarchive it or change STANDUP_CHANNEL",
    "missing_scope": "the Slack app lacks the scope {needed} ({code}): add it under 'OAuth & "
    "Permissions' (see slack_app_manifest.yml) and reinstall the app",
    "user_not_found": "Slack has no member {user} ({code}): check MEMBERS",
    "cannot_dm_bot": "member {user} is a bot and cannot get a DM ({code}): remove it from MEMBERS",
    "user_disabled": "member {user} is deactivated ({code}): remove it from MEMBERS",
    "ratelimited": "Slack kept rate-limiting {method} after retries ({code}): try again later",
    "rate_limited": "Slack kept rate-limiting {method} after retries ({code}): try again later",
    "messages_tab_disabled": "Slack refused a DM to {user} because the app's Messages tab is off ({code}): "
    "turn on 'Messages Tab' under 'App Home' (see slack_app_manifest.yml)",
    "thread_not_found": "the prompt's thread is gone from {channel} ({code}): was the prompt deleted?",
}


def explain(method: str, code: str, **context: str) -> str:
    """Turn a Slack error code into a one-line message that says what to do."""
    template = _HINTS.get(code)
    if template is None:
        return f"Slack API {method} failed: {code}"
    fields = {"method": method, "code": code, "channel": "", "user": "", "needed": "?", **context}
    return template.format(**fields)


class SlackApi:
    """The Web API calls the bot makes, each returning plain data or raising SlackError."""

    def __init__(self, client: WebClient, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = client
        self._sleep = sleep
        self._down_until = 0.0
        self._down_reason = ""

    def _call(self, method: str, **params: Any) -> dict[str, Any]:
        if time.monotonic() < self._down_until:
            # Slack could not be reached a moment ago: fail at once rather than spend another
            # round of timeouts and back-offs on each of the calls that follow.
            raise SlackError(self._down_reason, "unreachable")
        context = {k: str(v) for k, v in params.items() if k in ("channel", "user") and v}
        if "users" in params and "user" not in context:  # conversations.open names its member so
            context["user"] = str(params["users"])
        if method == "chat.postMessage" and _is_user_id(context.get("channel", "")):  # a DM by user ID
            context["user"] = context["channel"]
        # Some methods answer HTTP 200 with `rate_limited`, which the retry handlers don't see.
        for attempt in range(3):
            try:
                # The named methods apply slack_sdk's own encoding (JSON vs form, booleans).
                response = getattr(self.client, method.replace(".", "_"))(**params)
                return dict(response.data) if isinstance(response.data, dict) else {}
            except SlackApiError as exc:
                data = exc.response.data if isinstance(exc.response.data, dict) else {}
                code = str(data.get("error") or f"HTTP {exc.response.status_code}")
                if code in ("rate_limited", "ratelimited") and exc.response.status_code == 200 and attempt < 2:
                    self._sleep(1.0 + attempt)
                    continue
                if exc.response.status_code == 429:
                    wait, longest = retry_after(exc.response.headers or {}), self._longest_wait()
                    if wait is not None and longest is not None and wait > longest:
                        raise SlackError(
                            f"Slack rate-limited {method} and asked to wait {wait:g} s ({code}), longer than "
                            f"the {longest:g} s the bot waits out: try again later",
                            code,
                        ) from None
                if exc.response.status_code >= 500:
                    raise SlackError(
                        f"Slack API {method} failed with HTTP {exc.response.status_code} after retries; "
                        "Slack may be having trouble (https://slack-status.com), try again later",
                        "server_error",
                    ) from None
                needed = str(data.get("needed") or "?")
                raise SlackError(explain(method, code, needed=needed, **context), code) from None
            except (SlackClientError, URLError, OSError) as exc:
                reason = getattr(exc, "reason", None) or exc
                message = (
                    f"cannot reach Slack at {self.client.base_url} ({method}: {reason}); "
                    "check the network and SLACK_API_URL"
                )
                if isinstance(reason, TimeoutError):
                    # Slack may have done it and only been slow to answer: not proof it is down.
                    raise SlackError(message, "timeout") from None
                self._down_until, self._down_reason = time.monotonic() + UNREACHABLE_PAUSE, message
                raise SlackError(message, "unreachable") from None
        raise AssertionError("unreachable")  # the loop always returns or raises

    def _longest_wait(self) -> float | None:
        """Return the longest Retry-After the client's 429 handler waits out (None: no handler)."""
        for handler in self.client.retry_handlers:
            if isinstance(handler, RateLimitRetry):
                return handler.max_wait
        return None

    def _pages(self, method: str, key: str, *, page_size: int = PAGE_SIZE, **params: Any) -> Iterator[Any]:
        cursor = ""
        while True:
            data = self._call(method, limit=page_size, cursor=cursor, **params) if cursor else (
                self._call(method, limit=page_size, **params)
            )
            yield from data.get(key) or []
            cursor = str((data.get("response_metadata") or {}).get("next_cursor") or "")
            if not cursor:
                return

    # -- the calls ---------------------------------------------------------------------
    def auth_test(self) -> dict[str, Any]:
        """Return the bot's identity (user_id, bot_id, team, url)."""
        return self._call("auth.test")

    def post_message(
        self, channel: str, text: str, *, blocks: list[dict[str, Any]] | None = None,
        thread_ts: str | None = None, metadata: dict[str, Any] | None = None,
    ) -> str:
        """Post a message and return its ts."""
        params: dict[str, Any] = {"channel": channel, "text": text, "unfurl_links": False}
        if blocks:
            params["blocks"] = blocks
        if thread_ts:
            params["thread_ts"] = thread_ts
        if metadata:
            params["metadata"] = metadata
        return str(self._call("chat.postMessage", **params)["ts"])

    def post_dm(self, user: str, text: str, *, metadata: dict[str, Any] | None = None) -> str:
        """Post a message in the bot's DM with a member and return the DM's channel ID (D…).

        The member's user ID is the channel: Slack opens the DM if it isn't open yet, so no
        conversations.open (Tier 3, 50+/min) is needed per member. No username or icon is
        passed: with those, a post to a user ID lands in their DM with Slackbot instead.
        https://docs.slack.dev/reference/methods/chat.postMessage (Post to a direct message channel)
        """
        params: dict[str, Any] = {"channel": user, "text": text, "unfurl_links": False}
        if metadata:
            params["metadata"] = metadata
        try:
            return str(self._call("chat.postMessage", **params).get("channel") or "")
        except SlackError as exc:
            if exc.code != "channel_not_found":
                raise
            # Slack's answer when it will not open a DM with that user; the channel hint would
            # point at STANDUP_CHANNEL.
            raise SlackError(
                f"Slack would not open a DM with member {user} (channel_not_found): check MEMBERS holds "
                "member IDs of this workspace",
                exc.code,
            ) from None

    def thread(self, channel: str, ts: str) -> list[dict[str, Any]]:
        """Return every message of a thread, parent first, following cursors.

        With their metadata: a report sent with the form is the bot's message, and only its
        `standup_report` metadata says whose report it is.
        """
        return list(
            # 1000 is the method's maximum; Slack answers with smaller pages where it must.
            self._pages(
                "conversations.replies", "messages", page_size=1000, channel=channel, ts=ts,
                include_all_metadata=True,
            )
        )

    def update_message(
        self, channel: str, ts: str, text: str, *, blocks: list[dict[str, Any]] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Replace the text, blocks and metadata of one of the bot's messages (chat.update)."""
        params: dict[str, Any] = {"channel": channel, "ts": ts, "text": text}
        if blocks:
            params["blocks"] = blocks
        if metadata:
            params["metadata"] = metadata
        self._call("chat.update", **params)

    def post_ephemeral(self, channel: str, user: str, text: str, *, thread_ts: str | None = None) -> None:
        """Show a message to one member of a channel only (chat.postEphemeral)."""
        params: dict[str, Any] = {"channel": channel, "user": user, "text": text}
        if thread_ts:
            params["thread_ts"] = thread_ts
        self._call("chat.postEphemeral", **params)

    def open_view(self, trigger_id: str, view: dict[str, Any]) -> dict[str, Any]:
        """Open a modal for the member who clicked; `trigger_id` is valid for 3 s (views.open)."""
        return dict(self._call("views.open", trigger_id=trigger_id, view=view).get("view") or {})

    def recent_messages(self, channel: str, oldest: str) -> list[dict[str, Any]]:
        """Return the channel's top-level messages since `oldest`, with their metadata."""
        return list(
            self._pages(
                "conversations.history", "messages", channel=channel, oldest=oldest,
                include_all_metadata=True,
            )
        )

    def channel_members(self, channel: str) -> list[str]:
        """Return the IDs of every member of a channel (bots included), following cursors."""
        return [str(m) for m in self._pages("conversations.members", "members", channel=channel)]

    def channel_info(self, channel: str) -> dict[str, Any]:
        """Return a channel's details (name, is_private, …)."""
        return dict(self._call("conversations.info", channel=channel).get("channel") or {})

    def user_info(self, user: str) -> dict[str, Any]:
        """Return a member's profile."""
        return dict(self._call("users.info", user=user).get("user") or {})

    def users_list(self, *, page_size: int = 1000) -> Iterator[dict[str, Any]]:
        """Yield every member of the workspace (profile, status and tz as users.info gives them).

        Page by page, lazily: a caller that has found what it needs stops asking for more.
        1,000 a page is the method's maximum; it is Tier 2 (20+/min), so one page replaces
        many Tier 4 users.info calls (https://api.slack.com/methods/users.list).
        """
        for user in self._pages("users.list", "members", page_size=page_size):
            if isinstance(user, dict):
                yield dict(user)

    def users_until_seen(self, wanted: Collection[str], *, max_read: int | None = None) -> Iterator[dict[str, Any]]:
        """Yield workspace members from users.list (each with an ID) until every one of `wanted`
        was seen, or `max_read` were read: in a large workspace a few strangers cost less one by one."""
        missing = set(wanted)
        read = 0
        for user in self.users_list():
            user_id = user.get("id")
            if not isinstance(user_id, str) or not user_id:
                continue
            yield user
            read += 1
            missing.discard(user_id)
            if not missing or (max_read is not None and read >= max_read):
                return

    def permalink(self, channel: str, ts: str) -> str:
        """Return a link to a message."""
        return str(self._call("chat.getPermalink", channel=channel, message_ts=ts)["permalink"])

    def open_dm(self, user: str) -> str:
        """Return the ID of the bot's direct-message channel with a member."""
        return str(self._call("conversations.open", users=user)["channel"]["id"])

    def add_reaction(self, channel: str, ts: str, name: str) -> None:
        """Add an emoji reaction to a message (already there counts as done)."""
        try:
            self._call("reactions.add", channel=channel, timestamp=ts, name=name)
        except SlackError as exc:
            if exc.code != "already_reacted":
                raise


def _is_user_id(value: str) -> bool:
    """Tell whether a channel argument is a member's ID (U…, or W… on Enterprise Grid)."""
    return value[:1] in ("U", "W") and value[1:].isalnum() and value.isupper()


def display_name(user: dict[str, Any]) -> str:
    """Return a member's Slack name: display name, else real name, else ID."""
    profile = user.get("profile") or {}
    for candidate in (profile.get("display_name"), profile.get("real_name"), user.get("real_name")):
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()
    return str(user.get("id") or "?")


def is_human(user: dict[str, Any]) -> bool:
    """Tell whether a member is a person who can report: not a bot, not deleted, not Slackbot."""
    return not (
        user.get("is_bot") or user.get("deleted") or user.get("is_app_user") or user.get("id") == SLACKBOT_ID
    )
