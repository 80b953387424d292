"""Prompt sources: built-in categories and weights, JSONL files and folders, and their errors."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from core.errors import InputError
from users.common.prompts import BUILTIN_PROMPTS, builtin_source, load_prompts, parse_category_weights


def write(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_builtin_categories_follow_their_weights() -> None:
    source = builtin_source("simple=1,common=0,complex=3")
    rng = random.Random(7)
    picks = Counter(source.pick(rng).category for _ in range(4000))
    assert set(picks) == {"simple", "complex"}
    assert 0.70 < picks["complex"] / 4000 < 0.80
    assert all(p.text in BUILTIN_PROMPTS[p.category] for p in [source.pick(random.Random(1))])


def test_weights_parse_and_reject() -> None:
    assert parse_category_weights("simple=3, common=5,complex=2.5") == {"simple": 3, "common": 5, "complex": 2.5}
    for bad in ("simple", "simple=x", "simple=-1", "=3"):
        with pytest.raises(InputError, match="--prompt-weights"):
            parse_category_weights(bad)
    with pytest.raises(InputError, match="unknown category 'chitchat'"):
        builtin_source("chitchat=1")
    with pytest.raises(InputError, match="weight 0"):
        builtin_source("simple=0,common=0,complex=0")


def test_jsonl_file_keeps_fields_and_groups_by_category(tmp_path: Path) -> None:
    path = write(
        tmp_path / "support.jsonl",
        '{"prompt": "Where is my parcel?", "category": "shipping", "expected": "tracking"}',
        "",
        '{"prompt": "Reset my password"}',
    )
    source = load_prompts(str(path))
    assert len(source) == 2
    assert sorted(source.categories) == ["shipping", "support"]
    prompts = {source.pick(random.Random(seed)).text: seed for seed in range(50)}
    assert set(prompts) == {"Where is my parcel?", "Reset my password"}
    shipping = next(p for p in (source.pick(random.Random(s)) for s in range(50)) if p.category == "shipping")
    assert shipping.fields == {"category": "shipping", "expected": "tracking"}


def test_folder_and_max_samples(tmp_path: Path) -> None:
    write(tmp_path / "a.jsonl", *[f'{{"prompt": "a{i}"}}' for i in range(30)])
    write(tmp_path / "b.jsonl", *[f'{{"prompt": "b{i}"}}' for i in range(30)])
    (tmp_path / "notes.txt").write_text("ignored")
    assert len(load_prompts(str(tmp_path))) == 60
    sample = load_prompts(str(tmp_path), max_samples=10, seed=3)
    assert len(sample) == 10
    assert len(load_prompts(str(tmp_path), max_samples=10, seed=3)) == 10


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"prompt": "ok"}', '{"prompt": "broken"'], r"bad\.jsonl:2: malformed JSON"),
        (['{"prompt": "ok"}', "", '["a list"]'], r"bad\.jsonl:3: expected a JSON object"),
        (['{"question": "wrong key"}'], r'bad\.jsonl:1: missing or empty "prompt"'),
        (['{"prompt": "   "}'], r'bad\.jsonl:1: missing or empty "prompt"'),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path: Path, lines: list[str], message: str) -> None:
    with pytest.raises(InputError, match=message):
        load_prompts(str(write(tmp_path / "bad.jsonl", *lines)))


def test_missing_and_empty_sources(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file or folder"):
        load_prompts(str(tmp_path / "nope.jsonl"))
    with pytest.raises(InputError, match=r"no \*\.jsonl files"):
        load_prompts(str(tmp_path))
    with pytest.raises(InputError, match="holds no prompts"):
        load_prompts(str(write(tmp_path / "empty.jsonl", "")))
    (tmp_path / "latin1.jsonl").write_bytes(b'{"prompt": "caf\xe9"}\n')
    with pytest.raises(InputError, match="not UTF-8"):
        load_prompts(str(tmp_path / "latin1.jsonl"))
