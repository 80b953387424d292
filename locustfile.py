"""Chatswarm: the one file Locust loads.

    locust -f locustfile.py --headless --config config/load.conf --host http://127.0.0.1:8080

It imports the simulated users and the plugins (options, preflight checks, run folder). Pick users with
``--user-mix`` (or Locust's positional class names); everything else is an option: see ``locust -f
locustfile.py --help`` or the web UI.
"""

import plugins.options
import plugins.preflight
import plugins.progress
import plugins.run_folder  # noqa: F401
from users.health_check import HealthCheckUser
from users.rest_chat import RestChatUser

__all__ = ["HealthCheckUser", "RestChatUser"]
