"""User-facing errors.

Anything a researcher can cause (a wrong path, a bad config value, a corrupt image) raises
:class:`SpcreidError` with a message that names the file or field and says what to do. The CLI
prints it as one line and exits with status 2 instead of showing a traceback.
"""


class SpcreidError(Exception):
    """An error caused by input the user controls; its message is shown verbatim."""


def torch_load_problem(exc: BaseException) -> str:
    """What went wrong in ``torch.load(..., weights_only=True)``, in a few words.

    For a file holding pickled objects torch's own message advises ``weights_only=False``, which would run
    whatever code the file carries; say what the file holds instead.
    """
    text = str(exc)
    if "weights_only" in text or "Weights only load failed" in text or type(exc).__name__ == "UnpicklingError":
        return "it holds pickled Python objects, not only tensors, and is not loaded: unpickling them could run code"
    return text.strip().splitlines()[0][:200] if text.strip() else type(exc).__name__
