"""
Running the client's commands in the test's reactor, as C{txregistry}
parses them, with their output captured.
"""

from __future__ import annotations

import argparse
import io
from typing import Any

from txregistry.client import command


class Output(io.StringIO):
    """
    A text stream with a binary side (as C{sys.stdout} has), never a
    terminal.
    """

    def __init__(self) -> None:
        super().__init__()
        self.buffer = io.BytesIO()

    def isatty(self) -> bool:
        return False


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="txregistry")
    command.register(parser.add_subparsers(dest="command", required=True))
    return parser


async def txregistry(*arguments: str, stdin: bytes | None = None) -> tuple[int, Output, Output]:
    """
    C{txregistry ARGUMENTS}: the exit status, stdout and stderr.
    """
    options = parser().parse_args(list(arguments))
    out, err = Output(), Output()
    status = await command.execute(options, out, err, io.BytesIO(stdin) if stdin is not None else None)
    return status, out, err


def text(stream: Any) -> str:
    return stream.getvalue()
