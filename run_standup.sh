#!/bin/sh
# The wrapper cron calls: ./run_standup.sh [run|prompt|remind|digest|check|demo] [--date D] [--force]
#
# Works from any working directory and in cron's bare environment: it finds its own
# directory, creates .venv from requirements.txt on first use, runs standup.py with the
# arguments given, and appends everything it prints to data/run_standup.log beside it
# (set STANDUP_LOG to log elsewhere). Exit code: standup.py's.
set -u
PATH=/usr/local/bin:/usr/bin:/bin:$PATH
umask 077
here=$(cd "$(dirname "$0")" && pwd -P) || exit 1
venv="$here/.venv"
log="${STANDUP_LOG:-$here/data/run_standup.log}"
mkdir -p "$(dirname "$log")" || exit 1

# The demo is the quick start: show its output on the terminal rather than in the log.
if [ "${1:-}" = "demo" ]; then
  log=/dev/null
fi

setup_venv() {
  python=$(command -v python3) || { echo "error: python3 not found (install Python 3.11+)"; return 1; }
  "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "error: $python is older than 3.11; install Python 3.11+"; return 1; }
  # Two first runs at once (cron overlap) must not build the venv together.
  (
    if command -v flock >/dev/null 2>&1; then flock 9; fi
    if [ ! -f "$venv/.installed" ] || [ "$here/requirements.txt" -nt "$venv/.installed" ]; then
      echo "setting up $venv (first run; takes a minute)"
      "$python" -m venv "$venv" \
        && "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt" \
        && touch "$venv/.installed"
    fi
  ) 9>"$here/.venv.lock"
}

run() {
  echo "=== $(date -u '+%Y-%m-%dT%H:%M:%SZ') run_standup.sh $*"
  setup_venv || return 1
  "$venv/bin/python" "$here/standup.py" "$@"
}

if [ "$log" = /dev/null ]; then
  run "$@"
  exit $?
fi
# Keep the exit code of standup.py through the pipe into tee (POSIX sh has no pipefail).
status_file=$(mktemp) || exit 1
{ run "$@"; echo $? >"$status_file"; } 2>&1 | tee -a "$log"
status=$(cat "$status_file"); rm -f "$status_file"
exit "${status:-1}"
