"""Darknet layer kinds, one file each, looked up by their cfg section names."""

from tdn.layers.avgpool import Avgpool
from tdn.layers.base import Layer, Shape, ShapeError, Source
from tdn.layers.batchnorm import Batchnorm
from tdn.layers.connected import Connected
from tdn.layers.convolutional import Convolutional
from tdn.layers.cost import Cost
from tdn.layers.crop import Crop
from tdn.layers.dropout import Dropout
from tdn.layers.maxpool import Maxpool
from tdn.layers.route import Route
from tdn.layers.shortcut import Shortcut
from tdn.layers.softmax import Softmax
from tdn.layers.upsample import Upsample

LAYER_KINDS: dict[str, type[Layer]] = {
    cls.kind: cls for cls in (Convolutional, Maxpool, Avgpool, Softmax, Cost, Dropout, Connected,
                              Shortcut, Route, Crop, Batchnorm, Upsample)
}

# The short names Darknet's string_to_layer_type also accepts.
SECTION_ALIASES = {
    "conv": "convolutional",
    "conn": "connected",
    "max": "maxpool",
    "avg": "avgpool",
    "soft": "softmax",
    "network": "net",
}

# Kinds Darknet knows that tdn does not run: named so the error can say so. [local] (unshared
# convolution weights) and [lrn]/[normalization] (local response normalisation) are rejected
# rather than implemented: no classifier cfg of Darknet's ImageNet zoo uses them.
DARKNET_ONLY_KINDS = (
    "deconvolutional", "deconv", "local", "lrn", "normalization", "activation", "logistic", "l2norm",
    "rnn", "gru", "lstm", "crnn", "detection", "region", "yolo", "iseg", "reorg",
)

__all__ = ["LAYER_KINDS", "SECTION_ALIASES", "DARKNET_ONLY_KINDS", "Layer", "Shape", "ShapeError", "Source"]
