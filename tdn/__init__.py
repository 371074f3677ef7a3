"""tdn: Darknet image classifiers on NVIDIA GPUs (CUDA) and on any CPU (NumPy)."""

from __future__ import annotations

from pathlib import Path

from tdn.backend import Backend, Program
from tdn.classes import top_k
from tdn.errors import BackendError, CfgError, ImageError, TdnError, WeightsError
from tdn.graph import Graph, load_graph
from tdn.hookspecs import hookimpl
from tdn.image import DEFAULT_MAX_PIXELS, ImageLike, decode, preprocess_pixels
from tdn.network import Network, load

__version__ = "0.1.0"


def preprocess(image: ImageLike, net: Network | Graph, mode: str = "resize_min", decoder: str = "darknet",
               max_pixels: int | None = DEFAULT_MAX_PIXELS):
    """An image (path, PIL image or HxWx3 uint8 array) as the network's 3xHxW float32 input.

    Modes: resize_min (Darknet 2016: shorter side to the network width, the network runs
    at the image's size), letterbox (today's `darknet classify`), stretch, crop.
    decoder: "darknet" decodes files to exactly Darknet's pixels (stb_image's), "pillow" uses
    Pillow (libjpeg-turbo: faster, JPEG pixels off by a few levels). EXIF orientation is ignored.
    An image whose decoding or preprocessing would hold more than max_pixels pixels in one array
    is tdn.image.ImageTooLargeError (an ImageError), raised before that allocation.
    """
    graph = net.graph if isinstance(net, Network) else net
    source = str(image) if isinstance(image, (str, Path)) else "image"
    return preprocess_pixels(decode(image, decoder, max_pixels), graph.net.width, graph.net.height, mode,
                             max_pixels, source)


__all__ = [
    "Backend", "BackendError", "CfgError", "Graph", "ImageError", "Network", "Program",
    "TdnError", "WeightsError", "hookimpl", "load", "load_graph", "preprocess", "top_k",
]
