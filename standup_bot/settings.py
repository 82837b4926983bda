"""Load `config.py` (after `.env`), validate every setting, and freeze them into `Settings`.

This is the only module that reads the environment or the config file. Every problem is
collected and reported at once, one line per setting, so a user fixes them in one pass.
"""

from __future__ import annotations

import datetime as dt
import difflib
import importlib.util
import math
import os
import re
import types
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .calendar_days import WEEKDAYS, StandupCalendar, holiday_region_problem
from .errors import ConfigError

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_QUESTIONS = (
    "What did you do yesterday?",
    "What will you do today?",
    "Anything blocking you?",
)
SMTP_SECURITY_MODES = ("starttls", "ssl", "none")
# Slack status emoji (":name:") and words that mean "away today".
DEFAULT_AWAY_STATUS = (
    ":palm_tree:", ":airplane:", ":desert_island:", ":beach_with_umbrella:", ":face_with_thermometer:",
    ":thermometer:", ":mask:", ":sick:", ":baby:",
    "vacation", "vacationing", "holiday", "holidays", "on leave", "parental leave", "ooo",
    "out of office", "out of the office", "pto", "sick", "out sick", "off today", "day off",
    "urlaub", "krank", "abwesend",
)

# The sanity checks run after each digest (SANITY_CHECKS names those wanted).
SANITY_CHECK_NAMES = ("missed_standups", "same_blocker", "nobody_answered")

_CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{6,}$")
_MEMBER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
# The whole value: urllib refuses a URL with whitespace or a control character anywhere in it.
_HTTP_URL = re.compile(r"https?://[^\s/\x00-\x1f\x7f]+[^\s\x00-\x1f\x7f]*")
# Deliberately loose: one @, no spaces or angle brackets, a dot in the domain. The mail
# server is the real judge; this catches typos like a missing @ or a trailing comma.
# Control characters are refused too: a NUL or an escape sequence is never part of an address.
_ADDRESS_PART = r"[^@\s<>,;\"\x00-\x1f\x7f-\x9f]+"
_ADDRESS = re.compile(rf"^{_ADDRESS_PART}@{_ADDRESS_PART}\.{_ADDRESS_PART}$")


@dataclass(frozen=True)
class Settings:
    """Every setting, validated. Built once by `load_settings` and passed in explicitly."""

    slack_bot_token: str = field(repr=False)
    standup_channel: str
    smtp_host: str
    mail_from: str
    digest_recipients: tuple[str, ...]
    data_dir: Path
    slack_signing_secret: str = field(default="", repr=False)
    slack_app_token: str = field(default="", repr=False)
    slack_api_url: str = "https://slack.com/api/"
    members: tuple[str, ...] = ()
    blocker_contacts: tuple[str, ...] = ()  # member IDs who get a DM about each blocker
    questions: tuple[str, ...] = DEFAULT_QUESTIONS
    timezone: str = "UTC"
    prompt_time: dt.time = dt.time(10, 0)
    remind_time: dt.time = dt.time(11, 30)
    digest_time: dt.time = dt.time(12, 0)
    workdays: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri")
    holidays: str = ""  # country[-subdivision] code for the holidays library, e.g. "DE-BY"
    skip_dates: tuple[dt.date, ...] = ()
    away_status: tuple[str, ...] = DEFAULT_AWAY_STATUS
    per_member_timezone: bool = False
    smtp_port: int = 587
    smtp_user: str = ""
    smtp_password: str = field(default="", repr=False)
    smtp_security: str = "starttls"
    confirm_with_reaction: bool = True
    healthcheck_url: str = field(default="", repr=False)
    slack_timeout: float = 15.0
    smtp_timeout: float = 30.0
    addendum_interval: int = 60  # minutes between two addendum emails at least
    sanity_checks: tuple[str, ...] = SANITY_CHECK_NAMES
    sanity_missed_days: int = 3
    sanity_blocker_days: int = 3
    sanity_repeat_days: int = 7
    config_path: Path | None = None

    @property
    def zone(self) -> ZoneInfo:
        """Return the team's time zone."""
        return ZoneInfo(self.timezone)

    @property
    def calendar(self) -> StandupCalendar:
        """Return the team's standup dates (WORKDAYS, HOLIDAYS, SKIP_DATES)."""
        return StandupCalendar(self.workdays, self.holidays, frozenset(self.skip_dates))

    @property
    def db_path(self) -> Path:
        """Return the SQLite file that holds all state."""
        return self.data_dir / "standup.db"

    def secrets(self) -> tuple[str, ...]:
        """Return the secret values, so logs and messages can be scrubbed of them."""
        values = (
            self.slack_bot_token,
            self.slack_signing_secret,
            self.slack_app_token,
            self.smtp_password,
        )
        return tuple(v for v in values if v)


