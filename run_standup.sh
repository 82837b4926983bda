#!/bin/sh
# The wrapper cron calls: ./run_standup.sh [run|prompt|remind|digest|check|demo] [--date D] [--force]
#
# Works from any working directory and in cron's bare environment: it finds its own
# directory, creates .venv from requirements.txt on first use, runs standup.py with the
# arguments given, and appends everything it prints to data/run_standup.log beside it
# (set STANDUP_LOG to log elsewhere; run from a terminal, the output is shown too).
# Exit code: standup.py's.
set -u
PATH=/usr/local/bin:/usr/bin:/bin${PATH:+:$PATH}  # ${PATH:+…}: set -u, and no empty entry (= cwd)
export PATH
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
  # Two first runs at once (cron overlap) must not build the venv together.
  (
    if command -v flock >/dev/null 2>&1; then flock 9; fi
    # Create the venv only when it is missing: `python3 -m venv` over an existing one re-points
    # it at whichever python3 comes first on this PATH (cron's, not the login shell's) and
    # can leave it broken.
    if [ ! -x "$venv/bin/python" ]; then
      python=$(command -v python3) || { echo "error: python3 not found (install Python 3.11+)"; exit 1; }
      "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || { echo "error: $python is older than 3.11; install Python 3.11+"; exit 1; }
      echo "setting up $venv (first run; takes a minute)"
      # A half-made venv would be taken for a finished one next time: remove it.
      "$python" -m venv "$venv" \
        || { rm -rf "$venv"; echo "error: $python -m venv failed (Debian/Ubuntu: apt install python3-venv)"; exit 1; }
    fi
    if [ ! -f "$venv/.installed" ] || [ "$here/requirements.txt" -nt "$venv/.installed" ]; then
      echo "installing $here/requirements.txt into $venv"
      "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt" \
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
# Under cron (no terminal) everything goes to the log only, so cron mails nothing; by
# hand it is shown as well.
if [ ! -t 1 ]; then
  run "$@" >>"$log" 2>&1
  exit $?
fi
# Keep the exit code of standup.py through the pipe into tee (POSIX sh has no pipefail).
status_file=$(mktemp) || exit 1
{ run "$@"; echo $? >"$status_file"; } 2>&1 | tee -a "$log"
status=$(cat "$status_file"); rm -f "$status_file"
exit "${status:-1}"
