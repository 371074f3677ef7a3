"""tdn: Darknet image classifiers on NVIDIA GPUs (CUDA) and on any CPU (NumPy).

`import tdn` loads none of its modules: each public name below is imported on first use, so a
host that imports tdn, `tdn --version` and `tdn backends` do not pay for NumPy, Pillow or the
backends until they need them (tests/test_startup.py checks which modules each one loads).
"""

from __future__ import annotations

import importlib
import importlib.util

from tdn.limits import DEFAULT_MAX_PIXELS

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (type checkers read it as True)

# The one home of the version: pyproject.toml reads it from here ([tool.setuptools.dynamic]).
__version__ = "0.1.0"

# Each public name and the module that defines it.
_EXPORTS = {
    "Backend": "tdn.backend", "Program": "tdn.backend", "top_k": "tdn.classes",
    "BackendError": "tdn.errors", "CfgError": "tdn.errors", "DownloadError": "tdn.errors",
    "ImageError": "tdn.errors", "TdnError": "tdn.errors", "WeightsError": "tdn.errors",
    "Graph": "tdn.graph", "load_graph": "tdn.graph", "hookimpl": "tdn.hookspecs",
    "ImageLike": "tdn.image", "Network": "tdn.network", "load": "tdn.network", "Prediction": "tdn.pipeline",
}

__all__ = sorted([*_EXPORTS, "preprocess"])

if TYPE_CHECKING:  # the same names, for type checkers (`X as X`: re-exported)
    import numpy as np

    from tdn.backend import Backend as Backend
    from tdn.backend import Program as Program
    from tdn.classes import top_k as top_k
    from tdn.errors import BackendError as BackendError
    from tdn.errors import CfgError as CfgError
    from tdn.errors import DownloadError as DownloadError
    from tdn.errors import ImageError as ImageError
    from tdn.errors import TdnError as TdnError
    from tdn.errors import WeightsError as WeightsError
    from tdn.graph import Graph as Graph
    from tdn.graph import load_graph as load_graph
    from tdn.hookspecs import hookimpl as hookimpl
    from tdn.image import ImageLike as ImageLike
    from tdn.network import Network as Network
    from tdn.network import load as load
    from tdn.pipeline import Prediction as Prediction


def preprocess(image: ImageLike, net: Network | Graph, mode: str = "resize_min", decoder: str = "darknet",
               max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """An image (path, PIL image or HxWx3 uint8 array) as the network's 3xHxW float32 input.

    Modes: resize_min (Darknet 2016: shorter side to the network width, the network runs
    at the image's size), letterbox (today's `darknet classify`), stretch, crop.
    decoder: "darknet" decodes files to exactly Darknet's pixels (stb_image's), "pillow" uses
    Pillow (libjpeg-turbo: faster, JPEG pixels off by a few levels). EXIF orientation is ignored.
    An image whose decoding or preprocessing would hold more than max_pixels pixels in one array
    (default: tdn.limits.DEFAULT_MAX_PIXELS) is tdn.image.ImageTooLargeError (an ImageError),
    raised before that allocation.
    """
    from pathlib import Path

    from tdn.image import decode, preprocess_pixels
    from tdn.network import Network

    graph = net.graph if isinstance(net, Network) else net
    source = str(image) if isinstance(image, (str, Path)) else "image"
    return preprocess_pixels(decode(image, decoder, max_pixels), graph.net.width, graph.net.height, mode,
                             max_pixels, source)


if not TYPE_CHECKING:
    def __getattr__(name: str) -> object:
        """A public name from its module, or a submodule (`tdn.network`), imported on first use."""
        if name in _EXPORTS:
            value = getattr(importlib.import_module(_EXPORTS[name]), name)
        elif importlib.util.find_spec(f"{__name__}.{name}") is not None:
            value = importlib.import_module(f"{__name__}.{name}")
        else:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(globals()) | set(_EXPORTS))
