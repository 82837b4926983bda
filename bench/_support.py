"""Shared helpers for the benchmarks in bench/: machine info, statistics, tables, processes.

Not a benchmark itself. Each bench script puts the repo root on sys.path through this module,
so `.venv/bin/python bench/NAME.py` works from the repo root without installing anything.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PYTHON = sys.executable
TOKEN = "xoxb-bench-token"
SIGNING_SECRET = "bench-signing-secret"
CHANNEL = "C0BENCHSTANDUP"


# -- machine ---------------------------------------------------------------------------------
def machine_info() -> str:
    """Return one line: cores, CPU model, Python version, kernel."""
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"nproc={os.cpu_count()} cpu={model!r} python={platform.python_version()} "
        f"kernel={platform.release()}"
    )


# -- statistics ------------------------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float:
    """Return the q-th percentile (0..100) by the nearest-rank method."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(values: Iterable[float]) -> float:
    items = list(values)
    return statistics.median(items) if items else float("nan")


# -- output ----------------------------------------------------------------------------------
def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Return a Markdown table (also readable on a terminal)."""
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells]
    return "\n".join([line, sep, *body])


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}" if abs(value) >= 0.1 else f"{value:.3f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def header(title: str) -> None:
    print(f"## {title}")
    print(machine_info())
    print()


# -- processes -------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without Slack/SMTP/standup settings or proxies."""
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "SMTP_", "STANDUP_"))
        and k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
    }
    env.update(extra)
    return env


def bench_settings(sim: SimHost, data_dir: Path, **overrides: Any) -> dict[str, Any]:
    """Return a valid config for the bench: the simulator, its SMTP sink, the bench channel."""
    return {
        "SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": sim.base_url,
        "STANDUP_CHANNEL": CHANNEL, "TIMEZONE": "UTC", "SMTP_HOST": sim.smtp_host, "SMTP_PORT": sim.smtp_port,
        "SMTP_SECURITY": "none", "MAIL_FROM": "standup@bench.example", "DIGEST_RECIPIENTS": ["lead@bench.example"],
        "DATA_DIR": str(data_dir), **overrides,
    }


def write_config(directory: Path, **settings: Any) -> Path:
    """Write config.py with the secrets read from a .env beside it (as the README says)."""
    directory.mkdir(parents=True, exist_ok=True)
    secrets = {k: settings.pop(k) for k in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET") if k in settings}
    lines = ["import os"]
    lines += [f"{name} = os.environ.get({name!r}, '')" for name in secrets]
    lines += [f"{name} = {value!r}" for name, value in settings.items()]
    path = directory / "config.py"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (directory / ".env").write_text("".join(f"{k}={v}\n" for k, v in secrets.items()), encoding="utf-8")
    return path


def wait_http(url: str, timeout: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    """Wait until a GET of url answers (any HTTP status)."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before serving {url}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing answered at {url}") from None
            time.sleep(0.05)


def rss_kb(pid: int) -> int:
    """Return a process's resident set size (VmRSS) in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_seconds(pid: int) -> float:
    """Return the user + system CPU time a process (all its threads) has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    """Return the CPU time of this process's children that have been waited for."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM a process we started, then SIGKILL it if it lingers."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


class SimHost:
    """The Slack simulator and the SMTP sink in their own process (bench/_simhost.py).

    They run apart from the code being measured so that their own CPU time (the simulator
    answering, the sink parsing mail) does not compete for the measured process's GIL.
    Commands and answers are JSON lines over the child's stdin/stdout.
    """

    def __init__(self, **options: Any) -> None:
        self.proc = subprocess.Popen(
            [PYTHON, str(BENCH_DIR / "_simhost.py"), json.dumps({"token": TOKEN, **options})],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=sys.stderr, text=True,
            env=clean_env(), bufsize=1,
        )
        info = self.call("info")
        self.base_url: str = info["base_url"]
        self.smtp_host: str = info["smtp_host"]
        self.smtp_port: int = info["smtp_port"]

    def call(self, cmd: str, **args: Any) -> Any:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"cmd": cmd, **args}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"simulator host died during {cmd}")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"simulator host: {cmd}: {answer['error']}")
        return answer["result"]

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(RuntimeError, OSError, ValueError):
                self.call("stop")
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> SimHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def member_ids(count: int, prefix: str = "UB") -> list[str]:
    """Return `count` member IDs that pass MEMBERS validation (U + capitals/digits)."""
    return [f"{prefix}{i:06d}" for i in range(count)]
