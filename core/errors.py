"""The one error type for mistakes in what the user gave us (options, files, hosts)."""


class InputError(ValueError):
    """A mistake in the user's input; its message is one line naming the input and what to do.

    Command-line entry points turn it into that line on stderr and exit code 2, never a traceback.
    """


SETUP_COMMAND = "python3 -m venv .venv && .venv/bin/pip install -r requirements.txt"
"""README's setup command, named when a dependency is missing."""


def missing_dependency(error: ModuleNotFoundError, program: str) -> int:
    """Print one line for a run started without the project's dependencies; returns exit code 2."""
    import sys

    print(
        f"{program}: error: the Python package {error.name!r} is not installed for {sys.executable}: "
        f"set up with `{SETUP_COMMAND}` (README) and run with .venv/bin/python or .venv/bin/locust",
        file=sys.stderr,
    )
    return 2
