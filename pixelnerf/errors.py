"""The one exception type that the command line turns into a single error line."""


class PipelineError(Exception):
    """A user-facing failure: bad input, bad config, a missing or corrupt file.

    The message is one line that names the file, key or value at fault; the command
    line prints it as ``pixelnerf: error: <message>`` and exits with status 2.
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))
