"""User-facing errors.

Anything a researcher can cause (a wrong path, a bad config value, a corrupt image) raises
:class:`SpcreidError` with a message that names the file or field and says what to do. The CLI
prints it as one line and exits with status 2 instead of showing a traceback.
"""


class SpcreidError(Exception):
    """An error caused by input the user controls; its message is shown verbatim."""
