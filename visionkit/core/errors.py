"""One exception family for every error a user can cause.

The CLI prints ``str(error)`` as one line on stderr and exits with ``error.exit_code``;
anything that is not a :class:`VisionkitError` is a bug and keeps its traceback.
"""

import errno


class VisionkitError(Exception):
    """Base class: a message that says what was received and what to do."""

    exit_code = 1


class UsageError(VisionkitError):
    """An argument or option value that cannot work (wrong range, unknown choice)."""

    exit_code = 2


class InputError(VisionkitError):
    """A path, file or array given by the user that cannot be read."""


class ImageError(InputError):
    """A file that exists but is not a usable image (corrupt, truncated, too large)."""


class DatasetError(InputError):
    """A dataset folder or label file that does not have the expected layout."""


class ModelError(VisionkitError):
    """An unknown model name, or a file that is not a usable model."""


class WeightsError(VisionkitError):
    """Weights that cannot be had: offline and not cached, wrong hash, unreadable file."""


class OutputError(VisionkitError):
    """A result that cannot be written: disk full, read-only folder, no permission."""


#: errno values that mean "this place cannot be written to" (disk full, quota, read-only, permission, too big).
WRITE_ERRNOS = frozenset(getattr(errno, name) for name in ("ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM", "EFBIG")
                         if hasattr(errno, name))


def output_error(path, error: OSError) -> OutputError:
    """``path: cannot write (No space left on device)`` for an OSError raised while writing ``path``."""
    reason = error.strerror or error.__class__.__name__
    return OutputError(f"{path}: cannot write ({reason}); nothing was written there. Free some space or choose "
                       "another place (-o / --save / --output)")
