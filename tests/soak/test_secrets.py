"""Security defaults the other tests do not cover: API keys never reach a log or an error,
whatever the LLM server does with them."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
from gradio_client import Client
from pydantic import SecretStr

from bot.settings import Settings
from bot.text import redact
from tests.conftest import start_app, stop_app
from tests.soak.conftest import REPORT, Process, fake_llm_process

KEY = "sk-soak-5ecret-never-printed-0123456789"


@pytest.mark.slow
def test_the_llm_key_is_in_no_error_and_no_log(tmp_path: Path, processes: list[Process]) -> None:
    # a careless server that quotes the Authorization header in its error messages
    llm = fake_llm_process(tmp_path / "llm.log", "--status", "401", "--echo-key")
    processes.append(llm.start())
    process, app = start_app(
        tmp_path,
        LLM_BACKEND="openai",
        LLM_BASE_URL=f"http://127.0.0.1:{llm.port}/v1",
        LLM_API_KEY=KEY,
        EMBED_API_KEY=KEY,
    )
    errors = []
    try:
        client = Client(app.url, verbose=False)
        for status in ("401", "500", "dead"):
            llm.kill()
            if status != "dead":
                llm.args[llm.args.index("--status") + 1] = status
                llm.start()
            with pytest.raises(Exception) as caught:
                client.predict(question="Who leads Hai Phong?", api_name="/ask")
            errors.append(str(caught.value))
    finally:
        stop_app(process)
    assert "refused the API key" in errors[0] and "HTTP 500" in errors[1]
    assert "Cannot reach the LLM" in errors[2]
    log = app.log.read_text(errors="replace")
    assert all(KEY not in e for e in errors) and KEY not in log
    REPORT["secrets"] = {
        "errors_checked": len(errors),
        "log_lines_checked": log.count("\n"),
        "key_found": 0,
    }


def test_log_redaction_masks_messages_and_tracebacks() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logging.getLogger().addHandler(handler)
    try:
        redact.install(Settings(_env_file=None, llm_api_key=SecretStr(KEY)))
        try:
            raise RuntimeError(f"server said: bad key {KEY}")
        except RuntimeError:
            logging.getLogger("soak").exception("calling with key %s failed", KEY)
    finally:
        logging.getLogger().removeHandler(handler)
        redact._secrets.discard(KEY)
    out = stream.getvalue()
    assert "with key *** failed" in out and "bad key ***" in out and KEY not in out
