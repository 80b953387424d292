"""Modular exponentiation for Cognito's SRP sign-in that never holds the GIL for long.

An SRP sign-in does three 3072-bit modular exponentiations (about 70 ms of CPU in all). Python's built-in
``pow`` does each in one C call that keeps the GIL for up to ~35 ms, so the gevent loop of the load generator
stalls for that long even when the sign-in runs on another thread, and every response timed meanwhile comes
out late. ``stepwise_pow`` does the same work as ~1,300 single multiplications, between which the loop's
thread can take the GIL back (within ``sys.getswitchinterval()``, 5 ms); it costs about the same CPU.
With gmpy2 installed, ``gmpy2.powmod`` is used instead: about six times less CPU, and each call is short
enough (a few ms) not to matter.
"""

from __future__ import annotations

import builtins
import importlib
from types import ModuleType

WINDOW_BITS = 5
"""Exponent bits handled per table lookup (a 32-entry table; the same window size CPython's pow uses)."""

SHORT_EXPONENT_BITS = 64
"""Exponents up to this size go to the built-in pow, which is quick for them."""


def _load_gmpy2() -> ModuleType | None:
    try:
        return importlib.import_module("gmpy2")
    except ImportError:
        return None


gmpy2 = _load_gmpy2()
"""The gmpy2 module when installed (``pip install gmpy2``), else None."""


def stepwise_pow(base: int, exponent: int, modulus: int) -> int:
    """``pow(base, exponent, modulus)`` for a non-negative exponent, as one short multiplication at a time."""
    if exponent.bit_length() <= SHORT_EXPONENT_BITS or modulus <= 1:
        return builtins.pow(base, exponent, modulus)
    base %= modulus
    table = [1, base]
    for _ in range(2**WINDOW_BITS - 2):
        table.append(table[-1] * base % modulus)
    result = 1
    top = -(-exponent.bit_length() // WINDOW_BITS) * WINDOW_BITS
    mask = 2**WINDOW_BITS - 1
    for shift in range(top - WINDOW_BITS, -1, -WINDOW_BITS):
        for _ in range(WINDOW_BITS):
            result = result * result % modulus
        digit = (exponent >> shift) & mask
        if digit:
            result = result * table[digit] % modulus
    return result


def srp_pow(base: int, exponent: int, modulus: int | None = None) -> int:
    """Drop-in for the built-in pow inside pycognito's SRP code: gmpy2 when installed, else stepwise_pow."""
    if modulus is None or exponent < 0:
        return builtins.pow(base, exponent, modulus)
    if gmpy2 is not None:
        return int(gmpy2.powmod(base, exponent, modulus))
    return stepwise_pow(base, exponent, modulus)


def install(srp_module: ModuleType) -> None:
    """Make pycognito's SRP module (``pycognito.aws_srp``) use srp_pow for its exponentiations."""
    srp_module.pow = srp_pow  # a module global shadows the built-in for that module's code only


def backend() -> str:
    """Which exponentiation sign-ins use: ``gmpy2`` or ``stepwise``."""
    return "gmpy2" if gmpy2 is not None else "stepwise"
