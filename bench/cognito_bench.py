"""How long N simulated users take to sign in through Cognito, and how long the gevent loop stalls meanwhile.

    .venv/bin/python bench/cognito_bench.py [--users 200] [--accounts 200]

A moto server (its own process, pinned to core 1) plays Cognito; this process (core 0) is the load
generator: gevent-patched like Locust, N greenlets ask for their first token at the same moment, and a
ticker greenlet that wakes every millisecond records how late each wake-up is (the loop's stalls).
Modes: the default (one sign-in thread, stepwise pow), the built-in pow on that thread, sign-ins on the
loop itself, and gmpy2 when it is installed. Prints a Markdown table.
"""

from gevent import monkey

monkey.patch_all()  # as Locust does, before anything imports ssl or sockets

import argparse  # noqa: E402
import builtins  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from users.auth import srp_pow  # noqa: E402
from users.auth.cognito_auth import CognitoAccount, CognitoAuth, off_loop  # noqa: E402
from users.auth.cognito_client import CognitoClient, CognitoSettings  # noqa: E402
from users.auth.providers import Credentials  # noqa: E402

REGION = "us-east-1"
TICK_S = 0.001


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_moto() -> tuple[subprocess.Popen, str]:
    port = free_port()
    moto = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=lambda: os.sched_setaffinity(0, {1}) if os.cpu_count() and os.cpu_count() > 1 else None,
    )
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1)
            return moto, endpoint
        except OSError:
            time.sleep(0.1)
    raise SystemExit("moto_server did not start")


def seed(accounts: int) -> tuple[str, str, list[Credentials]]:
    import boto3

    cognito = boto3.client("cognito-idp", region_name=REGION)
    pool = cognito.create_user_pool(PoolName="bench")["UserPool"]["Id"]
    client = cognito.create_user_pool_client(UserPoolId=pool, ClientName="bench")["UserPoolClient"]["ClientId"]
    users = []
    for number in range(accounts):
        email, password = f"bench-{number:04d}@example.com", f"Bench-pw-{number}!"
        cognito.admin_create_user(UserPoolId=pool, Username=email, MessageAction="SUPPRESS")
        cognito.admin_set_user_password(UserPoolId=pool, Username=email, Password=password, Permanent=True)
        users.append(Credentials(email, password))
    return pool, client, users


def measure(mode: str, pool: str, client: str, credentials: list[Credentials], users: int) -> dict[str, float]:
    """Sign ``users`` users in at once (sharing ``credentials`` round-robin); timings and loop stalls."""
    srp_pow.gmpy2 = srp_pow._load_gmpy2() if mode == "gmpy2" else None
    srp_pow.stepwise_pow = builtins.pow if mode == "builtin pow" else STEPWISE
    run = (lambda function, *args: function(*args)) if mode == "on the loop" else off_loop
    cognito = CognitoClient(CognitoSettings(pool, client, None, REGION))
    accounts = [CognitoAccount(cognito, c, run=run) for c in credentials]
    providers = [CognitoAuth(accounts[n % len(accounts)]) for n in range(users)]
    lateness: list[float] = []

    def ticker() -> None:
        while True:
            due = time.perf_counter() + TICK_S
            gevent.sleep(TICK_S)
            lateness.append(max(0.0, time.perf_counter() - due))

    waits: list[float] = []

    def sign_in(provider: CognitoAuth) -> None:
        started = time.perf_counter()
        provider.authorization()
        waits.append(time.perf_counter() - started)

    tick = gevent.spawn(ticker)
    gevent.sleep(0.2)
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    gevent.joinall([gevent.spawn(sign_in, p) for p in providers], raise_error=True)
    elapsed = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    tick.kill()
    sign_ins = sum(a.sign_ins for a in accounts)
    cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
    lateness.sort()
    return {
        "all_signed_in_s": elapsed,
        "sign_ins": sign_ins,
        "per_s": sign_ins / elapsed,
        "wait_p50_s": statistics.median(waits),
        "cpu_ms_per_sign_in": cpu * 1000 / sign_ins,
        "stall_p99_ms": lateness[int(len(lateness) * 0.99)] * 1000,
        "stall_max_ms": lateness[-1] * 1000,
    }


STEPWISE = srp_pow.stepwise_pow


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--accounts", type=int, default=200, help="distinct accounts (users share them round-robin)")
    args = parser.parse_args()
    if (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {0})
    moto, endpoint = start_moto()
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_REGION=REGION
    )
    try:
        pool, client, credentials = seed(args.accounts)
        off_loop(lambda: None)
        modes = ["stepwise pow, sign-in thread (default)", "builtin pow", "on the loop"]
        if srp_pow._load_gmpy2() is not None:
            modes.append("gmpy2")
        idle: list[float] = []
        due = time.perf_counter() + TICK_S
        for _ in range(500):
            gevent.sleep(TICK_S)
            idle.append(time.perf_counter() - due)
            due = time.perf_counter() + TICK_S
        print(f"idle loop: max lateness {max(idle) * 1000:.1f} ms; {args.users} users, {args.accounts} accounts\n")
        print(
            "| mode | sign-ins | all signed in (s) | sign-ins/s | user's wait p50 (s) | CPU per sign-in (ms) "
            "| loop stall p99 (ms) | loop stall max (ms) |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for mode in modes:
            figures = measure(
                mode.split(",")[0] if mode.startswith("stepwise") else mode, pool, client, credentials, args.users
            )
            print(
                f"| {mode} | {figures['sign_ins']} | {figures['all_signed_in_s']:.1f} | {figures['per_s']:.1f} "
                f"| {figures['wait_p50_s']:.1f} | {figures['cpu_ms_per_sign_in']:.0f} | {figures['stall_p99_ms']:.1f} "
                f"| {figures['stall_max_ms']:.1f} |",
                flush=True,
            )
    finally:
        moto.terminate()
        moto.wait()


if __name__ == "__main__":
    main()
