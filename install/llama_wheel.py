"""llama-cpp-python for the embedded LLM, built once for a portable CPU baseline and kept in a
wheelhouse keyed by its version and build flags; `make install` runs it before pip installs the
rest.

    python -m install.llama_wheel                         # install the portable build here
    python -m install.llama_wheel --build native-no-amx   # this CPU's build, AMX left out
    python -m install.llama_wheel --cmake-args "..."      # any other build (kept beside them)
    python -m install.llama_wheel --build native --no-install   # benchmarks only

The baseline is bot.models.cpu's. pip's own wheel cache is keyed by the sdist, not by
CMAKE_ARGS: it would hand back a wheel built with other flags (a native one from an earlier
install), so it is never asked (`--no-cache-dir`). The wheel is installed by its path, which
pip records in the installed package's direct_url.json: a build installed from anywhere else,
or from a wheel of other flags, is replaced; the right one is left alone (a second install
takes a fraction of a second). Building takes about 9 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import importlib.metadata
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bot.models.cpu import machine, native_cmake_args, portable_cmake_args

PACKAGE = "llama-cpp-python"
BUILDS = ("portable", "native-no-amx", "native")  # build_args
RECIPE = 1  # bump when the way a wheel is built changes, so every wheelhouse entry is rebuilt
ALWAYS = ["-DLLAVA_BUILD=OFF"]  # the multimodal library: not used, a third of the build
PIP_NET = ["--retries", "10", "--resume-retries", "20", "--timeout", "60"]
ROOT = Path(__file__).resolve().parent.parent


def say(line: str) -> None:
    """Progress, on stderr (stdout is the wheel's path with --no-install)."""
    print(f">> {line}", file=sys.stderr, flush=True)


def pinned_version(pyproject: Path = ROOT / "pyproject.toml") -> str:
    """The version of llama-cpp-python the project pins."""
    found = re.search(r'"llama-cpp-python(?:\[[^\]]*\])?==([^"]+)"', pyproject.read_text())
    if not found:
        raise SystemExit(f"{pyproject} pins no version of {PACKAGE}")
    return found.group(1)


def build_args(build: str, cmake_args: str | None = None) -> list[str]:
    """The CMake arguments of a `build` (BUILDS), or `cmake_args` given instead."""
    if cmake_args:
        return [*shlex.split(cmake_args), *ALWAYS]
    if build == "native":
        return [*native_cmake_args(amx=True), *ALWAYS]
    if build == "native-no-amx":
        return [*native_cmake_args(), *ALWAYS]
    return [*portable_cmake_args(), *ALWAYS]


def entry(wheelhouse: Path, version: str, args: list[str]) -> Path:
    """The wheelhouse folder of one version built with `args` on this architecture."""
    key = json.dumps({"recipe": RECIPE, "version": version, "machine": machine(), "args": args})
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return wheelhouse / f"{PACKAGE}-{version}-{machine()}-{digest}"


def wheel_in(folder: Path) -> Path | None:
    wheels = sorted(folder.glob("*.whl")) if folder.is_dir() else []
    return wheels[0] if wheels else None


def installed_from() -> str | None:
    """The file URL the installed llama-cpp-python came from (None: not installed by path)."""
    try:
        dist = importlib.metadata.distribution(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return None
    recorded = dist.read_text("direct_url.json")
    return str(json.loads(recorded).get("url")) if recorded else None


def build(version: str, args: list[str], folder: Path) -> Path:
    """Build the wheel into `folder` (written whole or not at all); the wheel's path."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{folder.name}.", dir=folder.parent))
    log = folder.parent / f"{folder.name}.build.log"
    say(f"Building {PACKAGE} {version} for {machine()} with {shlex.join(args)}")
    say(f"about 9 minutes on 2 cores, once for these flags (log: {log})")
    started = time.monotonic()
    env = {
        **os.environ,
        "CMAKE_ARGS": shlex.join(args),
        "CMAKE_BUILD_PARALLEL_LEVEL": str(os.cpu_count() or 2),
    }
    command = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-cache-dir",
        "--no-binary",
        PACKAGE,
        *PIP_NET,
        "--wheel-dir",
        str(work),
        f"{PACKAGE}=={version}",
    ]
    try:
        with log.open("w") as out:
            done = subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        wheel = wheel_in(work)
        if done.returncode != 0 or wheel is None:
            tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-40:])
            raise SystemExit(
                f"{tail}\nBuilding {PACKAGE} failed (exit code "
                f"{done.returncode}); the whole log is in {log}."
            )
        seconds = time.monotonic() - started
        say(f"built in {seconds / 60:.1f} minutes")
        record = {
            "version": version,
            "machine": machine(),
            "cmake_args": args,
            "seconds": round(seconds),
            "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (work / "build.json").write_text(json.dumps(record, indent=2) + "\n")
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(work, folder)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # what a failed build left
    built = wheel_in(folder)
    if built is None:
        raise SystemExit(f"The built wheel is missing from {folder}.")
    return built


def install(wheel: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-deps",
        "--force-reinstall",
        "--no-index",
        str(wheel),
    ]
    subprocess.run(command, check=True)


def ensure(wheelhouse: Path, args: list[str], install_it: bool = True) -> Path:
    """The wheel of `args` (built unless the wheelhouse has it), installed unless it already
    is: one process at a time per wheelhouse."""
    version = pinned_version()
    folder = entry(wheelhouse, version, args)
    wheelhouse.mkdir(parents=True, exist_ok=True)
    with (wheelhouse / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        wheel = wheel_in(folder) or build(version, args, folder)
        if install_it and installed_from() != wheel.as_uri():
            install(wheel)
            say(f"installed {wheel.name} from {folder}")
    return wheel


def default_wheelhouse() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "newsqa" / "wheels"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheelhouse", type=Path, default=default_wheelhouse())
    parser.add_argument(
        "--build",
        choices=BUILDS,
        default=os.environ.get("LLAMA_BUILD") or "portable",
        help="portable (any x86-64-v3 or Armv8-A CPU), native-no-amx (this CPU's every "
        "instruction but AMX), native (benchmarks only: it dies where AMX is refused)",
    )
    parser.add_argument(
        "--cmake-args",
        default=os.environ.get("LLAMA_CMAKE_ARGS") or None,
        help="build with these CMake arguments instead (for instance a CPU below x86-64-v3)",
    )
    parser.add_argument("--no-install", action="store_true", help="build, print the wheel")
    args = parser.parse_args(argv)
    if args.build == "native" and not args.no_install:
        parser.error("the native build is for benchmarks only: add --no-install")
    try:
        wheel = ensure(
            args.wheelhouse,
            build_args(args.build, args.cmake_args),
            install_it=not args.no_install,
        )
    except ValueError as exc:  # no portable flags known for this machine
        raise SystemExit(str(exc)) from None
    if args.no_install:
        print(wheel)


if __name__ == "__main__":
    main()
