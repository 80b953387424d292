"""Prepare once, test many times: prompt datasets, trained bots and load-test accounts.

    python scripts/create_test_data.py --out DIR [--pairs M] [--seed S]            # DIR/prompts.jsonl
    python scripts/create_test_data.py --host URL --bots N --pairs M --out DIR     # + N trained bots
    python scripts/create_test_data.py --host URL --accounts N --out DIR           # + DIR/accounts.csv
    python scripts/create_test_data.py --out DIR --voice [--voices V,..] [--speech-rates WPM,..]  # + DIR/voice/

Question/answer pairs are built from a word list (/usr/share/dict/words when present, else the shipped
datasets/words.txt) in three categories (simple, common, complex), the same for the same --seed. With a
target, bots named ``chatswarm-bot-1`` … are created through its bot API, given their own pairs, trained
and waited for; their ids go to DIR/bots.txt (for ``--bot-ids @DIR/bots.txt``) and each prompt line
names its bot (``bot_id``) and expected ``answer``. Running it again reuses what exists (``--reset``
deletes the bots first). ``--accounts N`` registers ``loadtest1`` … through /api/auth/register and
writes DIR/accounts.csv (for ``--accounts``); the file holds passwords, so it is readable by you only.
``--voice`` says every prompt into DIR/voice/ with espeak-ng (scripts/voice_data.py), for ``--audio-dir``;
``--categories simple,common`` keeps the questions short.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import random
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scripts import voice_data  # noqa: E402

SYSTEM_WORDS = Path("/usr/share/dict/words")
SHIPPED_WORDS = ROOT / "datasets" / "words.txt"
BOT_PREFIX = "chatswarm-bot-"
CATEGORIES = ("simple", "common", "complex")
TRAIN_WAIT_S = 120.0
"""Longest wait for the bots to finish training."""

TEMPLATES = {
    "simple": ("What is a {0}?", "A {0} is what you use for your {1}."),
    "common": ("How do I change the {0} on my {1}?", "Open your {1} settings, choose {0}, and save the new {2}."),
    "complex": (
        "Compare the {0} and the {1} for a team that needs a {2}, and explain the {3} involved.",
        "For a team that needs a {2}, the {0} suits daily work and the {1} suits growth; the {3} decides.",
    ),
}


class SetupError(Exception):
    """A problem with the input or the target; printed as one line, exit code 2."""


def load_words(path: Path | None) -> list[str]:
    """Plain lower-case words from the given list, the system dictionary, or the shipped list."""
    source = path or (SYSTEM_WORDS if SYSTEM_WORDS.is_file() else SHIPPED_WORDS)
    try:
        lines = source.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as error:
        raise SetupError(f"--words: cannot read {source}: {error.strerror}") from None
    words = sorted({w for w in (line.strip() for line in lines) if w.isalpha() and w.islower() and 3 <= len(w) <= 10})
    if len(words) < 20:
        raise SetupError(f"--words: {source} has fewer than 20 usable words")
    return words


def make_pairs(
    words: list[str], count: int, seed: str, categories: tuple[str, ...] = CATEGORIES
) -> list[dict[str, str]]:
    """``count`` distinct question/answer pairs, cycling through ``categories``, repeatable for a seed."""
    rng = random.Random(seed)
    pairs: dict[str, dict[str, str]] = {}
    attempts = 0
    while len(pairs) < count:
        attempts += 1
        if attempts > count * 50:
            raise SetupError(f"--pairs {count}: the word list is too small for that many distinct questions")
        category = categories[len(pairs) % len(categories)]
        question, answer = TEMPLATES[category]
        picked = rng.sample(words, 4)
        text = question.format(*picked)
        pairs.setdefault(text, {"prompt": text, "category": category, "answer": answer.format(*picked)})
    return list(pairs.values())


class Target:
    """The chatbot's bot and account API, over plain HTTP."""

    def __init__(self, host: str, token: str | None = None) -> None:
        self.host = host.rstrip("/")
        self.token = token

    def call(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200, 201, 202, 204)) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.host + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            status, text = error.code, error.read().decode(errors="replace")
        except OSError as error:
            raise SetupError(f"cannot reach {self.host} ({getattr(error, 'reason', error)}); check --host") from None
        if status not in ok:
            raise SetupError(f"{method} {path} answered HTTP {status}; does {self.host} offer the bot API?")
        return json.loads(text) if text.strip() else None


def provision_bots(target: Target, count: int, words: list[str], pairs: int, seed: str, reset: bool) -> list[dict]:
    """Create, fill and train bots 1..count (reusing those that exist); returns [{id, name, pairs}]."""
    existing = {bot["name"]: bot for bot in target.call("GET", "/api/bots") if bot["name"].startswith(BOT_PREFIX)}
    if reset:
        for bot in existing.values():
            target.call("DELETE", f"/api/bots/{bot['id']}")
        existing = {}
    bots = []
    for number in range(1, count + 1):
        name = f"{BOT_PREFIX}{number}"
        bot = existing.get(name) or target.call("POST", "/api/bots", {"name": name})
        bot_pairs = make_pairs(words, pairs, f"{seed}/{name}")
        if bot.get("pairs") != pairs or bot.get("status") not in ("training", "trained"):
            upload = [{"question": p["prompt"], "answer": p["answer"]} for p in bot_pairs]
            target.call("POST", f"/api/bots/{bot['id']}/pairs", {"pairs": upload})
            target.call("POST", f"/api/bots/{bot['id']}/train")
        bots.append({"id": bot["id"], "name": name, "pairs": bot_pairs})
    deadline = time.monotonic() + TRAIN_WAIT_S
    for bot in bots:
        while target.call("GET", f"/api/bots/{bot['id']}")["status"] != "trained":
            if time.monotonic() > deadline:
                raise SetupError(f"bot {bot['name']} was not trained within {TRAIN_WAIT_S:.0f} s")
            time.sleep(0.2)
    return bots