# name -> (default, parser). A parser returns the clean value or raises ValueError whose
# message completes "NAME: ...". `...` as default means required.
_Parser = Callable[[Any], Any]


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, not {type(value).__name__}")
    return value.strip()


def _required_text(value: Any) -> str:
    text = _text(value)
    if not text:
        raise ValueError("is empty")
    return text


def _bot_token(value: Any) -> str:
    token = _text(value)
    if not token:
        raise ValueError(
            "is empty: put the Bot User OAuth Token (xoxb-…) from your Slack app's "
            "'OAuth & Permissions' page in .env as SLACK_BOT_TOKEN=xoxb-…"
        )
    if not token.startswith("xoxb-"):
        raise ValueError("must be a bot token starting with xoxb- (not a user or app token)")
    return token


def _app_token(value: Any) -> str:
    token = _text(value)
    if token and not token.startswith("xapp-"):
        raise ValueError(
            "must be an app-level token starting with xapp- (Basic Information → "
            "App-Level Tokens, scope connections:write), or empty for HTTP mode"
        )
    return token


def _url(value: Any) -> str:
    url = _text(value)
    if not _HTTP_URL.fullmatch(url):
        raise ValueError(f"must be an http(s) URL like https://slack.com/api/, not {url!r}")
    return url if url.endswith("/") else url + "/"


def _optional_url(value: Any) -> str:
    url = _text(value)
    if url and not _HTTP_URL.fullmatch(url):
        raise ValueError(f"must be an http(s) URL like https://hc-ping.com/<uuid>, or empty, not {url!r}")
    return url


def _channel(value: Any) -> str:
    channel = _text(value)
    if _CHANNEL_ID.match(channel):
        return channel
    if not channel:
        raise ValueError("is empty: set it to the ID of the standup channel (C…)")
    raise ValueError(
        f"{channel!r} is not a channel ID: use the ID (C… or G…), not the name; in Slack, "
        "open the channel, click its name, and copy the Channel ID at the bottom"
    )


def _id_list(pattern: re.Pattern[str], example: str) -> _Parser:
    def parse(value: Any) -> tuple[str, ...]:
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise ValueError(f"must be a list of member IDs, e.g. [{example!r}]")
        bad = [v for v in value if not (isinstance(v, str) and pattern.match(v.strip()))]
        if bad:
            raise ValueError(
                f"{bad[0]!r} is not a member ID (U… or W…); in Slack, open the person's "
                "profile, click ⋮ and 'Copy member ID'"
            )
        return tuple(dict.fromkeys(v.strip() for v in value))

    return parse


def _questions(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ValueError('must be a list of strings, e.g. ["What did you do yesterday?", …]')
    questions = tuple(q.strip() for q in value if isinstance(q, str) and q.strip())
    if len(questions) != len(value) or not questions:
        raise ValueError("must be a non-empty list of non-empty strings")
    return questions


def _timezone(value: Any) -> str:
    name = _text(value)
    try:
        ZoneInfo(name)
    # OSError: a directory of the zone database ("Europe") or a name too long for a file.
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"unknown time zone {name!r}: use an IANA name such as 'Europe/Berlin' or "
            "'America/New_York'"
        ) from None
    return name


def _clock(value: Any) -> dt.time:
    text = _text(value)
    match = _TIME.match(text)
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise ValueError(f"{text!r} is not a time of day: use 24-hour HH:MM, e.g. '10:00'")
    return dt.time(int(match[1]), int(match[2]))


