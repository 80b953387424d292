"""How late the gevent loop's timers run while five Cognito SRP sign-ins happen, in a process patched the way
Locust patches its own (the test process is not: pytest-xdist's workers need real threads). Run by
tests/users/auth/test_cognito_auth.py; prints one JSON line."""

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gevent  # noqa: E402
from moto import mock_aws  # noqa: E402

from tests.aws_moto import REGION, seed_pool  # noqa: E402
from users.auth.cognito_auth import CognitoAccount, off_loop  # noqa: E402
from users.auth.cognito_client import CognitoClient, CognitoSettings  # noqa: E402
from users.auth.providers import Credentials  # noqa: E402


def main() -> None:
    with mock_aws():
        seeded = seed_pool(users=6)
        off_loop(lambda: None)  # start the thread outside the measurement
        settings = CognitoSettings(seeded.pool_id, seeded.client_id, seeded.client_secret, REGION)
        accounts = [CognitoAccount(CognitoClient(settings), Credentials(*user)) for user in seeded.users]
        accounts[0].tokens(30)  # the first sign-in builds the boto3 client and fetches the keys
        gaps: list[float] = []

        def ticker() -> None:
            last = time.perf_counter()
            while True:
                gevent.sleep(0.001)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        tick = gevent.spawn(ticker)
        gevent.sleep(0.01)
        started = time.perf_counter()
        gevent.joinall([gevent.spawn(account.tokens, 30) for account in accounts[1:]], raise_error=True)
        elapsed = time.perf_counter() - started
        tick.kill()
    print(json.dumps({"elapsed_s": elapsed, "ticks": len(gaps), "longest_gap_s": max(gaps)}))


if __name__ == "__main__":
    main()
