"""Answering: the question checked (question) and made standalone (rewrite), the prompt
(prompts, guard), the streamed reply filtered (reply, citations, refusal), all run by pipeline;
its records are in records."""
