"""Text files the user hands us (prompts, accounts, config files), read only when they are what they claim to be.

A file is measured before it is read, so a 1 GB prompts file is refused in a millisecond instead of after
gigabytes of memory; a binary or non-UTF-8 file is named in one line instead of a decoder's traceback.
"""

from __future__ import annotations

from pathlib import Path

from core.errors import InputError

MB = 1024 * 1024

MAX_DATA_FILE_MB = 100
"""Default cap (--max-data-file-mb) on the prompts (a file or a folder's files together) and on an accounts file:
every process reads them before the test starts and holds the prompts in memory, a few times their size on disk."""

MAX_CONFIG_FILE_BYTES = MB
"""A config file is a page of ``key = value`` lines; one over a megabyte is not one."""


def size_text(size: float) -> str:
    """A file size for an error line: ``1.5 GB``, ``300 MB``, ``12 KB``."""
    for unit, scale in (("GB", 1024 * MB), ("MB", MB), ("KB", 1024)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size:g} bytes"


def check_size(path: Path, flag: str, max_bytes: int, limit_option: str = "") -> int:
    """The size of a file, checked against ``max_bytes`` before anything reads it (InputError naming both, and
    the option that raises the limit when there is one)."""
    try:
        size = path.stat().st_size
    except OSError as error:
        raise InputError(f"{flag}: cannot read {path} ({error.strerror or error})") from None
    if size > max_bytes:
        raised_by = f" ({limit_option})" if limit_option else ""
        raise InputError(f"{flag}: {path} is {size_text(size)}, over the {size_text(max_bytes)} limit{raised_by}")
    return size


def read_text_file(path: str | Path, flag: str, max_bytes: int, limit_option: str = "") -> str:
    """The whole text of a UTF-8 file of at most ``max_bytes``; InputError naming the file when it is not one.

    A NUL byte marks a binary file (no text format we read holds one); other bytes must decode as UTF-8.
    """
    path = Path(path).expanduser()
    check_size(path, flag, max_bytes, limit_option)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InputError(f"{flag}: cannot read {path} ({error.strerror or error})") from None
    if b"\0" in data:
        raise InputError(f"{flag}: {path} is a binary file, not UTF-8 text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        byte = data[error.start]
        raise InputError(f"{flag}: {path} is not UTF-8 text (byte 0x{byte:02x} at offset {error.start})") from None
