"""6. The llama.cpp build: prompt reading and writing tokens/s of the installed build (the
portable one `make install` makes) against other builds, the model run in-process by each.

    python -m eval.bench.llama_build [--other FOLDER ...] [--prompt-tokens 512] [--write 64]
                                     [--rounds 5] [--out llama-build.json]

An --other folder holds another build's `llama_cpp` package: a wheel of
`python -m install.llama_wheel --build native --no-install` unzipped, or the site-packages of
a venv it was installed into. Each run is a process of its own with that folder first on its
path, reading the same prompt (an English article of the corpus, cut to --prompt-tokens) from
scratch and writing --write tokens greedily, on LLM_THREADS threads. The builds take turns,
round after round, so that a machine whose speed drifts (a shared virtual machine's does, by
a third here) slows them alike; the medians are given, with each build's median ratio to the
first one's run of the same round, and what `objdump -d` finds in its libggml-cpu above the
baseline. A build that dies (llama.cpp's native build where AMX is refused) is reported with
its signal and not run again.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bot.models.cpu import signal_words
from eval.bench.common import CORPUS, ROOT, say

ARTICLE = CORPUS / "001_5e3177cbc2a4a8ec.txt"  # English, 2,042 LLM tokens


def measure(prompt_tokens: int, write: int, threads: int) -> dict[str, Any]:
    """In this process: load the model, read the prompt, write `write` tokens."""
    import llama_cpp

    from bot.models.cpu import build_info
    from bot.models.local_llm import ensure_gguf
    from bot.settings import Settings

    gguf = ensure_gguf(Settings(_env_file=None).model_dir)
    llama = llama_cpp.Llama(
        model_path=str(gguf),
        n_ctx=prompt_tokens + write + 16,
        n_threads=threads,
        n_threads_batch=threads,
        verbose=False,
    )
    tokens = llama.tokenize(ARTICLE.read_text().encode())[:prompt_tokens]
    started = time.perf_counter()
    llama.eval(tokens)
    read_s = time.perf_counter() - started
    started, n = time.perf_counter(), 0
    for _token in llama.generate([], temp=0.0, reset=False):
        n += 1
        if n >= write:
            break
    return {
        "build": build_info(),
        "prompt_tokens": len(tokens),
        "written_tokens": n,
        "threads": threads,
        "read_tokens_per_s": len(tokens) / read_s,
        "write_tokens_per_s": n / (time.perf_counter() - started),
    }


def _run(site: Path | None, prompt_tokens: int, write: int, threads: int) -> dict[str, Any]:
    """One run, in a process whose path starts with `site` (None: the installed build)."""
    env = dict(os.environ)
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(site), str(ROOT)])
    command = [
        sys.executable,
        "-X",
        "faulthandler",
        "-m",
        "eval.bench.llama_build",
        "--run",
        "--prompt-tokens",
        str(prompt_tokens),
        "--write",
        str(write),
        "--threads",
        str(threads),
    ]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:  # a build this CPU refuses: what killed it is the figure
        return {
            "failed": signal_words(done.returncode),
            "last_words": done.stderr.strip().splitlines()[-3:],
        }
    return dict(json.loads(done.stdout.splitlines()[-1]))


def _above_baseline(site: Path | None) -> dict[str, int]:
    from install.instructions import installed_libraries, scan

    libraries = installed_libraries() if site is None else (site / "llama_cpp" / "lib").glob("*")
    library = next(p for p in libraries if p.name.startswith("libggml-cpu.so"))
    return dict(scan(library).counts)


def bench_builds(
    sites: list[Path | None], prompt_tokens: int = 512, write: int = 64, rounds: int = 5
) -> list[dict[str, Any]]:
    """Each build's figures (None: the installed one), the builds taking turns each round."""
    from bot.settings import Settings

    threads = Settings(_env_file=None).llm_threads
    runs: list[list[dict[str, Any]]] = [[] for _ in sites]
    for _ in range(rounds):
        for i, site in enumerate(sites):
            if not (runs[i] and "failed" in runs[i][0]):
                runs[i].append(_run(site, prompt_tokens, write, threads))
    report = []
    for site, done in zip(sites, runs, strict=True):
        figures: dict[str, Any] = {
            "site": str(site or "installed"),
            "above_baseline": _above_baseline(site),
        }
        if "failed" in done[0]:
            report.append({**figures, **done[0]})
            continue
        ratio = [
            run["read_tokens_per_s"] / first["read_tokens_per_s"]
            for run, first in zip(done, runs[0], strict=False)
            if "failed" not in first
        ]
        report.append(
            {
                **figures,
                **{k: done[0][k] for k in ("build", "prompt_tokens", "written_tokens", "threads")},
                "rounds": len(done),
                "read_tokens_per_s": statistics.median(r["read_tokens_per_s"] for r in done),
                "write_tokens_per_s": statistics.median(r["write_tokens_per_s"] for r in done),
                "read_range": [
                    min(r["read_tokens_per_s"] for r in done),
                    max(r["read_tokens_per_s"] for r in done),
                ],
                "read_vs_first": statistics.median(ratio) if ratio else None,
            }
        )
    return report


def described(figures: dict[str, Any]) -> str:
    above = ", ".join(f"{k} {v}" for k, v in figures["above_baseline"].items()) or "none"
    if "failed" in figures:
        return (
            f"llama.cpp build ({figures['site']}): died ({figures['failed']}); "
            f"instructions above the baseline in libggml-cpu: {above}"
        )
    low, high = figures["read_range"]
    versus = figures["read_vs_first"]
    return (
        f"llama.cpp build ({figures['site']}): reads {figures['read_tokens_per_s']:.1f} "
        f"tokens/s ({low:.1f}-{high:.1f}; {figures['prompt_tokens']}-token prompt"
        + (f"; x{versus:.2f} the first build's" if versus else "")
        + f"), writes {figures['write_tokens_per_s']:.1f} tokens/s "
        f"({figures['written_tokens']} tokens), {figures['threads']} threads, median of "
        f"{figures['rounds']}; instructions above the baseline in libggml-cpu: {above}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m eval.bench.llama_build", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--other",
        type=Path,
        nargs="*",
        default=[],
        help="folders holding another build's llama_cpp package",
    )
    parser.add_argument("--prompt-tokens", type=int, default=512)
    parser.add_argument("--write", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2, help=argparse.SUPPRESS)
    parser.add_argument("--run", action="store_true", help=argparse.SUPPRESS)  # one run
    parser.add_argument("--out", type=Path, default=Path("llama-build.json"))
    args = parser.parse_args(argv)
    if args.run:
        print(json.dumps(measure(args.prompt_tokens, args.write, args.threads)))
        return 0
    report = bench_builds([None, *args.other], args.prompt_tokens, args.write, args.rounds)
    for figures in report:
        say(described(figures))
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    say(f"figures written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