def register_accounts(target: Target, count: int, password: str) -> list[tuple[str, str]]:
    """Register loadtest1..count (an existing one must accept the password); returns (username, password)."""
    accounts = []
    for number in range(1, count + 1):
        name = f"loadtest{number}"
        credentials = {"email": name, "password": password}
        if target.call("POST", "/api/auth/register", credentials, ok=(201, 409)) is None or not _can_login(
            target, credentials
        ):
            raise SetupError(f"{name} exists already with another password; give that one with --password")
        accounts.append((name, password))
    return accounts


def _can_login(target: Target, credentials: dict[str, str]) -> bool:
    try:
        target.call("POST", "/api/auth/login", credentials, ok=(200,))
    except SetupError:
        return False
    return True


def write_private(path: Path, rows: list[tuple[str, str]]) -> None:
    """An accounts CSV only its owner can read."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(("email", "password"))
        writer.writerows(rows)


def main(argv: list[str] | None = None) -> int:
    """Create the data; 0 on success, 2 with one line on a bad input or target."""
    parser = argparse.ArgumentParser(prog="create_test_data.py", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for prompts.jsonl, bots.txt, accounts.csv")
    parser.add_argument("--pairs", type=int, default=30, help="question/answer pairs (per bot with --bots)")
    parser.add_argument("--seed", default="1", help="same seed, same data")
    parser.add_argument("--words", type=Path, help="word list, one word per line")
    parser.add_argument("--host", help="the chatbot to provision (bots, accounts)")
    parser.add_argument("--bots", type=int, default=0, help="bots to create and train on the target")
    parser.add_argument("--reset", action="store_true", help="delete this script's bots first and start over")
    parser.add_argument("--accounts", type=int, default=0, help="load-test accounts to register on the target")
    parser.add_argument("--password", default=os.environ.get("LOADTEST_PASSWORD"), help="their password")
    parser.add_argument("--categories", default=",".join(CATEGORIES), help="question kinds: simple,common,complex")
    parser.add_argument("--voice", action="store_true", help="also say every prompt into DIR/voice/*.wav (espeak-ng)")
    parser.add_argument("--voices", default=",".join(voice_data.DEFAULT_VOICES), help="espeak-ng voices, in turn")
    parser.add_argument(
        "--speech-rates",
        default=",".join(map(str, voice_data.DEFAULT_SPEECH_RATES)),
        help="words per minute, in turn (80-450)",
    )
    options = parser.parse_args(argv)
    try:
        categories = tuple(voice_data.listed(options.categories, "--categories"))
        if not set(categories) <= set(CATEGORIES):
            raise SetupError(f"--categories: {options.categories!r}; choose from {', '.join(CATEGORIES)}")
        if options.pairs < 1 or options.bots < 0 or options.accounts < 0:
            raise SetupError("--pairs must be 1 or more, --bots and --accounts 0 or more")
        if (options.bots or options.accounts) and not options.host:
            raise SetupError("--bots and --accounts need --host, the chatbot to create them on")
        words = load_words(options.words)
        options.out.mkdir(parents=True, exist_ok=True)
        target = Target(options.host) if options.host else None
        if target and options.bots:
            bots = provision_bots(target, options.bots, words, options.pairs, options.seed, options.reset)
            prompts = [{**pair, "bot_id": bot["id"]} for bot in bots for pair in bot["pairs"]]
            (options.out / "bots.txt").write_text("".join(f"{bot['id']}\n" for bot in bots), encoding="utf-8")
        else:
            prompts = make_pairs(words, options.pairs, options.seed, categories)
        with (options.out / "prompts.jsonl").open("w", encoding="utf-8") as file:
            file.writelines(json.dumps(prompt) + "\n" for prompt in prompts)
        summary = [f"{len(prompts)} prompts in {options.out / 'prompts.jsonl'}"]
        if options.voice:
            voices, rates = voice_data.listed(options.voices, "--voices"), voice_data.speech_rates(options.speech_rates)
            said = voice_data.render_prompts([p["prompt"] for p in prompts], options.out / "voice", voices, rates)
            summary.append(f"{said} spoken questions in {options.out / 'voice'}")
        if target and options.bots:
            summary.append(f"{options.bots} trained bots in {options.out / 'bots.txt'}")
        if target and options.accounts:
            password = options.password or "Lt-" + hashlib.sha256(f"chatswarm/{options.seed}".encode()).hexdigest()[:16]
            write_private(options.out / "accounts.csv", register_accounts(target, options.accounts, password))
            summary.append(f"{options.accounts} accounts in {options.out / 'accounts.csv'}")
    except (SetupError, voice_data.VoiceError) as error:
        print(f"create_test_data: error: {error}", file=sys.stderr)
        return 2
    print("; ".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
