"""A stand-in for the embedded LLM server (bot.models.llm_server, LLM_SERVER_MODULE) whose
process dies of SIGSEGV on the first prompt it is given, as a llama.cpp build does on a CPU
that refuses its instructions; faulthandler writes the fatal error to its log, as in the real
server. It takes the real server's options and answers /v1/models until then.

    LLM_SERVER_MODULE=tests.crashing_llm python app.py
"""

from __future__ import annotations

import argparse
import faulthandler

from tests.fake_openai import FakeOpenAI


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args, _ = parser.parse_known_args()  # --model, --alias, --n_ctx ...: not needed here
    faulthandler.enable()
    fake = FakeOpenAI(args.port)
    fake.crash = True
    print(f"crashing stand-in of the embedded LLM server on {fake.base_url}", flush=True)
    fake.server.serve_forever()


if __name__ == "__main__":
    main()
