"""The errors tdn raises for bad input, and how the command line prints a message on one line.

Each carries a one-line message that names the file, the line or byte offset, and what
was expected, so the command line can print it as it is and exit non-zero.
"""


import re

# C0 and C1 control characters, and Unicode's line and paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def one_line(message: object) -> str:
    """The message with control characters escaped (a path may hold a newline), so that it
    prints as exactly one line."""
    return _CONTROL.sub(lambda match: match.group().encode("unicode_escape").decode("ascii"), str(message))


class TdnError(Exception):
    """Base class: a problem with the user's input or environment, not a bug in tdn."""


class CfgError(TdnError):
    """A Darknet .cfg file that cannot be read or describes an impossible network."""


class WeightsError(TdnError):
    """A .weights file that does not match its cfg."""


class ImageError(TdnError):
    """An image that cannot be read or preprocessed."""


class BackendError(TdnError):
    """A backend that is unknown, unavailable, or cannot run the network."""


class DownloadError(TdnError):
    """A download that failed or did not match its checksum."""


class WrongKindOfFile(TdnError):
    """A file that is not the kind expected at all (an image where the cfg goes, say): most
    often arguments in the wrong order, so the command line adds the order it expects."""
