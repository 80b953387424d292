"""Many bots: spreading chats over several bots through a chat path template such as
``/api/bots/{bot_id}/chat``.

``--bot-ids`` lists the bots (comma separated, or ``@FILE`` with one id per line, as written by
scripts/create_test_data.py). Each question goes to the bot its prompt names (a ``bot_id`` field in the
prompts file), else to the next bot in turn (``--bot-spread even``) or a random one (``random``). With
``--group-by-bot`` the bot id is part of the request name, so Locust's stats show one row per bot.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from core.errors import InputError
from core.input_files import MAX_DATA_FILE_MB, MB, read_text_file
from core.settings import Settings, setting
from users.common.prompts import Prompt

BOT_PLACEHOLDER = "{bot_id}"
SPREADS = ("even", "random")


@dataclass(frozen=True)
class BotSettings(Settings):
    """The many-bots options (RestChatUser's settings extend these: the chat path is its own)."""

    bot_ids: str = setting("", "Bots to chat with: id1,id2,... or @FILE (one id per line)")
    bot_spread: str = setting("even", "Each user's questions go to bots in turn or at random", choices=SPREADS)
    group_by_bot: bool = setting(False, "One stats row per bot")


@lru_cache(maxsize=8)
def parse_bot_ids(text: str) -> tuple[str, ...]:
    """Bot ids from ``a,b,c`` or ``@FILE``."""
    text = text.strip()
    if text.startswith("@"):
        path = Path(text[1:]).expanduser()
        lines = read_text_file(path, "--bot-ids", MAX_DATA_FILE_MB * MB).splitlines()
        ids = tuple(line.strip() for line in lines if line.strip() and not line.startswith("#"))
        if not ids:
            raise InputError(f"--bot-ids: {path} lists no bot ids")
        return ids
    return tuple(part.strip() for part in text.split(",") if part.strip())


@dataclass(frozen=True)
class BotTargets:
    """Which bot each question goes to, and how its request is named."""

    ids: tuple[str, ...]
    spread: str
    group_by_bot: bool

    def pick(self, prompt: Prompt, turn: int, rng: random.Random) -> str:
        """The bot for this question: the prompt's own bot when it names one of ours, else by the spread."""
        named = prompt.fields.get("bot_id")
        if named in self.ids:
            return named
        return rng.choice(self.ids) if self.spread == "random" else self.ids[turn % len(self.ids)]

    def request_name(self, base: str, bot_id: str) -> str:
        return f"{base}@{bot_id}" if self.group_by_bot else base


def bot_targets(settings: BotSettings, chat_path: str) -> BotTargets | None:
    """The bots of this run, or None when the chat path has no {bot_id}; raises InputError for a mismatch."""
    ids = parse_bot_ids(settings.bot_ids)
    if BOT_PLACEHOLDER not in chat_path:
        if ids:
            raise InputError(
                f"--bot-ids needs a --chat-path with {BOT_PLACEHOLDER}, e.g. /api/bots/{BOT_PLACEHOLDER}/chat"
            )
        return None
    if not ids:
        raise InputError(
            f"--chat-path {chat_path} has {BOT_PLACEHOLDER}: give the bots with --bot-ids id1,id2 or @bots.txt"
        )
    return BotTargets(ids, settings.bot_spread, settings.group_by_bot)
