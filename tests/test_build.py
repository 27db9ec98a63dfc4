"""The installed llama.cpp is the portable build, whatever CPU built it: its libraries hold no
instruction above the baseline (no AMX, nothing EVEX-encoded: the kernels that kill the server
where a CPU advertises what its hypervisor refuses), it came from the wheelhouse entry of the
portable flags, and the check itself finds AMX and AVX-512 where a compiler put them."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import pytest

from bot.models.cpu import machine, portable_cmake_args
from install.instructions import classify, installed_libraries, scan
from install.llama_wheel import (
    build_args,
    default_wheelhouse,
    entry,
    installed_from,
    pinned_version,
    wheel_in,
)

x86_64 = pytest.mark.skipif(machine() != "x86_64", reason="the x86-64 baseline's check")
FUSED = """#include <immintrin.h>
void fused(float *a, float *b) {
    __m256 x = _mm256_loadu_ps(a);
    _mm256_storeu_ps(b, _mm256_fmadd_ps(x, x, x));
}
"""
ABOVE = (
    FUSED
    + """void amx(void *config) { _tile_loadconfig(config); _tile_release(); }
void wide(float *a, float *b) {
    __m512 x = _mm512_loadu_ps(a);
    _mm512_storeu_ps(b, _mm512_add_ps(x, x));
}
"""
)


def _installed_args() -> list[str]:
    """The CMake arguments the installed build was made with, from its wheelhouse entry."""
    url = installed_from()
    assert url and url.startswith(default_wheelhouse().as_uri()), f"installed from {url}"
    record = json.loads((Path(urlparse(url).path).parent / "build.json").read_text())
    return list(record["cmake_args"])


@pytest.mark.slow
@x86_64
def test_the_installed_llama_cpp_holds_nothing_above_the_baseline() -> None:
    """Nothing above it in the portable build; no AMX in any build `make install` makes
    (LLAMA_BUILD=native-no-amx holds this CPU's AVX-512 on purpose)."""
    libraries = installed_libraries()
    assert any(p.name.startswith("libggml-cpu") for p in libraries), libraries
    above = {p.name: scan(p) for p in libraries}
    assert not any("AMX" in found.counts for found in above.values()), above
    if _installed_args() == build_args("portable"):
        assert not any(found.counts for found in above.values()), {
            name: found.lines() for name, found in above.items()
        }


@x86_64
def test_the_installed_llama_cpp_uses_the_baseline_it_states() -> None:
    """AVX2 and FMA kernels are there: the portable build is not a slow generic one."""
    [cpu] = [p for p in installed_libraries() if p.name.startswith("libggml-cpu")]
    listing = subprocess.run(
        ["objdump", "-d", str(cpu)], capture_output=True, text=True, check=True
    ).stdout
    assert listing.count("%ymm") > 1000 and "vfmadd" in listing


@x86_64
@pytest.mark.skipif(shutil.which("gcc") is None, reason="no C compiler")
def test_the_check_finds_amx_and_avx512_where_a_compiler_put_them(tmp_path: Path) -> None:
    def built(name: str, code: str, *options: str) -> Path:
        source, library = tmp_path / f"{name}.c", tmp_path / f"{name}.so"
        source.write_text(code)
        command = ["gcc", "-O2", "-shared", "-fPIC", *options, str(source), "-o", str(library)]
        subprocess.run(command, check=True)
        return library

    above = scan(built("above", ABOVE, "-mavx512f", "-mamx-tile", "-mfma"))
    assert set(above.counts) == {"AMX", "AVX-512 (EVEX)"}
    assert above.functions == {"AMX": ["amx"], "AVX-512 (EVEX)": ["wide"]}
    assert not scan(built("baseline", FUSED, "-mavx2", "-mfma")).counts


def test_the_check_reads_encodings_not_only_names() -> None:
    vex = bytes.fromhex("c5fc1000")  # vmovups (%rax),%ymm0
    evex = bytes.fromhex("62f17c281000")  # the same on ymm, EVEX-encoded (AVX-512VL)
    assert classify(vex, "vmovups (%rax),%ymm0") is None
    assert classify(evex, "vmovups (%rax),%ymm0") == "AVX-512 (EVEX)"
    assert classify(b"\xc4\xe2\x78\x49\x00", "ldtilecfg (%rax)") == "AMX"
    assert classify(b"\xc4\xe2\x75\x50\xc2", "{vex} vpdpbusd %ymm2,%ymm1,%ymm0") == "AVX-VNNI"


def test_a_wheel_is_kept_per_version_and_flags(tmp_path: Path) -> None:
    portable = build_args("portable")
    assert entry(tmp_path, "0.3.36", portable) == entry(tmp_path, "0.3.36", list(portable))
    others = [
        build_args("native"),
        build_args("native-no-amx"),
        build_args("portable", "-DGGML_NATIVE=OFF -DGGML_AVX2=OFF"),
    ]
    folders = {
        entry(tmp_path, version, args)
        for version in ("0.3.36", "0.3.37")
        for args in [portable, *others]
    }
    assert len(folders) == 8, "another version or other flags never reuse a wheel"
    assert "-DGGML_NATIVE=OFF" in portable and "-DGGML_NATIVE=ON" in others[0]
    if machine() == "x86_64":
        assert "-DGGML_AMX_INT8=OFF" in portable and "-DGGML_AVX512=OFF" in portable
        assert "-DGGML_AVX2=ON" in portable and portable[:-1] == portable_cmake_args()
        assert "-mno-amx-tile" in " ".join(others[1])


def test_the_installed_build_came_from_the_wheelhouse_entry_of_its_flags() -> None:
    """Installed by `make install` from the wheelhouse (not from pip's cache): the wheel of
    the entry its flags name (the portable ones unless LLAMA_BUILD or LLAMA_CMAKE_ARGS said
    otherwise)."""
    args = _installed_args()
    wheel = wheel_in(entry(default_wheelhouse(), pinned_version(), args))
    assert wheel is not None and installed_from() == wheel.as_uri()
