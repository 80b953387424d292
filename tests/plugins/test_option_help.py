"""Options people can find: both entry points list every Chatswarm option, in its group."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from core.options import GROUP_ORDER
from tests.conftest import ROOT, RUN_TESTS, clean_env

OPTION_STRINGS = """
import json, sys
from locust.argument_parser import get_parser
if sys.argv[1] == "with-chatswarm":
    import locustfile  # registers Chatswarm's plugins, whose parser listeners add the options
print(json.dumps(sorted(s for a in get_parser()._actions for s in a.option_strings if s.startswith("--"))))
"""


def option_strings(which: str) -> set[str]:
    command = [sys.executable, "-c", OPTION_STRINGS, which]
    result = subprocess.run(command, cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout))


def listed_by_group(text: str) -> dict[str, set[str]]:
    groups: dict[str, set[str]] = {}
    for section in re.split(r"\n(?=\S[^\n]*:\n)", text):
        title, _, body = section.partition(":\n")
        groups[title.strip()] = set(re.findall(r"^  (--[a-z0-9-]+)", body, re.MULTILINE))
    return groups


def test_both_entry_points_list_every_chatswarm_option_in_its_group() -> None:
    ours = option_strings("with-chatswarm") - option_strings("locust-only")
    assert len(ours) > 100 and "--chat-path" in ours and "--chatswarm-help" in ours
    for command in (
        [sys.executable, "-m", "locust", "-f", "locustfile.py", "--chatswarm-help"],
        [*RUN_TESTS, "--help"],
    ):
        result = subprocess.run(command, cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        groups = {title: flags for title, flags in listed_by_group(result.stdout).items() if title in GROUP_ORDER}
        assert list(groups) == [title for title in GROUP_ORDER if title in groups] and len(groups) == len(GROUP_ORDER)
        listed = set().union(*groups.values())
        assert ours - {"--chatswarm-help"} == listed, ours ^ listed
        assert "--chat-path" in groups["REST chat and health users"] and "--shape" in groups["Load shapes"]
        assert "--api-key" in groups["Target, API and every user"] and "--cloudwatch" in groups["AWS"]
