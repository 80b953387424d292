"""The web UI's form shows what matters: the target's options, the picked users' and the picked shape's."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT, clean_env

FORMS = """
import json, sys
from types import SimpleNamespace
sys.argv = ["locust", "-f", "locustfile.py"]
import locustfile  # registers Chatswarm's plugins, whose parser listeners add the options
from locust.argument_parser import ui_extra_args_dict
from plugins.web.form import form_fields, shown_options
from shapes.options import SHAPES

every = ui_extra_args_dict([])
classes = {cls.__name__: cls for cls in (locustfile.RestChatUser, locustfile.StreamingChatUser,
           locustfile.AudioStreamUser, locustfile.PlenaryUser, locustfile.WebSocketChatUser)}
forms = {"every": sorted(every)}
for name, users, shape in (("default", ["RestChatUser"], None), ("breakpoint", ["StreamingChatUser"], "breakpoint"),
                           ("everything", list(classes), "arrival")):
    environment = SimpleNamespace(user_classes=[classes[user] for user in users], shape_class=shape and SHAPES[shape]())
    forms[name] = form_fields(every, shown_options(environment))
print(json.dumps(forms))
"""


def test_the_form_shows_the_picked_users_and_shape_options_with_their_group_and_a_note() -> None:
    result = subprocess.run([sys.executable, "-c", FORMS], cwd=ROOT, env=clean_env(), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    forms = json.loads(result.stdout)
    default, breakpoint, everything = forms["default"], forms["breakpoint"], forms["everything"]
    # Declared in the web UI: far fewer than Chatswarm's ~140 options, none of the secrets or the AWS ones.
    assert 40 < len(forms["every"]) < 70, forms["every"]
    assert not {"api_key", "cognito_token", "cloudwatch", "ws_extra", "slo"} & set(forms["every"])
    assert len(default) <= 15 and {"chat_path", "answer_field", "think_time", "request_timeout"} <= set(default)
    assert not {"model", "ws_path", "start_users", "settle_time", "target_latency"} & set(default)
    assert default["chat_path"]["help_text"].startswith("REST chat and health users: ")
    assert "--chatswarm-help" in default["about_these_fields"]["help_text"] and "about_the_shape_list" in default
    assert {"model", "stream_path", "start_users", "step_users", "max_users", "settle_time"} <= set(breakpoint)
    assert not {"chat_path", "target_latency", "waves", "arrival_rate"} & set(breakpoint)
    assert len(breakpoint) <= 25, sorted(breakpoint)
    # Every user kind and the arrival shape at once: each kind's main options, still under 40 of ~140.
    assert {"audio_path", "room", "ws_path", "model", "chat_path", "arrival_rate"} <= set(everything)
    assert len(everything) <= 36, sorted(everything)
