"""Prompt sources: the built-in sample questions by category, or JSONL files given with --prompts.

A prompt source is loaded once per process and shared by every simulated user; users only pick
from it. Request names in Locust's stats group by a prompt's category, never by its text, so a
thousand different questions still make one readable row per category.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from core.errors import InputError
from core.input_files import MAX_DATA_FILE_MB, MB, check_size, read_text_file, size_text

BUILTIN_PROMPTS: dict[str, tuple[str, ...]] = {
    "simple": (
        "Hello!",
        "What are your opening hours?",
        "Can you help me?",
        "Where are you located?",
        "How do I contact support?",
        "Thanks, that's all.",
        "Do you speak Spanish?",
        "What is your name?",
    ),
    "common": (
        "How do I reset my password?",
        "What is your refund policy for items bought on sale?",
        "Can I change the delivery address after my order has shipped?",
        "Which payment methods do you accept, and are there any fees?",
        "How long does standard shipping take to Canada?",
        "My invoice shows the wrong company name. How can I fix it?",
        "How do I cancel my subscription before the next billing cycle?",
        "Is there a student discount, and how do I prove I'm eligible?",
    ),
    "complex": (
        "Compare your three subscription plans for a team of 40 people who need single sign-on, audit logs and "
        "a 99.9% uptime guarantee, and recommend one with reasons.",
        "I was charged twice for order 58213 after the payment page timed out. Explain what probably happened, "
        "what you will do about it, and how long each step takes.",
        "Write a step-by-step migration plan for moving 12,000 customer records from our old CRM into your "
        "platform without downtime, including how to validate the result.",
        "Summarise the differences between your data retention rules in the EU and the US, and explain what "
        "happens to my conversation history if I close my account.",
        "Our warehouse ships 300 parcels a day. Estimate the monthly cost on your business plan including "
        "returns at 4%, and show the calculation.",
        "Explain, as if to a new colleague, how your API rate limits work, how to back off on HTTP 429, and how "
        "to request a higher limit.",
    ),
}
"""Sample questions in three categories, for testing without a dataset of your own."""

DEFAULT_CATEGORY_WEIGHTS = "simple=3,common=5,complex=2"
"""How often each built-in category is asked (relative weights)."""

LIMIT_OPTION = "--max-data-file-mb"
"""The option that raises the cap on prompt files (declared with the other chat options, users/common/chat_base.py)."""

PROMPT_FIELD = "prompt"
"""The key that holds the prompt text on each JSONL line."""


@dataclass(frozen=True, slots=True)
class Prompt:
    """One question to ask, with the category that names its stats row and any extra fields of its line."""

    text: str
    category: str
    fields: dict[str, Any] = field(default_factory=dict, compare=False)


class PromptSource:
    """A fixed set of prompts grouped by category, picked at random by category weight."""

    def __init__(self, prompts_by_category: dict[str, list[Prompt]], weights: dict[str, float] | None = None) -> None:
        self.categories = [c for c, prompts in prompts_by_category.items() if prompts]
        if not self.categories:
            raise InputError("the prompt source is empty: give --prompts a JSONL file with at least one prompt")
        self._prompts = {c: prompts_by_category[c] for c in self.categories}
        if weights is None:
            # Files: every prompt equally likely, so a category weighs as much as it has prompts.
            weights = {c: float(len(self._prompts[c])) for c in self.categories}
        self._weights = [weights.get(c, 0.0) for c in self.categories]
        if sum(self._weights) <= 0:
            raise InputError("--prompt-weights: every category has weight 0; give at least one a positive weight")

    def __len__(self) -> int:
        return sum(len(p) for p in self._prompts.values())

    def pick(self, rng: random.Random) -> Prompt:
        """A random prompt: first a category by weight, then a prompt within it."""
        category = rng.choices(self.categories, self._weights)[0]
        return rng.choice(self._prompts[category])


def parse_category_weights(text: str) -> dict[str, float]:
    """Parse ``simple=3,common=5,complex=2`` into a dict; a bad entry raises InputError."""
    weights: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        try:
            weight = float(value) if sep else float("nan")
        except ValueError:
            weight = float("nan")
        if not name.strip() or not weight >= 0:
            raise InputError(
                f"--prompt-weights: bad entry {part!r}; expected CATEGORY=WEIGHT, e.g. {DEFAULT_CATEGORY_WEIGHTS}"
            )
        weights[name.strip()] = weight
    return weights


def _checked_weights(weights_text: str, categories: list[str]) -> dict[str, float]:
    weights = parse_category_weights(weights_text)
    unknown = sorted(set(weights) - set(categories))
    if unknown:
        raise InputError(f"--prompt-weights: unknown category {unknown[0]!r}; the prompts have {', '.join(categories)}")
    return weights


def builtin_source(weights_text: str = DEFAULT_CATEGORY_WEIGHTS) -> PromptSource:
    """The built-in sample questions, weighted by category."""
    prompts = {c: [Prompt(text, c) for text in texts] for c, texts in BUILTIN_PROMPTS.items()}
    return PromptSource(prompts, _checked_weights(weights_text, list(BUILTIN_PROMPTS)))


def read_jsonl(path: Path, max_bytes: int = MAX_DATA_FILE_MB * MB) -> list[Prompt]:
    """Read one JSONL prompt file; each line is an object with a "prompt" string, other fields are kept.

    The category is the line's "category" field, else the file's name without ".jsonl". A file over
    ``max_bytes``, binary or not UTF-8 is refused before a line is parsed.
    """
    text = read_text_file(path, "--prompts", max_bytes, LIMIT_OPTION)
    return [
        _prompt_from_line(path, number, line) for number, line in enumerate(text.splitlines(), start=1) if line.strip()
    ]


def _prompt_from_line(path: Path, number: int, line: str) -> Prompt:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise InputError(f"{path}:{number}: malformed JSON ({error.msg}); each line must be one JSON object") from None
    if not isinstance(record, dict):
        raise InputError(f'{path}:{number}: expected a JSON object like {{"prompt": "..."}}')
    text = record.pop(PROMPT_FIELD, None)
    if not isinstance(text, str) or not text.strip():
        raise InputError(f'{path}:{number}: missing or empty "{PROMPT_FIELD}" string')
    category = str(record.get("category") or path.name.removesuffix(".jsonl"))
    return Prompt(text, category, record)


def load_prompts(
    location: str,
    max_samples: int = 0,
    seed: int | None = None,
    weights_text: str = "",
    max_bytes: int = MAX_DATA_FILE_MB * MB,
) -> PromptSource:
    """Load a JSONL file, or every ``*.jsonl`` file of a folder, keeping at most ``max_samples`` prompts.

    With ``max_samples`` the kept prompts are a random sample (seeded), not just the first lines. Without
    category weights every prompt is equally likely. The files together may hold at most ``max_bytes``.
    """
    path = Path(location).expanduser()
    if path.is_dir():
        files = sorted(path.glob("*.jsonl"))
        if not files:
            raise InputError(f"--prompts: the folder {location} has no *.jsonl files")
    elif path.is_file():
        files = [path]
    else:
        raise InputError(f"--prompts: no such file or folder: {location}")
    if len(files) > 1:
        total = sum(check_size(file, "--prompts", max_bytes, LIMIT_OPTION) for file in files)
        check_size_total(location, total, max_bytes)
    prompts = [prompt for file in files for prompt in read_jsonl(file, max_bytes)]
    if not prompts:
        raise InputError(f"--prompts: {location} holds no prompts")
    if 0 < max_samples < len(prompts):
        prompts = random.Random(seed).sample(prompts, max_samples)
    by_category: dict[str, list[Prompt]] = {}
    for prompt in prompts:
        by_category.setdefault(prompt.category, []).append(prompt)
    weights = _checked_weights(weights_text, list(by_category)) if weights_text else None
    return PromptSource(by_category, weights)


def check_size_total(location: str, total: int, max_bytes: int) -> None:
    """Refuse a folder whose prompt files together pass the cap (each alone may be under it)."""
    if total > max_bytes:
        raise InputError(
            f"--prompts: the *.jsonl files in {location} hold {size_text(total)}, over the {size_text(max_bytes)} "
            f"limit ({LIMIT_OPTION})"
        )


@lru_cache(maxsize=8)
def prompt_source(
    location: str | None, weights_text: str, max_samples: int, seed: int | None, max_bytes: int = MAX_DATA_FILE_MB * MB
) -> PromptSource:
    """The prompt source for these options, loaded once per process and shared by all users."""
    if location:
        return load_prompts(location, max_samples, seed, weights_text, max_bytes)
    return builtin_source(weights_text or DEFAULT_CATEGORY_WEIGHTS)
