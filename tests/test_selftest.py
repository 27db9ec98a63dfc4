"""The install's check of the embedded LLM (bot.models.selftest): a stand-in model runner that
dies of SIGSEGV while it reads the prompt, as llama.cpp built with AMX does where the
hypervisor refuses AMX, fails the check with one message that says what happened and what to
do; the real model passes it."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from bot.errors import BotError
from bot.models.selftest import check
from tests.conftest import ROOT

# says what it does as the real runner does, then takes a real segmentation fault
BUILD = "CPU : SSE3 = 1 | AVX2 = 1 | AMX_INT8 = 1 | AVX512 = 1 |"
CRASHING = (
    "import ctypes, json\n"
    f"print(json.dumps({{'stage': 'loading the model', 'build': {BUILD!r}}}), flush=True)\n"
    "print(json.dumps({'stage': 'reading a 94-token prompt'}), flush=True)\n"
    "ctypes.string_at(0)\n"
)


def test_a_runner_killed_by_sigsegv_fails_the_check_with_what_to_do() -> None:
    with pytest.raises(BotError) as failed:
        check([sys.executable, "-X", "faulthandler", "-c", CRASHING])
    said = str(failed.value)
    first, flags, build, advice = said.splitlines()[:4]
    assert first == (
        "The embedded LLM failed its install check (signal 11: SIGSEGV, "
        "segmentation fault) while reading a 94-token prompt."
    )
    assert flags.startswith("CPU flags that matter here: ")
    assert build == f"The installed llama.cpp was built for: {BUILD}"
    assert (
        "not the portable one (it uses AMX or AVX-512): `make install LLAMA_BUILD=portable`"
        in advice
    )
    assert "LLM_BASE_URL" in advice
    assert "Fatal Python error: Segmentation fault" in said, "its last words are shown"


def test_a_runner_that_fails_otherwise_is_not_called_a_crash() -> None:
    with pytest.raises(BotError) as failed:
        check([sys.executable, "-c", "raise SystemExit('no model here')"])
    said = str(failed.value)
    assert "(exit code 1) while starting" in said and "no model here" in said
    assert "dmesg" not in said and "`make clean install`" in said


def _selftest(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    values = {k: v for k, v in os.environ.items() if not k.startswith("LLM_")}
    return subprocess.run(
        [sys.executable, "-m", "bot.models.selftest", *args],
        cwd=ROOT,
        env={**values, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_command_fails_the_install_unless_another_llm_is_named(tmp_path: Path) -> None:
    script = tmp_path / "crash.py"
    script.write_text(CRASHING)
    runner = shlex.join([sys.executable, "-X", "faulthandler", str(script)])
    failed = _selftest("--runner", runner)
    assert failed.returncode == 1 and "signal 11: SIGSEGV" in failed.stderr, failed.stderr
    other = _selftest("--runner", runner, LLM_BASE_URL="http://127.0.0.1:9/v1")
    assert other.returncode == 0 and "the install goes on" in other.stderr, other.stderr


@pytest.mark.slow
def test_the_installed_build_passes_it() -> None:
    done = _selftest()
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("The embedded LLM works on this CPU: it read "), done.stdout
