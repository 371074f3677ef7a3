"""Darknet layer kinds, one file each, looked up by their cfg section names."""

from tdn.layers.avgpool import Avgpool
from tdn.layers.base import Layer, Shape, ShapeError
from tdn.layers.convolutional import Convolutional
from tdn.layers.cost import Cost
from tdn.layers.dropout import Dropout
from tdn.layers.maxpool import Maxpool
from tdn.layers.softmax import Softmax

LAYER_KINDS: dict[str, type[Layer]] = {
    cls.kind: cls for cls in (Convolutional, Maxpool, Avgpool, Softmax, Cost, Dropout)
}

# The short names Darknet's string_to_layer_type also accepts.
SECTION_ALIASES = {
    "conv": "convolutional",
    "max": "maxpool",
    "avg": "avgpool",
    "soft": "softmax",
    "network": "net",
}

# Kinds Darknet knows that tdn does not run (yet): named so the error can say so.
DARKNET_ONLY_KINDS = (
    "deconvolutional", "connected", "conn", "local", "shortcut", "route", "crop", "batchnorm",
    "upsample", "lrn", "normalization", "activation", "logistic", "l2norm", "rnn", "gru",
    "lstm", "crnn", "detection", "region", "yolo", "iseg", "reorg",
)

__all__ = ["LAYER_KINDS", "SECTION_ALIASES", "DARKNET_ONLY_KINDS", "Layer", "Shape", "ShapeError"]
