"""Test data, many bots and credential profiles: scripts/create_test_data.py against demobot's bot API,
a load test spread over three bots whose answers must come from the right bot, and --env profiles."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections import Counter
from pathlib import Path

from tests.conftest import ROOT, clean_env

CREATE = [sys.executable, str(ROOT / "scripts" / "create_test_data.py")]
BOT_BOT = ("--train-time", "0.3", "--ttft-ms", "5", "--token-ms", "1")


def create(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CREATE, *args], capture_output=True, text=True, timeout=120, env=clean_env())


def bots_of(url: str) -> list[dict]:
    return json.load(urllib.request.urlopen(url + "/api/bots", timeout=5))


def test_create_data_bots_and_accounts_idempotently(demobot, tmp_path: Path) -> None:
    bot = demobot(*BOT_BOT)
    out = tmp_path / "data"
    first = create("--host", bot.url, "--bots", "3", "--pairs", "6", "--accounts", "4", "--out", str(out))
    assert first.returncode == 0, first.stderr
    ids = (out / "bots.txt").read_text().split()
    prompts = [json.loads(line) for line in (out / "prompts.jsonl").read_text().splitlines()]
    assert len(ids) == 3 and len(prompts) == 18
    assert {p["bot_id"] for p in prompts} == set(ids)
    assert {p["category"] for p in prompts} == {"simple", "common", "complex"}
    assert all(b["status"] == "trained" and b["pairs"] == 6 for b in bots_of(bot.url))
    accounts = (out / "accounts.csv").read_text().splitlines()
    assert accounts[0] == "email,password" and len(accounts) == 5
    assert (out / "accounts.csv").stat().st_mode & 0o077 == 0  # only its owner may read the passwords
    password = accounts[1].split(",")[1]
    assert password not in first.stdout + first.stderr

    again = create("--host", bot.url, "--bots", "3", "--pairs", "6", "--accounts", "4", "--out", str(out))
    assert again.returncode == 0, again.stderr
    assert (out / "bots.txt").read_text().split() == ids and len(bots_of(bot.url)) == 3
    assert (out / "prompts.jsonl").read_text().count("\n") == 18

    reset = create("--host", bot.url, "--bots", "2", "--pairs", "6", "--reset", "--out", str(out))
    assert reset.returncode == 0, reset.stderr
    assert len(bots_of(bot.url)) == 2 and not set((out / "bots.txt").read_text().split()) & set(ids)


def test_prompt_datasets_without_a_target_are_repeatable(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    assert create("--pairs", "50", "--seed", "7", "--out", str(one)).returncode == 0
    assert create("--pairs", "50", "--seed", "7", "--out", str(two)).returncode == 0
    assert (one / "prompts.jsonl").read_text() == (two / "prompts.jsonl").read_text()
    assert len((one / "prompts.jsonl").read_text().splitlines()) == 50
    bad = create("--bots", "2", "--out", str(tmp_path / "x"))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--bots and --accounts need --host" in bad.stderr


def test_load_over_three_bots_answers_from_the_right_bot(demobot, run_locust, tmp_path: Path) -> None:
    bot = demobot(*BOT_BOT)
    out = tmp_path / "data"
    assert create("--host", bot.url, "--bots", "3", "--pairs", "9", "--out", str(out)).returncode == 0
    common = ("--host", bot.url, "--user-mix", "RestChatUser", "-u", "6", "-t", "4s", "--think-time", "0.05")
    bots = ("--chat-path", "/api/bots/{bot_id}/chat", "--bot-ids", f"@{out / 'bots.txt'}")
    run = run_locust(*common, *bots, "--prompts", str(out / "prompts.jsonl"), "--check-answers", "--group-by-bot")
    assert run.returncode == 0, run.output
    ids = (out / "bots.txt").read_text().split()
    rows = run.rows("POST chat:")
    assert {key.rsplit("@", 1)[1] for key in rows} == set(ids)
    chats = {b["id"]: b["chats"] for b in bots_of(bot.url)}
    total = sum(chats.values())
    assert total > 100 and all(count > total / 6 for count in chats.values()), chats

    # Sent all to the first bot, its own questions get their answers and the other bots' get generic ones, which
    # --check-answers catches: every one of them, and none of its own (a share of a mix would vary run to run).
    lines = (out / "prompts.jsonl").read_text().splitlines()
    for own, name in ((True, "own.jsonl"), (False, "others.jsonl")):
        picked = [line for line in lines if (json.loads(line)["bot_id"] == ids[0]) == own]
        assert len(picked) == (9 if own else 18)
        (tmp_path / name).write_text("\n".join(picked) + "\n")
        asked = run_locust(*common, "--chat-path", "/api/bots/{bot_id}/chat", "--bot-ids", ids[0],
                           "--prompts", str(tmp_path / name), "--check-answers")  # fmt: skip
        failures = Counter()
        for failure in asked.summary["failures"]:
            failures[failure["error"]] += failure["occurrences"]
        totals = asked.summary["totals"]
        assert totals["count"] > 10, totals
        if own:
            assert not failures and totals["failures"] == 0, failures
        else:
            assert set(failures) == {"wrong answer"} and totals["failures"] == totals["count"], (failures, totals)


def test_random_spread_over_bots_with_built_in_prompts(demobot, run_locust, tmp_path: Path) -> None:
    bot = demobot(*BOT_BOT)
    out = tmp_path / "data"
    assert create("--host", bot.url, "--bots", "3", "--pairs", "3", "--out", str(out)).returncode == 0
    ids = ",".join((out / "bots.txt").read_text().split())
    run = run_locust("--host", bot.url, "--user-mix", "RestChatUser", "-u", "3", "-t", "3s", "--think-time", "0.05",
                     "--chat-path", "/api/bots/{bot_id}/chat", "--bot-ids", ids, "--bot-spread", "random")  # fmt: skip
    assert run.returncode == 0, run.output
    assert set(run.rows("POST")) == {"POST chat:simple", "POST chat:common", "POST chat:complex"}
    assert all(b["chats"] > 5 for b in bots_of(bot.url))


def test_bot_option_mistakes(run_locust, demobot, tmp_path: Path) -> None:
    bot = demobot()
    cases = {
        ("--bot-ids", "a,b"): "--bot-ids needs a --chat-path with {bot_id}",
        ("--chat-path", "/api/bots/{bot_id}/chat"): "has {bot_id}: give the bots with --bot-ids",
        ("--chat-path", "/b/{bot_id}", "--bot-ids", f"@{tmp_path / 'none.txt'}"): "--bot-ids: cannot read",
    }
    for args, expected in cases.items():
        run = run_locust("--host", bot.url, "-u", "1", "-t", "1s", *args)
        assert run.returncode == 2 and expected in run.output, run.output


def test_credential_profiles(demobot, tmp_path: Path) -> None:
    bot = demobot("--auth", "required", "--account", "dev@example.com:dev-secret", "--ttft-ms", "5")
    (tmp_path / ".env").write_text("CHATBOT_URL=http://127.0.0.1:9\nLOGIN_EMAIL=prod@example.com\n")
    (tmp_path / ".env.dev").write_text(
        f"CHATBOT_URL={bot.url}\nLOGIN_EMAIL=dev@example.com\nLOGIN_PASSWORD=dev-secret\n"
    )
    (tmp_path / ".env.broken").write_text(f"CHATBOT_URL={bot.url}\n")
    env = {**clean_env(), "CHATSWARM_ENV_FILE": str(tmp_path / ".env")}
    base = [sys.executable, "-m", "locust", "-f", "locustfile.py", "--headless", "-u", "1", "-t", "2s"]
    base += ["--user-mix", "RestChatUser", "--auth", "login", "--report-dir"]

    def locust(*args: str) -> subprocess.CompletedProcess[str]:
        command = [*base, str(tmp_path / f"run-{len(args)}-{args[-1]}"), *args]
        return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)

    dev = locust("--env", "dev")
    assert dev.returncode == 0, dev.stderr
    summary = json.loads((tmp_path / "run-2-dev" / "summary.json").read_text())
    assert summary["host"] == bot.url and summary["requests"]["POST login"]["failures"] == 0
    assert "dev-secret" not in dev.stdout + dev.stderr

    missing = locust("--env", "staging")
    assert missing.returncode == 2 and "--env staging: no file" in missing.stderr and ".env.staging" in missing.stderr
    broken = locust("--env", "broken")
    assert broken.returncode == 2 and "LOGIN_PASSWORD" in broken.stderr
