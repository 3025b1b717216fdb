"""User-facing errors: one line, naming the bad value and the valid choices; exit code 2."""


class BenchError(Exception):
    """Bad input. The CLI prints ``error: <message>`` on one line and exits 2."""

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
