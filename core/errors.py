"""The one error type for mistakes in what the user gave us (options, files, hosts)."""


class InputError(ValueError):
    """A mistake in the user's input; its message is one line naming the input and what to do.

    Command-line entry points turn it into that line on stderr and exit code 2, never a traceback.
    """