def _workdays(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ValueError('must be a list of weekdays, e.g. ["mon", "tue", "wed", "thu", "fri"]')
    days = [str(v).strip().lower()[:3] for v in value]
    bad = [v for v, d in zip(value, days, strict=True) if d not in WEEKDAYS]
    if bad:
        raise ValueError(f"{bad[0]!r} is not a weekday: use mon, tue, wed, thu, fri, sat, sun")
    if not days:
        raise ValueError("is empty: name at least one weekday")
    return tuple(d for d in WEEKDAYS if d in days)


def _holiday_region(value: Any) -> str:
    code = _text(value).upper()
    if code:
        problem = holiday_region_problem(code)
        if problem:
            raise ValueError(problem)
    return code


def _dates(value: Any) -> tuple[dt.date, ...]:
    if isinstance(value, str) or not isinstance(value, (list, tuple, set, frozenset)):
        raise ValueError('must be a list of ISO dates, e.g. ["2026-12-24", "2026-12-31"]')
    dates = []
    for item in value:
        if isinstance(item, dt.date) and not isinstance(item, dt.datetime):
            dates.append(item)
            continue
        try:
            dates.append(dt.date.fromisoformat(str(item).strip()))
        except ValueError:
            raise ValueError(f"{item!r} is not a date: use YYYY-MM-DD") from None
    return tuple(sorted(set(dates)))


def _away_status(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ValueError('must be a list of status emoji and words, e.g. [":palm_tree:", "vacation"]')
    bad = [v for v in value if not isinstance(v, str) or not v.strip()]
    if bad:
        raise ValueError(f"{bad[0]!r} is not a status emoji (':palm_tree:') or word")
    return tuple(dict.fromkeys(v.strip().lower() for v in value))


def _port(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError("must be a port number such as 587")
    try:
        port = int(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a port number") from None
    if not 0 < port < 65536:
        raise ValueError(f"{port} is not a port number (1-65535)")
    return port


def _security(value: Any) -> str:
    mode = _text(value).lower()
    if mode not in SMTP_SECURITY_MODES:
        raise ValueError(f"{mode!r} is not one of 'starttls', 'ssl', 'none'")
    return mode


def _address(value: Any) -> str:
    address = _text(value)
    if not _ADDRESS.match(address):
        raise ValueError(f"{address!r} is not an email address")
    return address


def _addresses(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ValueError('must be a list of addresses, e.g. ["lead@example.com"]')
    if not value:
        raise ValueError("is empty: list at least one address that receives the digest")
    bad = [v for v in value if not (isinstance(v, str) and _ADDRESS.match(v.strip()))]
    if bad:
        raise ValueError(f"{bad[0]!r} is not an email address")
    return tuple(dict.fromkeys(v.strip() for v in value))


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be True or False, not {value!r}")
    return value


def _seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"must be a positive number of seconds, not {value!r}")
    try:
        seconds = float(value)
    except OverflowError:  # an int beyond float's range
        seconds = math.inf
    # nan and inf pass a `<= 0` test, but no socket takes them as a timeout.
    if not 0 < seconds < math.inf:
        raise ValueError(f"must be a positive number of seconds, not {value!r}")
    return seconds


def _whole_number(unit: str, minimum: int) -> _Parser:
    def parse(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"must be a whole number of {unit}, at least {minimum}, not {value!r}")
        return value

    return parse


def _sanity_checks(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ValueError(f"must be a list of check names, e.g. {list(SANITY_CHECK_NAMES)!r}")
    bad = [v for v in value if v not in SANITY_CHECK_NAMES]
    if bad:
        raise ValueError(f"{bad[0]!r} is not a check: use {', '.join(SANITY_CHECK_NAMES)}")
    return tuple(name for name in SANITY_CHECK_NAMES if name in value)


def _path(value: Any) -> Path:
    if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        raise ValueError("must be a directory path")
    return Path(value).expanduser()


SECRET_SETTINGS = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "SMTP_PASSWORD")
_REQUIRED = ...
SETTINGS: Mapping[str, tuple[Any, _Parser]] = {
    "SLACK_BOT_TOKEN": (_REQUIRED, _bot_token),
    "SLACK_SIGNING_SECRET": ("", _text),
    "SLACK_APP_TOKEN": ("", _app_token),
    "SLACK_API_URL": ("https://slack.com/api/", _url),
    "STANDUP_CHANNEL": (_REQUIRED, _channel),
    "MEMBERS": ((), _id_list(_MEMBER_ID, "U012AB3CD")),
    "BLOCKER_CONTACTS": ((), _id_list(_MEMBER_ID, "U012AB3CD")),
    "QUESTIONS": (DEFAULT_QUESTIONS, _questions),
    "TIMEZONE": ("UTC", _timezone),
    "PROMPT_TIME": ("10:00", _clock),
    "REMIND_TIME": ("11:30", _clock),
    "DIGEST_TIME": ("12:00", _clock),
    "WORKDAYS": (("mon", "tue", "wed", "thu", "fri"), _workdays),
    "HOLIDAYS": ("", _holiday_region),
    "SKIP_DATES": ((), _dates),
    "AWAY_STATUS": (DEFAULT_AWAY_STATUS, _away_status),
    "PER_MEMBER_TIMEZONE": (False, _boolean),
    "SMTP_HOST": (_REQUIRED, _required_text),
    "SMTP_PORT": (587, _port),
    "SMTP_USER": ("", _text),
    "SMTP_PASSWORD": ("", _text),
    "SMTP_SECURITY": ("starttls", _security),
    "MAIL_FROM": (_REQUIRED, _address),
    "DIGEST_RECIPIENTS": (_REQUIRED, _addresses),
    "DATA_DIR": (None, _path),
    "CONFIRM_WITH_REACTION": (True, _boolean),
    "HEALTHCHECK_URL": ("", _optional_url),
    "SLACK_TIMEOUT": (15.0, _seconds),
    "SMTP_TIMEOUT": (30.0, _seconds),
    "ADDENDUM_INTERVAL": (60, _whole_number("minutes", 1)),
    "SANITY_CHECKS": (SANITY_CHECK_NAMES, _sanity_checks),
    "SANITY_MISSED_DAYS": (3, _whole_number("standups", 1)),
    "SANITY_BLOCKER_DAYS": (3, _whole_number("reports", 2)),
    "SANITY_REPEAT_DAYS": (7, _whole_number("days", 1)),
}


def default_config_path(environ: Mapping[str, str]) -> Path:
    """Return where the config lives when `--config` is not given."""
    from_env = environ.get("STANDUP_CONFIG", "").strip()
    return Path(from_env).expanduser() if from_env else PROJECT_DIR / "config.py"


def load_settings(config_path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Load `.env` beside the config, import the config, and validate every setting."""
    environ = os.environ if environ is None else environ
    path = (config_path or default_config_path(environ)).expanduser()
    if not path.is_file():
        hint = " (copy config_EDIT_ME.py to config.py and edit it)" if path.name == "config.py" else ""
        raise ConfigError([f"config file {path} not found{hint}"])
    _load_dotenv(path.parent / ".env")
    _load_secret_files(os.environ)
    namespace = _import_config(path)
    return settings_from_mapping(namespace, base_dir=path.resolve().parent, config_path=path)


def _load_dotenv(path: Path) -> None:
    if path.is_file():
        from dotenv import load_dotenv

        # Real environment variables win over .env, as systemd and cron users expect.
        load_dotenv(path, override=False)


def _read_secret_file(name: str, path: object) -> str:
    try:
        # One trailing newline is an artefact of `echo … > file`, not part of the secret.
        return Path(str(path)).expanduser().read_text(encoding="utf-8").removesuffix("\n").removesuffix("\r")
    except OSError as exc:
        raise ConfigError([f"{name}_FILE: cannot read {path}: {exc.strerror}"]) from None


def _load_secret_files(environ: MutableMapping[str, str]) -> None:
    """Set each secret NAME from the file named by NAME_FILE (systemd/Docker credentials)."""
    problems: list[str] = []
    for name in SECRET_SETTINGS:
        path = environ.get(f"{name}_FILE", "").strip()
        if path and not environ.get(name):
            try:
                environ[name] = _read_secret_file(name, path)
            except ConfigError as exc:
                problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)


def _import_config(path: Path) -> dict[str, Any]:
    spec = importlib.util.spec_from_file_location("standup_user_config", path)
    if spec is None or spec.loader is None:
        raise ConfigError([f"config file {path} cannot be loaded as Python"])
    module = types.ModuleType(spec.name)
    module.__file__ = str(path)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise ConfigError([f"config file {path}, line {exc.lineno}: {exc.msg}"]) from None
    except Exception as exc:  # a config file can raise anything; report it as one line
        raise ConfigError([f"config file {path} failed to load: {type(exc).__name__}: {exc}"]) from None
    return {name: getattr(module, name) for name in dir(module) if name.isupper()}


def settings_from_mapping(
    values: Mapping[str, Any], *, base_dir: Path = PROJECT_DIR, config_path: Path | None = None
) -> Settings:
    """Validate UPPER_CASE settings from a mapping; raise ConfigError listing every problem."""
    problems: list[str] = []
    clean: dict[str, Any] = {}
    values = dict(values)
    for name in SECRET_SETTINGS:
        if values.get(f"{name}_FILE") and not values.get(name):
            try:
                values[name] = _read_secret_file(name, values[f"{name}_FILE"])
            except ConfigError as exc:
                problems.extend(exc.problems)
    for name, (default, parse) in SETTINGS.items():
        if name not in values or (default is _REQUIRED and values[name] in (None, "")):
            if default is _REQUIRED:
                problems.append(f"{name}: missing (required; see config_EDIT_ME.py)")
                continue
            if default is None:
                continue
            clean[name] = parse(default)
            continue
        try:
            clean[name] = parse(values[name])
        except ValueError as exc:
            problems.append(f"{name}: {exc}")
    for name in sorted(set(values) - set(SETTINGS)):
        if name.startswith("_") or name.removesuffix("_FILE") in SECRET_SETTINGS:
            continue
        close = difflib.get_close_matches(name, SETTINGS, n=1)
        if close:
            problems.append(f"{name}: unknown setting; did you mean {close[0]}?")
    times = [clean.get(n) for n in ("PROMPT_TIME", "REMIND_TIME", "DIGEST_TIME")]
    if all(times) and not times[0] < times[1] < times[2]:
        problems.append("REMIND_TIME: must be after PROMPT_TIME and before DIGEST_TIME")
    if problems:
        raise ConfigError(problems)
    data_dir = clean.get("DATA_DIR") or PROJECT_DIR / "data"
    if not data_dir.is_absolute():
        data_dir = base_dir / data_dir
    return Settings(
        slack_bot_token=clean["SLACK_BOT_TOKEN"],
        slack_signing_secret=clean["SLACK_SIGNING_SECRET"],
        slack_app_token=clean["SLACK_APP_TOKEN"],
        slack_api_url=clean["SLACK_API_URL"],
        standup_channel=clean["STANDUP_CHANNEL"],
        members=clean["MEMBERS"],
        blocker_contacts=clean["BLOCKER_CONTACTS"],
        questions=clean["QUESTIONS"],
        timezone=clean["TIMEZONE"],
        prompt_time=clean["PROMPT_TIME"],
        remind_time=clean["REMIND_TIME"],
        digest_time=clean["DIGEST_TIME"],
        workdays=clean["WORKDAYS"],
        holidays=clean["HOLIDAYS"],
        skip_dates=clean["SKIP_DATES"],
        away_status=clean["AWAY_STATUS"],
        per_member_timezone=clean["PER_MEMBER_TIMEZONE"],
        smtp_host=clean["SMTP_HOST"],
        smtp_port=clean["SMTP_PORT"],
        smtp_user=clean["SMTP_USER"],
        smtp_password=clean["SMTP_PASSWORD"],
        smtp_security=clean["SMTP_SECURITY"],
        mail_from=clean["MAIL_FROM"],
        digest_recipients=clean["DIGEST_RECIPIENTS"],
        data_dir=data_dir,
        confirm_with_reaction=clean["CONFIRM_WITH_REACTION"],
        healthcheck_url=clean["HEALTHCHECK_URL"],
        slack_timeout=clean["SLACK_TIMEOUT"],
        smtp_timeout=clean["SMTP_TIMEOUT"],
        addendum_interval=clean["ADDENDUM_INTERVAL"],
        sanity_checks=clean["SANITY_CHECKS"],
        sanity_missed_days=clean["SANITY_MISSED_DAYS"],
        sanity_blocker_days=clean["SANITY_BLOCKER_DAYS"],
        sanity_repeat_days=clean["SANITY_REPEAT_DAYS"],
        config_path=config_path,
    )
