"""The embedded LLM's install check: in a process of its own, load the model, read a prompt of
about 100 tokens and write 8. A llama.cpp build that this CPU (or its hypervisor) refuses dies
there with a signal; the check then fails with one message that names the signal, the CPU
flags that matter and what to do. `make install` ends with it, so `make run` and `make test`
never start on a broken build.

    python -m bot.models.selftest
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.errors import BotError
from bot.models.cpu import (
    build_info,
    machine,
    matching_cmake_args,
    notable_flags,
    signal_words,
    x86_64_args,
)

PROMPT = (
    "Hai Phong is a port city in the north of Vietnam, on the delta of the Red River, about a "
    "hundred kilometres east of Hanoi. Its port handles a large share of the country's "
    "container traffic, and its industrial zones have drawn factories that make electronics, "
    "cars and steel. The city council has planned new bridges, a wider airport and a rail line "
    "to the capital. Question: in one short sentence, what kind of city is Hai Phong?"
)
WRITE_TOKENS = 8
TIMEOUT_S = 600.0  # a run that has not finished by then is stuck


@dataclass(frozen=True)
class Passed:
    prompt_tokens: int
    read_s: float
    written: int
    write_s: float
    text: str

    def line(self) -> str:
        return (
            f"The embedded LLM works on this CPU: it read {self.prompt_tokens} tokens in "
            f"{self.read_s:.1f} s and wrote {self.written} in {self.write_s:.1f} s "
            f"({self.text.strip()!r})."
        )


def runner_command(gguf: Path, threads: int) -> list[str]:
    """The process that runs the model: this module with --run."""
    return [
        sys.executable,
        "-m",
        "bot.models.selftest",
        "--run",
        str(gguf),
        "--threads",
        str(threads),
    ]


def run_model(gguf: Path, threads: int) -> None:
    """The runner: prints what it is doing, then the figures, one JSON object a line."""
    faulthandler.enable()

    def say(**fields: object) -> None:
        print(json.dumps(fields), flush=True)

    say(stage="loading the model", build=build_info())
    import llama_cpp

    started = time.perf_counter()
    llama = llama_cpp.Llama(model_path=str(gguf), n_ctx=512, n_threads=threads, verbose=False)
    tokens = llama.tokenize(PROMPT.encode())
    say(stage=f"reading a {len(tokens)}-token prompt", load_s=time.perf_counter() - started)
    started, first, written = time.perf_counter(), 0.0, list[int]()
    for token in llama.generate(tokens, temp=0.0):  # the prompt is read before the first token
        if not written:
            first = time.perf_counter()
            say(stage=f"writing {WRITE_TOKENS} tokens")
        written.append(token)
        if len(written) >= WRITE_TOKENS:
            break
    read_s = first - started
    text = llama.detokenize(written).decode(errors="replace")
    say(
        prompt_tokens=len(tokens),
        read_s=read_s,
        written=len(written),
        write_s=time.perf_counter() - started,
        text=text,
    )


def check(command: list[str], timeout: float = TIMEOUT_S) -> Passed:
    """Run the model runner `command`; its figures, or a BotError that says what went wrong."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BotError(
            f"The embedded LLM's install check did not finish within {timeout:.0f} s."
        ) from None
    said = [_json(line) for line in done.stdout.splitlines()]
    said = [fields for fields in said if fields]
    if done.returncode == 0 and said and "written" in said[-1]:
        last = said[-1]
        return Passed(
            int(last["prompt_tokens"]),
            float(last["read_s"]),
            int(last["written"]),
            float(last["write_s"]),
            str(last["text"]),
        )
    stage = next((str(f["stage"]) for f in reversed(said) if "stage" in f), "starting")
    build = next((str(f["build"]) for f in said if "build" in f), "")
    raise BotError(crash_message(done.returncode, stage, build, done.stderr or done.stdout))


def _json(line: str) -> dict[str, Any]:
    try:
        found = json.loads(line)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def crash_message(returncode: int, stage: str, build: str, output: str) -> str:
    """One message: what happened, what this CPU advertises, what the build holds, what to do."""
    lines = [
        f"The embedded LLM failed its install check ({signal_words(returncode)}) while {stage}.",
        f"CPU flags that matter here: {notable_flags()}.",
    ]
    if build:
        lines.append(f"The installed llama.cpp was built for: {build}")
    lines.append(f"What to do: {advice(build) if returncode < 0 else NOT_A_CRASH}")
    tail = "\n".join(output.strip().splitlines()[-12:])
    if tail:
        lines.append(f"Its last words:\n{tail}")
    return "\n".join(lines)


OTHER = "or set LLM_BASE_URL to use another OpenAI-compatible server (no local model then)."
NOT_A_CRASH = f"its last words below say what failed; `make clean install` installs anew; {OTHER}"


def advice(build: str) -> str:
    """What to do when the model runner was killed by a signal, by what the build holds and
    what this CPU advertises."""
    other = OTHER
    if "AMX_INT8 = 1" in build or "AVX512 = 1" in build:
        return (
            f"this build is not the portable one (it uses AMX or AVX-512): `make install "
            f"LLAMA_BUILD=portable` builds and installs the portable one; {other}"
        )
    below = matching_cmake_args()
    if below is not None:
        return (
            f"this CPU lacks part of the x86-64-v3 baseline: rebuild for it with `make "
            f'install LLAMA_CMAKE_ARGS="{" ".join(below)}"` (slower); {other}'
        )
    if machine() == "x86_64":
        sse = " ".join(x86_64_args(["SSE42"]))
        return (
            f"check `dmesg` for the fault; rebuild with fewer instructions, `make install "
            f'LLAMA_CMAKE_ARGS="{sse}"` (SSE 4.2 only, several times slower); {other}'
        )
    return f"check `dmesg` for the fault; rebuild with LLAMA_CMAKE_ARGS; {other}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runner", help="run this command instead of the model (tests)")
    parser.add_argument("--run", type=Path, help=argparse.SUPPRESS)  # the runner itself
    parser.add_argument("--threads", type=int, default=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run:
        run_model(args.run, args.threads)
        return 0
    from bot.models.llm import llm_kind
    from bot.models.local_llm import ensure_gguf
    from bot.settings import Settings

    settings = Settings()
    if args.runner:
        command = shlex.split(args.runner)
    else:
        command = runner_command(ensure_gguf(settings.model_dir), settings.llm_threads)
    try:
        print(check(command).line())
    except BotError as exc:
        print(exc, file=sys.stderr)
        if llm_kind(settings) != "local":
            print(
                "The settings name another LLM (LLM_BASE_URL / LLM_BACKEND), so the app does "
                "not need the embedded one: the install goes on.",
                file=sys.stderr,
            )
            return 0
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
