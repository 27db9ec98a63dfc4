"""What answering produces: the answer with its citations and the check of each of its
sentences (claims and their evidence), and the events of its stream."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.retrieval.records import Hit

# A sentence of a passage: the passage's id, the sentence's start and end in its text.
SentenceId = tuple[str, int, int]


@dataclass
class Citation:
    """Passage [n] of an answer, which the answer cites."""

    n: int
    passage: Hit

    @property
    def passage_id(self) -> str:
        return self.passage.id

    @property
    def doc_id(self) -> str:
        return self.passage.doc_id

    @property
    def title(self) -> str:
        return self.passage.meta.title

    @property
    def lang(self) -> str:
        return self.passage.meta.lang

    @property
    def source_url(self) -> str:
        return self.passage.meta.source_url

    @property
    def text(self) -> str:
        return self.passage.text

    @property
    def alternatives(self) -> list[Hit]:
        """The same passage in other translations of the story."""
        return self.passage.alternatives


@dataclass
class Evidence:
    """The passage sentence an answer sentence rests on."""

    n: int  # the passage, as the answer numbers it
    start: int  # offsets of the sentence in the passage's text
    end: int
    score: float

    def to_dict(self, text: str) -> dict[str, Any]:
        return {
            "n": self.n,
            "start": self.start,
            "end": self.end,
            "text": text[self.start : self.end],
            "score": round(self.score, 2),
        }


@dataclass
class Claim:
    """One sentence (or list item) of the answer and what it rests on."""

    start: int  # offsets in Answer.text
    end: int
    text: str  # without its markers
    cited: list[int] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    supported: bool = False
    moved_from: list[int] = field(default_factory=list)  # markers the check replaced
    added: bool = False  # the model cited nothing here; the check added the marker


@dataclass(frozen=True)
class Checked:
    """A reply after the citation check (bot.answering.support): its text with every marker
    where the check put it, the citations that follow, and each sentence's claim."""

    text: str
    citations: list[Citation]
    claims: list[Claim]


@dataclass(frozen=True)
class Answer:
    """A finished answer, made once by the pipeline (bot.answering.pipeline)."""

    question: str
    standalone_question: str
    lang: str
    text: str = ""
    refused: bool = False  # the bot says it does not know (the model's refusal, or no reply)
    # "supported": the check supports every sentence; "partly supported": some (the others
    # are marked); "unsupported": none, so the reply is withheld as `draft` and `text` says
    # the articles do not seem to say it; "refused"; "failed": the LLM broke off (`error`)
    verdict: str = "supported"
    draft: str = ""  # an unsupported reply, withheld (the claims are its sentences)
    passages: list[Hit] = field(default_factory=list)  # [n] is passages[n - 1]
    context_n: int = 0  # the first context_n passages were given to the model
    citations: list[Citation] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    error: str = ""
    guard: str = ""  # why a reply was replaced by the refusal: "uncited", "prompt leak"
    raw_text: str = ""  # what the model wrote, before citation filtering (for evaluation)
    mode: str = "passages"  # "article": the model read article_id whole (or a section);
    # "translation": its stored translation (passages and evidence are the originals)
    article_id: str = ""
    articles_tried: list[str] = field(default_factory=list)  # what each reading read, in order
    tries: list[str] = field(default_factory=list)  # each reading and its verdict, in order
    read: list[Hit] = field(default_factory=list)  # all the model read, over every article tried
    claims: list[Claim] = field(default_factory=list)  # one per sentence, as checked
    retrieved: list[Hit] = field(default_factory=list)  # retrieval's ranking (top k)
    article_ranking: list[str] = field(default_factory=list)  # article ids, best first
    foreign: list[str] = field(default_factory=list)  # words of another language in the reply
    foreign_left: list[str] = field(default_factory=list)  # those the rewrite could not remove

    def shown(self) -> str:
        """The text as a reader sees it: an LLM failure marked ⚠️ after what came before it."""
        if not self.error:
            return self.text
        before = self.text.removesuffix(self.error)
        if before == self.text and before:  # the error is not in the text
            before += "\n\n"
        return f"{before}⚠️ {self.error}"

    def to_dict(self) -> dict[str, Any]:
        """The one serialised form of an answer (the /ask API, `python -m bot --json`)."""
        return {
            "question": self.question,
            "standalone_question": self.standalone_question,
            "lang": self.lang,
            "answer": self.text,
            "refused": self.refused,
            "verdict": self.verdict,
            "draft": self.draft,
            "tries": self.tries,
            "error": self.error,
            "guard": self.guard,
            "citations": [{"n": c.n, **c.passage.to_dict()} for c in self.citations],
            "passages": [
                {"n": n, **hit.to_dict(), "given_to_model": n <= self.context_n}
                for n, hit in enumerate(self.passages, 1)
            ],
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "mode": self.mode,
            "article_id": self.article_id,
            "sentences": [self._claim(c) for c in self.claims],
            "foreign_words": {"found": self.foreign, "left": self.foreign_left},
        }

    def _claim(self, claim: Claim) -> dict[str, Any]:
        return {
            "start": claim.start,
            "end": claim.end,
            "text": claim.text,
            "citations": claim.cited,
            "supported": claim.supported,
            "moved_from": claim.moved_from,
            "evidence": [e.to_dict(self.passages[e.n - 1].text) for e in claim.evidence],
        }


@dataclass
class Rewritten:
    """A follow-up was made standalone with the conversation: what retrieval searches for."""

    question: str


@dataclass
class Checking:
    """The model has begun its reply: it is shown once a sentence of it passes the citation
    check (bot.answering.gate)."""


@dataclass
class Retrying:
    """The last reading gave no answer the check supports (`why`: its verdict); the model
    reads again, this time `kind` ("article", "translation": the article's stored translation,
    or "passages"): a Sources event follows."""

    kind: str
    why: str


@dataclass
class Sources:
    """Retrieval is done: the passages, numbered as the answer will cite them."""

    passages: list[Hit]
    context_n: int


@dataclass
class Token:
    text: str


@dataclass
class Done:
    answer: Answer


Event = Rewritten | Retrying | Sources | Checking | Token | Done
