"""The CPU the embedded LLM runs on: the portable instruction-set baseline llama.cpp is built
for, what this machine's CPU advertises, and a process's death by a signal in words.

llama.cpp's default build (GGML_NATIVE=ON) compiles for the CPU that builds it. Where a CPU
advertises AMX but its hypervisor refuses it, the first AMX instruction (`ldtilecfg`) kills the
process with SIGSEGV; a build for an AVX-512 machine dies with SIGILL on one without. So the
install builds for a stated baseline instead (install/llama_wheel.py), and this module is where
that baseline is written down: x86-64-v3 (AVX2, FMA, F16C, BMI2: Intel since Haswell, 2013, AMD
since Excavator, 2015), and Armv8-A on aarch64. Stdlib only: the install runs it before anything
else is installed.
"""

from __future__ import annotations

import platform
import signal
from pathlib import Path

# GGML options of the x86-64 baseline: everything in it on, everything above it off (AVX-512,
# AVX-VNNI, AMX), and no run-time CPU variants (their choice trusts CPUID, which is what lies).
X86_64_ON = ["SSE42", "AVX", "AVX2", "BMI2", "FMA", "F16C"]
X86_64_OFF = [
    "AVX_VNNI",
    "AVX512",
    "AVX512_VBMI",
    "AVX512_VNNI",
    "AVX512_BF16",
    "AMX_TILE",
    "AMX_INT8",
    "AMX_BF16",
]
# The /proc/cpuinfo flag each baseline option needs.
X86_64_FLAG = {
    "SSE42": "sse4_2",
    "AVX": "avx",
    "AVX2": "avx2",
    "BMI2": "bmi2",
    "FMA": "fma",
    "F16C": "f16c",
}
AARCH64_ARCH = "armv8-a"
# What is worth naming when a build crashes: the baseline and what lies above it.
X86_64_NOTABLE = [
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "bmi2",
    "avx_vnni",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
]
AARCH64_NOTABLE = ["asimd", "fphp", "asimdhp", "asimddp", "i8mm", "sve", "sve2", "sme"]
NO_RUNTIME_VARIANTS = ["-DGGML_NATIVE=OFF", "-DGGML_BACKEND_DL=OFF", "-DGGML_CPU_ALL_VARIANTS=OFF"]


def machine() -> str:
    """`x86_64` or `aarch64` (macOS's `arm64` and Windows' `AMD64` named the Linux way)."""
    name = platform.machine().lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(name, name)


def x86_64_args(on: list[str]) -> list[str]:
    """CMake arguments that build llama.cpp's CPU backend with exactly the options `on`."""
    ons = [f"-DGGML_{name}=ON" for name in on]
    offs = [f"-DGGML_{name}=OFF" for name in X86_64_ON + X86_64_OFF if name not in on]
    return [*NO_RUNTIME_VARIANTS, *ons, *offs]


def portable_cmake_args(arch: str | None = None) -> list[str]:
    """The CMake arguments of the portable build for `arch` (this machine's by default)."""
    arch = arch or machine()
    if arch == "x86_64":
        return x86_64_args(X86_64_ON)
    if arch == "aarch64":
        return [*NO_RUNTIME_VARIANTS, f"-DGGML_CPU_ARM_ARCH={AARCH64_ARCH}"]
    raise ValueError(
        f"No portable llama.cpp build is known for {arch}: set LLAMA_CMAKE_ARGS (for instance "
        "-DGGML_NATIVE=OFF) to build one, or set LLM_BASE_URL to use another server."
    )


def native_cmake_args(amx: bool = False) -> list[str]:
    """CMake arguments of a build for this very CPU (GGML_NATIVE); without `amx`, with AMX
    taken out (-mno-amx-*, which -march=native does not undo): the fastest build that runs
    where a hypervisor refuses AMX but allows AVX-512. The install check proves it at install
    time; it runs on this CPU only."""
    if amx or machine() != "x86_64":
        return ["-DGGML_NATIVE=ON"]
    no_amx = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
    return ["-DGGML_NATIVE=ON", f"-DCMAKE_C_FLAGS={no_amx}", f"-DCMAKE_CXX_FLAGS={no_amx}"]


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The features this CPU advertises to processes (x86 `flags`, Arm `Features`)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def notable_flags(flags: set[str] | None = None) -> str:
    """The advertised features that decide which llama.cpp build runs here, in one line;
    the baseline's missing ones marked."""
    flags = cpu_flags() if flags is None else flags
    arch = machine()
    if arch == "aarch64":
        return " ".join(f for f in AARCH64_NOTABLE if f in flags) or "none of note"
    said = [f for f in X86_64_NOTABLE if f in flags]
    missing = [f"no {f}" for f in X86_64_FLAG.values() if f not in flags]
    return " ".join(said + missing) or "none of note"


def matching_cmake_args(flags: set[str] | None = None) -> list[str] | None:
    """CMake arguments for an x86-64 CPU below the baseline: each baseline option only where
    the CPU advertises it. None where the baseline fits (or on another architecture)."""
    flags = cpu_flags() if flags is None else flags
    if machine() != "x86_64" or not flags:
        return None
    on = [name for name in X86_64_ON if X86_64_FLAG[name] in flags]
    return None if on == X86_64_ON else x86_64_args(on)


def signal_words(returncode: int) -> str:
    """A process's end in words: "signal 11: SIGSEGV, segmentation fault" for a return code
    of -11 (how subprocess reports a death by signal), "exit code 3" otherwise."""
    if returncode >= 0:
        return f"exit code {returncode}"
    number = -returncode
    try:
        name = signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
    description = signal.strsignal(number) or ""
    return f"signal {number}: {name}, {description.lower()}" if description else name


def build_info() -> str:
    """What the installed llama.cpp was built to use ("CPU : SSE3 = 1 | AVX2 = 1 | …"); imports
    llama_cpp, which only loads its libraries (running them is what may crash)."""
    import llama_cpp

    info = llama_cpp.llama_print_system_info()
    return (info.decode(errors="replace") if isinstance(info, bytes) else str(info)).strip()
