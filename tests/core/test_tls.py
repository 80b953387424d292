"""https and wss targets: certificates are verified by default, and --insecure turns that off with a warning.

demobot serves TLS with a self-signed certificate for 127.0.0.1 made here, which no client trusts.
"""

from __future__ import annotations

import datetime
import ipaddress
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from demobot.launcher import DemobotProcess
from tests.conftest import ROOT, LocustRun, clean_env, one_error_line

USERS = ("--user-mix", "RestChatUser StreamingChatUser WebSocketChatUser HealthCheckUser", "-u", "4", "-r", "20")
"""One user of each HTTP and WebSocket client, thinking briefly."""

INSECURE_WARNING = "WARNING/chatswarm: --insecure: TLS certificates of https/wss targets are NOT verified"
"""The one warning line of a run with --insecure (plugins/setup/preflight.py)."""

ROWS = ("POST chat:", "E2E chat:", "WS connect", "WSR ws:", "GET health")
"""Stats rows that show each client's exchanges."""


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by its own key, valid for a day: (cert.pem, key.pem)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def https_bot(certificate: tuple[Path, Path]) -> Iterator[DemobotProcess]:
    cert, key = certificate
    with DemobotProcess("--tls-cert", str(cert), "--tls-key", str(key), "--ttft-ms", "5", "--token-ms", "1") as bot:
        yield bot


def exchanges(run: LocustRun) -> dict[str, tuple[int, int]]:
    """(requests, failures) per client row."""
    counts = {}
    for prefix in ROWS:
        found = run.rows(prefix).values()
        counts[prefix] = (sum(row["count"] for row in found), sum(row["failures"] for row in found))
    return counts


def test_demobot_serves_https(https_bot: DemobotProcess) -> None:
    assert https_bot.url.startswith("https://127.0.0.1:")


def test_untrusted_certificate_stops_the_run_before_it_starts(
    https_bot: DemobotProcess, run_locust: Callable[..., LocustRun]
) -> None:
    run = run_locust("--host", https_bot.url, "-t", "3s", *USERS)
    assert run.returncode == 2, run.output
    line = one_error_line(run.output)
    assert f"--host {https_bot.url}: TLS certificate not trusted (self-signed certificate)" in line
    assert "pass --insecure" in line
    assert not run.report_dir.exists()


def test_insecure_runs_with_a_warning(https_bot: DemobotProcess, run_locust: Callable[..., LocustRun]) -> None:
    run = run_locust("--host", https_bot.url, "-t", "3s", "--think-time", "0.2", "--insecure", *USERS)
    assert run.returncode == 0, run.output
    assert run.output.count(INSECURE_WARNING) == 1, run.output
    counts = exchanges(run)
    assert all(requests > 0 and failures == 0 for requests, failures in counts.values()), counts


def test_every_client_verifies_certificates_itself(
    https_bot: DemobotProcess, run_locust: Callable[..., LocustRun]
) -> None:
    """With the host check skipped, each client still refuses the certificate (FastHttpUser's default would not)."""
    # --skip-probe: the probe would rightly stop the start at the first client's refusal; each must refuse itself.
    run = run_locust(
        "--host", https_bot.url, "-t", "3s", "--think-time", "0.2", "--skip-host-check", "--skip-probe", *USERS
    )  # fmt: skip
    assert run.returncode == 1, run.output
    counts = exchanges(run)
    del counts["WSR ws:"]  # no WebSocket, no prompts
    assert all(requests > 0 and failures == requests for requests, failures in counts.values()), counts
    assert "SSLCertVerificationError" in run.output


def test_a_certificate_the_machine_trusts_works_for_every_client(
    https_bot: DemobotProcess, certificate: tuple[Path, Path], run_locust: Callable[..., LocustRun]
) -> None:
    """A CA added to the system's store (here through SSL_CERT_FILE) is trusted by the check and every client."""
    env = clean_env(SSL_CERT_FILE=str(certificate[0]))
    run = run_locust("--host", https_bot.url, "-t", "3s", "--think-time", "0.2", *USERS, env=env)
    assert run.returncode == 0, run.output
    counts = exchanges(run)
    assert all(requests > 0 and failures == 0 for requests, failures in counts.values()), counts


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--tls-cert", "cert.pem"], "demobot: error: --tls-cert and --tls-key go together"),
        (["--tls-cert", "key.pem", "--tls-key", "key.pem"], "demobot: error: --tls-cert/--tls-key: not a PEM"),
    ],
)
def test_demobot_tls_flags_are_checked(certificate: tuple[Path, Path], flags: list[str], expected: str) -> None:
    folder = certificate[0].parent
    command = [
        sys.executable,
        "-m",
        "demobot",
        "--port",
        "0",
        *[str(folder / f) if f.endswith(".pem") else f for f in flags],
    ]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stderr.strip().startswith(expected) and len(result.stderr.strip().splitlines()) == 1
