"""standup bot settings. Copy this file to config.py and edit it.

    cp config_EDIT_ME.py config.py && chmod 600 config.py

Secrets never go in this file: put them in `.env` beside it (chmod 600), e.g.

    SLACK_BOT_TOKEN=xoxb-...
    SLACK_SIGNING_SECRET=...        # only for the listener in HTTP mode
    SLACK_APP_TOKEN=xapp-...        # only for the listener in Socket Mode
    SMTP_PASSWORD=...

`.env` is loaded before this file runs; real environment variables win over it.
Check everything with:  python standup.py check
"""

import os

# --- Slack ------------------------------------------------------------------------------
# Bot User OAuth Token (xoxb-…), from your Slack app's "OAuth & Permissions" page.
SLACK_BOT_TOKEN = os.environ.get("SLACK_BOT_TOKEN", "")

# Signing secret ("Basic Information" → App Credentials). Needed only by listener.py in
# HTTP mode, to verify that requests come from Slack.
SLACK_SIGNING_SECRET = os.environ.get("SLACK_SIGNING_SECRET", "")

# App-level token (xapp-…, scope connections:write). When set, listener.py uses Socket
# Mode: no public URL needed. Leave empty for HTTP mode.
SLACK_APP_TOKEN = os.environ.get("SLACK_APP_TOKEN", "")

# Base URL of the Slack Web API. Change it only for a proxy or a local simulator.
SLACK_API_URL = os.environ.get("SLACK_API_URL", "https://slack.com/api/")

# The channel ID (C… or G…, not its name) where the prompt is posted. In Slack: open the
# channel, click its name, the Channel ID is at the bottom. Invite the bot: /invite @standup
STANDUP_CHANNEL = "C0123456789"

# Member IDs expected to report (profile → ⋮ → "Copy member ID"). Empty: every human
# member of the channel (not bots, not deactivated accounts; guests count).
# People who reply but are not listed still appear in the digest; they are never reminded.
MEMBERS: list[str] = []

# The questions of the prompt, in order. The one that mentions blockers (else the last)
# is the blockers question.
QUESTIONS = [
    "What did you do yesterday?",
    "What will you do today?",
    "Anything blocking you?",
]

# Member IDs (e.g. the team lead) who get a DM for each report whose blockers answer is
# not empty ("none", "n/a", "-", "nothing", … count as empty), with the blocker and a link
# to the reply: once per report, and an update when the blocker is edited. Empty: no DMs.
BLOCKER_CONTACTS: list[str] = []

# --- Time -------------------------------------------------------------------------------
# IANA time zone in which the times below are read (and "today" is decided).
TIMEZONE = "UTC"

# Local times (24-hour HH:MM) of the three stages; `run` waits for them.
PROMPT_TIME = "10:00"
REMIND_TIME = "11:30"
DIGEST_TIME = "12:00"

# Distributed team: remind each member at REMIND_TIME in their own Slack time zone (when
# that is before the digest); members whose day starts after the digest are "not yet due".
PER_MEMBER_TIMEZONE = False

# Days with a standup (any set of weekdays, e.g. ["sun", "mon", "tue", "wed", "thu"]).
# On other days (and on HOLIDAYS and SKIP_DATES) `run` and `schedule` do nothing, and
# prompt/remind/digest refuse unless given --force.
WORKDAYS = ["mon", "tue", "wed", "thu", "fri"]

# Public holidays without a standup: a country code, optionally with a subdivision, as
# the `holidays` library knows them: "DE", "DE-BY", "US-CA", "GB-SCT". Empty: none.
HOLIDAYS = ""

# Company days off without a standup, as ISO dates.
SKIP_DATES: list[str] = []  # e.g. ["2026-12-24", "2026-12-31"]

# Slack status emoji and words that mean "away today" (not reminded, shown as away in the
# digest). Leave this line out for the built-in list (🌴 ✈️ 🤒, vacation, OOO, sick, PTO, …);
# [] turns it off.
# AWAY_STATUS = [":palm_tree:", ":face_with_thermometer:", "vacation", "ooo", "sick"]

# --- Mail -------------------------------------------------------------------------------
SMTP_HOST = "smtp.example.com"
SMTP_PORT = 587
# Login; leave SMTP_USER empty for a relay without authentication.
SMTP_USER = os.environ.get("SMTP_USER", "")
SMTP_PASSWORD = os.environ.get("SMTP_PASSWORD", "")
# "starttls" (port 587), "ssl" (port 465) or "none" (a local relay on port 25).
SMTP_SECURITY = "starttls"

MAIL_FROM = "standup-bot@example.com"
DIGEST_RECIPIENTS = ["manager@example.com"]

# Replies posted, edited or deleted after the digest went out are emailed to the same
# recipients as an addendum (`standup.py addendum`; `schedule` runs it on its own): only
# what changed, never for nothing, and at most once per this many minutes.
ADDENDUM_INTERVAL = 60

# --- Sanity checks (after each digest; `standup.py checks` lists what they found) -------
# "missed_standups": a member without a report at SANITY_MISSED_DAYS standups in a row
#   (days away not counted): a DM to BLOCKER_CONTACTS with a "Mark handled" button.
# "same_blocker": the same blocker (by similarity) in SANITY_BLOCKER_DAYS reports in a row:
#   the digest says "Blocked for N days", and BLOCKER_CONTACTS get a DM.
# "nobody_answered": nobody reported at all: a note under that day's prompt.
SANITY_CHECKS = ["missed_standups", "same_blocker", "nobody_answered"]
SANITY_MISSED_DAYS = 3
SANITY_BLOCKER_DAYS = 3
# The same finding (the same member, the same blocker) is not raised again for this many days.
SANITY_REPEAT_DAYS = 7

# --- Behaviour --------------------------------------------------------------------------
# Add a ✅ reaction to each reply the listener records, so people see it counted.
CONFIRM_WITH_REACTION = True

# Seconds to wait for one Slack API call / the mail server before giving up (then retried).
SLACK_TIMEOUT = 15
SMTP_TIMEOUT = 30

# --- State ------------------------------------------------------------------------------
# Where the SQLite database and the logs live (created with mode 700). Relative paths are
# read from this file's directory.
DATA_DIR = "data"

# --- Monitoring -------------------------------------------------------------------------
# Optional: a healthchecks.io-style check URL, pinged after each stage: the URL itself on
# success, URL + "/fail" (with the reason) on failure. Set the check's schedule to your
# standup days so you are alerted when a stage failed or never ran. Empty: no pings.
HEALTHCHECK_URL = os.environ.get("HEALTHCHECK_URL", "")
