"""Defences against text in the articles that tries to steer the model (prompt injection).

Before the model reads a passage, chat-template tokens are removed and every line (paragraph)
with a sentence that addresses an AI ("ignore previous instructions", "reveal your system
prompt", "you are now ...") is withheld: injected text rarely stops at one sentence. The user
still sees the whole passage, escaped. After the model writes, an answer that repeats the
system prompt is replaced by the refusal (and so is one without any citation: bot.answering.reply).
"""

from __future__ import annotations

import re

WITHHELD = "(…)"

# Sentences written to a model rather than to a reader, in the languages the bot answers in
# (English, French, German, Vietnamese, Thai).
_ADDRESSED_TO_MODEL = re.compile(
    r"\b(?:ignore|disregard|forget|override)\b[^.!?\n]{0,40}?\b(?:instructions?|rules|prompts?|"
    r"directions|guidelines)\b"
    r"|\b(?:reveal|print|show|repeat|output|display|leak)\b[^.!?\n]{0,40}?\b(?:system prompt|"
    r"instructions|prompt)\b"
    r"|\bsystem prompt\b|\byou are now\b|\bnew instructions\b"
    r"|\banswer (?:every|all|each|any) questions?\b|\b(?:never|do not|don't) cite\b"
    r"|\bsans citer\b|\bohne (?:quelle|zitat)"
    r"|\b(?:ignorez|oubliez)\b[^.!?\n]{0,40}?\binstructions\b"
    r"|\b(?:ignoriere|vergiss)\b[^.!?\n]{0,40}?\b(?:anweisungen|regeln)\b"
    # Vietnamese
    r"|\b(?:bỏ qua|phớt lờ|quên đi|quên)\b[^.!?\n]{0,40}?(?:hướng dẫn|chỉ dẫn|chỉ thị|quy tắc)"
    r"\s+(?:trước|của bạn|ở trên)"
    r"|lời nhắc hệ thống|\b(?:tiết lộ|in ra|hiển thị|lặp lại)\b[^.!?\n]{0,40}?(?:lời nhắc|"
    r"hướng dẫn của bạn)|(?:từ )?bây giờ bạn là|không (?:được )?trích dẫn nguồn"
    # Thai (no spaces between words: substrings)
    r"|(?:เพิกเฉย|ละเลย|ลืม|ไม่ต้องสนใจ)[^\n]{0,40}?(?:คำสั่งก่อนหน้า|คำสั่งทั้งหมด|คำแนะนำ)"
    r"|พรอมต์ระบบ|พรอมท์ระบบ|(?:เปิดเผย|แสดง|พิมพ์)[^\n]{0,40}?(?:พรอมต์|พรอมท์)"
    r"|ตอนนี้คุณคือ|ตอนนี้คุณเป็น|(?:ห้าม|ไม่ต้อง)อ้างอิงแหล่ง",
    re.IGNORECASE,
)
# Chat-template markers (Qwen's <|im_start|>, Llama's [INST]) and role labels opening a line.
_TEMPLATE = re.compile(
    r"<\|im_start\|>\s*\w*|<\|[^|>]{1,40}\|>|\[/?INST\]|<</?SYS>>|^\s*(?:system|assistant|user)\s*:",
    re.IGNORECASE | re.MULTILINE,
)
_WORD = re.compile(r"\w+")
_LEAK_WORDS = 8  # this many words of the system prompt in a row, not from the sources, leak it


def for_model(text: str) -> str:
    """The passage as the model reads it: chat-template tokens removed and lines addressed to
    a model replaced by WITHHELD."""
    text = _TEMPLATE.sub(" ", text)
    if not _ADDRESSED_TO_MODEL.search(text):
        return text
    lines = text.split("\n")
    return "\n".join(WITHHELD if _ADDRESSED_TO_MODEL.search(line) else line for line in lines)


def _ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    words = [w.lower() for w in _WORD.findall(text)]
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


class LeakCheck:
    """Whether an answer repeats _LEAK_WORDS words in a row of the instructions the model was
    given (`prompt`) that the sources it read do not also hold."""

    def __init__(self, prompt: str, sources: str) -> None:
        self._secret = _ngrams(prompt, _LEAK_WORDS) - _ngrams(sources, _LEAK_WORDS)

    def __call__(self, answer: str) -> bool:
        return bool(self._secret & _ngrams(answer[-4000:], _LEAK_WORDS))
