"""
Typed storage failures, shared by every driver.

Callers branch on the type (a missing path is an ordinary answer, not an
error to log), so every driver must raise exactly these.
"""


class StorageError(Exception):
    """
    A storage operation failed.
    """


class PathNotFoundError(StorageError):
    """
    Nothing exists at C{path}.
    """

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path

    def __str__(self) -> str:
        return f"path not found: {self.path}"


class InvalidPathError(StorageError):
    """
    C{path} is not a path a driver accepts (it is relative, has empty or
    dot components, or characters outside the allowed set).
    """

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path

    def __str__(self) -> str:
        return f"invalid path: {self.path!r}"


class InvalidOffsetError(StorageError):
    """
    A read or append started at an offset the content does not have.
    """

    def __init__(self, path: str, offset: int) -> None:
        super().__init__(path, offset)
        self.path = path
        self.offset = offset

    def __str__(self) -> str:
        return f"invalid offset {self.offset} for {self.path}"


class WriterClosedError(StorageError):
    """
    A writer was used after it was committed or cancelled.
    """


class DriverConfigurationError(StorageError):
    """
    A driver's parameters are wrong; the message names the parameter.
    """
