"""The errors tdn raises for bad input.

Each carries a one-line message that names the file, the line or byte offset, and what
was expected, so the command line can print it as it is and exit non-zero.
"""


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
