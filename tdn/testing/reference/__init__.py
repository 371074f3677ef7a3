"""A float64 reference for each layer kind, written as plainly as the definition reads.

Each module exposes forward(node, params, x, sources) -> float64 array, where x is the
previous layer's output (N, C, H, W), sources the outputs of node.sources in order, and
params the layer's arrays as stored in the .weights file (batch-norm not folded). Loops
follow Darknet's definitions, in double precision, so that a backend's error can be
measured against them.
"""

from tdn.testing.reference import batchnorm, connected, crop, route, shortcut, upsample

LAYERS = {
    "connected": connected.forward,
    "shortcut": shortcut.forward,
    "route": route.forward,
    "crop": crop.forward,
    "batchnorm": batchnorm.forward,
    "upsample": upsample.forward,
}
