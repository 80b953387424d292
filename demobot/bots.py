"""demobot's bots: named chatbots that learn question/answer pairs, so tests can chat with many of them.

A bot starts empty, takes uploaded pairs, trains for --train-time seconds, and then answers a question
it was trained on with that pair's answer (questions match ignoring case, spaces and punctuation);
anything else gets a generic answer.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

EMPTY, UPLOADED, TRAINING, TRAINED = "empty", "uploaded", "training", "trained"

_NOT_WORD = re.compile(r"[^\w]+")


def normalized(question: str) -> str:
    """The form questions are matched in: lower case, words only."""
    return _NOT_WORD.sub(" ", question.lower()).strip()


@dataclass
class Bot:
    """One bot and what it has learned."""

    id: str
    name: str
    pairs: dict[str, str] = field(default_factory=dict)
    """Normalized question → answer."""
    trained_pairs: dict[str, str] = field(default_factory=dict)
    training_done_at: float | None = None
    chats: int = 0

    def status(self, now: float) -> str:
        if self.training_done_at is not None:
            return TRAINED if now >= self.training_done_at else TRAINING
        return UPLOADED if self.pairs else EMPTY

    def answer_for(self, question: str, now: float) -> str | None:
        """The trained answer to a question, or None when the bot does not know it (or is not trained yet)."""
        if self.status(now) != TRAINED:
            return None
        return self.trained_pairs.get(normalized(question))

    def describe(self, now: float) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status(now),
            "pairs": len(self.pairs),
            "chats": self.chats,
        }


class BotStore:
    """All bots of one demobot, by id."""

    def __init__(self, train_time_s: float) -> None:
        self.train_time_s = train_time_s
        self.bots: dict[str, Bot] = {}

    def create(self, name: str) -> Bot:
        bot = Bot(id=uuid.uuid4().hex[:12], name=name)
        self.bots[bot.id] = bot
        return bot

    def upload(self, bot: Bot, pairs: list[tuple[str, str]]) -> None:
        """Add pairs; the bot has to be trained again to use them."""
        bot.pairs.update((normalized(question), answer) for question, answer in pairs)
        bot.training_done_at = None

    def train(self, bot: Bot, now: float | None = None) -> None:
        """Start training on the uploaded pairs; it is done after the store's train time."""
        bot.trained_pairs = dict(bot.pairs)
        bot.training_done_at = (time.monotonic() if now is None else now) + self.train_time_s
