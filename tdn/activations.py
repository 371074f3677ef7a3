"""Darknet's activation names (activations.c). Backends implement the formulas."""

ACTIVATIONS = (
    "linear", "leaky", "relu", "logistic", "tanh", "elu", "selu", "relie",
    "ramp", "plse", "stair", "hardtan", "lhtan", "loggy",
)
