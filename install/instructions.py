"""Which x86-64 instructions above the portable baseline (bot.models.cpu: x86-64-v3) a built
library holds, read from `objdump -d`: AMX, anything EVEX-encoded (AVX-512, AVX10), AVX-VNNI,
AVX-IFMA, AVX-NE-CONVERT, GFNI, VAES and VPCLMULQDQ on 256-bit registers, AES-NI, SHA, APX.

    python -m install.instructions             # the installed llama-cpp-python's libraries
    python -m install.instructions LIB.so ...

A line per extension found, with a count and the first functions that use it; nothing found
prints "baseline only". The test suite runs it on the installed build (tests/test_build.py).
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

LEGACY_PREFIXES = {0x66, 0x67, 0xF2, 0xF3, 0x2E, 0x36, 0x3E, 0x26, 0x64, 0x65, 0xF0}
AMX = re.compile(r"^(ldtilecfg|sttilecfg|tile\w+|tdp\w+|tcmmr?lfp16ps|tmmultf32ps)\b")
BY_MNEMONIC = [
    ("AVX-VNNI", re.compile(r"^(\{vex\}\s*)?vpdp(b|w)[su]{2}ds?\b")),
    ("AVX-IFMA", re.compile(r"^(\{vex\}\s*)?vpmadd52[lh]uq\b")),
    ("AVX-NE-CONVERT", re.compile(r"^(vbcstne\w+|vcvtne[eo]\w+|(\{vex\}\s*)vcvtneps2bf16)\b")),
    ("GFNI", re.compile(r"^v?gf2p8\w+\b")),
    ("VAES", re.compile(r"^vaes\w+\s.*%ymm")),
    ("VPCLMULQDQ", re.compile(r"^vpclmul\w*\s.*%ymm")),
    ("AES-NI", re.compile(r"^v?aes(enc|dec|imc|keygenassist)\w*\b")),
    ("SHA", re.compile(r"^sha(1|256|512)\w+\b")),
]
LINE = re.compile(r"^\s*[0-9a-f]+:\t((?:[0-9a-f]{2} )+)\s*\t(.*)$")
FUNCTION = re.compile(r"^[0-9a-f]+ <(.+)>:$")


@dataclass
class Found:
    """Instructions above the baseline in one library: extension -> count, and where."""

    counts: Counter[str] = field(default_factory=Counter)
    functions: dict[str, list[str]] = field(default_factory=dict)

    def add(self, extension: str, function: str) -> None:
        self.counts[extension] += 1
        where = self.functions.setdefault(extension, [])
        if function not in where and len(where) < 5:
            where.append(function)

    def lines(self) -> list[str]:
        return [
            f"{ext}: {n} instructions, in {', '.join(self.functions[ext])}"
            for ext, n in self.counts.most_common()
        ]


def classify(raw: bytes, text: str) -> str | None:
    """The extension above the baseline that one instruction needs, None if the baseline
    has it. `raw` is its encoding, `text` objdump's mnemonic and operands."""
    opcode = next((b for b in raw if b not in LEGACY_PREFIXES), None)
    if AMX.match(text):
        return "AMX"
    if opcode == 0x62:  # in 64-bit code, always an EVEX prefix
        return "AVX-512 (EVEX)"
    if opcode == 0xD5:  # in 64-bit code, always a REX2 prefix
        return "APX"
    for extension, pattern in BY_MNEMONIC:
        if pattern.match(text):
            return extension
    return None


def scan(library: Path) -> Found:
    """Every instruction of `library` above the baseline."""
    objdump = shutil.which("objdump")
    if objdump is None:
        raise SystemExit("objdump is missing: install binutils (apt-get install binutils).")
    command = [objdump, "-d", "--insn-width=15", str(library)]
    listing = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    found, function = Found(), "?"
    for line in listing.splitlines():
        head = FUNCTION.match(line)
        if head:
            function = head.group(1)
            continue
        match = LINE.match(line)
        if match:
            extension = classify(bytes.fromhex(match.group(1)), match.group(2).strip())
            if extension:
                found.add(extension, function)
    return found


def installed_libraries() -> list[Path]:
    """The shared libraries of the installed llama-cpp-python (llama_cpp/lib)."""
    import importlib.util

    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("llama-cpp-python is not installed here: run `make install`.")
    folder = Path(next(iter(spec.submodule_search_locations))) / "lib"
    unique: dict[bytes, Path] = {}  # a wheel holds no links: libx.so, .so.0, .so.0.1 are copies
    for path in sorted(folder.glob("*.so*"), key=lambda p: len(p.name)):
        unique.setdefault(hashlib.sha256(path.read_bytes()).digest(), path)
    return sorted(unique.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("libraries", nargs="*", type=Path)
    args = parser.parse_args(argv)
    above = False
    for library in args.libraries or installed_libraries():
        found = scan(library)
        print(f"{library.name}: {'above the baseline' if found.counts else 'baseline only'}")
        for line in found.lines():
            print(f"  {line}")
        above = above or bool(found.counts)
    return 1 if above else 0


if __name__ == "__main__":
    sys.exit(main())
