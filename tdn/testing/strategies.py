"""Hypothesis strategies for tdn: layer sections, whole networks as cfg text, inputs.

A layer strategy takes the shapes seen so far (``shapes[0]`` the network input, ``shapes[i]``
the output of layer i - 1, so ``shapes[-1]`` is the new layer's input) and draws the text of
one cfg section that tdn accepts at that input: every option the cfg parser reads, sometimes
left out so that Darknet's default applies. Adding a layer kind means adding its strategy to
LAYER_STRATEGIES (and its file to tdn.testing.reference).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tdn.activations import ACTIVATIONS
from tdn.graph import Graph, graph_from_text
from tdn.layers.base import Shape
from tdn.layers.cost import COST_TYPES
from tdn.weights import RawParams, random_params

SectionStrategy = Callable[[tuple[Shape, ...]], st.SearchStrategy[str]]

MAX_SIDE = 12  # input heights and widths; small keeps the float64 reference fast
WIDE_CHANNELS = (16, 24)  # enough channels for the NumPy backend's Winograd path


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def section(header: str, options: dict[str, object]) -> str:
    """A cfg section; options whose value is None are left out (the parser's default)."""
    lines = [f"[{header}]"] + [f"{key}={value}" for key, value in options.items() if value is not None]
    return "\n".join(lines) + "\n"


def maybe(strategy: st.SearchStrategy) -> st.SearchStrategy:
    """A value, or None to leave the option out."""
    return st.none() | strategy


@st.composite
def convolutional(draw, shapes: tuple[Shape, ...]) -> str:
    channels, height, width = shapes[-1]
    groups = draw(st.sampled_from(divisors(channels)))
    pad = draw(maybe(st.sampled_from([0, 1])))
    padding = draw(maybe(st.integers(0, 3)))
    # Darknet: pad=1 means padding = size/2; else `padding` (default 0). The kernel must fit.
    room = min(height, width) + 2 * (padding or 0)
    size = draw(st.integers(1, 7 if pad == 1 else min(7, room)))
    filters = groups * draw(st.integers(1, 4 if groups > 1 else 8))
    return section(draw(st.sampled_from(["convolutional", "conv"])), {
        "filters": filters if filters > 1 else draw(maybe(st.just(1))),
        "size": size,
        "stride": draw(maybe(st.integers(1, 4))),
        "pad": pad,
        "padding": padding,
        "groups": groups if groups > 1 else draw(maybe(st.just(1))),
        "batch_normalize": draw(maybe(st.sampled_from([0, 1]))),
        "activation": draw(st.sampled_from((None,) + ACTIVATIONS)),  # None: the default, logistic
        "learning_rate": draw(maybe(st.just(0.1))),  # training options: accepted, ignored
    })


def windows_touch_input(length: int, size: int, stride: int, padding: int) -> bool:
    """Whether every max-pool window along one axis holds at least one input cell."""
    count = (length + padding - size) // stride + 1
    offset = -(padding // 2)
    return offset + size > 0 and offset + (count - 1) * stride < length


@st.composite
def maxpool(draw, shapes: tuple[Shape, ...]) -> str:
    _, height, width = shapes[-1]
    stride = draw(maybe(st.integers(1, 4)))
    size = draw(maybe(st.integers(1, 5)))
    actual_size = size or stride or 1
    # Windows wholly in the padding give -FLT_MAX (Darknet's starting value), which overflows
    # whatever follows: tests/test_backends_agree.py checks that edge once; every other
    # geometry the parser accepts is drawn.
    paddings = [p for p in range(0, 2 * actual_size + 1)
                if min(height, width) + p >= actual_size
                and all(windows_touch_input(n, actual_size, stride or 1, p) for n in (height, width))]
    padding = draw(maybe(st.sampled_from(paddings)))  # the default, size - 1, is always among them
    return section(draw(st.sampled_from(["maxpool", "max"])), {"size": size, "stride": stride, "padding": padding})


@st.composite
def avgpool(draw, shapes: tuple[Shape, ...]) -> str:
    return section(draw(st.sampled_from(["avgpool", "avg"])), {})


@st.composite
def softmax(draw, shapes: tuple[Shape, ...]) -> str:
    channels, height, width = shapes[-1]
    return section(draw(st.sampled_from(["softmax", "soft"])), {
        "groups": draw(maybe(st.sampled_from(divisors(channels * height * width)))),
        "temperature": draw(maybe(st.sampled_from([0.1, 0.5, 1, 2.5, 10]))),
        "noloss": draw(maybe(st.just(1))),
    })


@st.composite
def cost(draw, shapes: tuple[Shape, ...]) -> str:
    return section("cost", {"type": draw(maybe(st.sampled_from(COST_TYPES))), "scale": draw(maybe(st.just(1)))})


@st.composite
def dropout(draw, shapes: tuple[Shape, ...]) -> str:
    return section("dropout", {"probability": draw(maybe(st.sampled_from([0, 0.25, 0.5, 0.9])))})


@st.composite
def connected(draw, shapes: tuple[Shape, ...]) -> str:
    return section(draw(st.sampled_from(["connected", "conn"])), {
        "output": draw(maybe(st.integers(1, 10))),
        "batch_normalize": draw(maybe(st.sampled_from([0, 1]))),
        "activation": draw(st.sampled_from((None,) + ACTIVATIONS)),  # None: the default, logistic
    })


def reference(draw, index: int, earlier: int) -> int:
    """How a cfg names earlier layer `earlier` from layer `index`: relative (negative) or absolute."""
    return earlier - index if draw(st.booleans()) else earlier


@st.composite
def shortcut(draw, shapes: tuple[Shape, ...]) -> str:
    """Adds an earlier layer whose width and height differ from the input by one integer factor
    (Darknet's rule), equal shapes or not; needs at least one earlier layer."""
    index = len(shapes) - 1
    _, h, w = shapes[-1]
    candidates = [i for i in range(index)
                  if shapes[i + 1][2] // w == shapes[i + 1][1] // h and w // shapes[i + 1][2] == h // shapes[i + 1][1]]
    return section("shortcut", {
        "from": reference(draw, index, draw(st.sampled_from(candidates))),
        "activation": draw(st.sampled_from((None,) + ACTIVATIONS)),  # None: the default, linear
        "alpha": draw(maybe(st.sampled_from([0.5, 1, 2]))),
        "beta": draw(maybe(st.sampled_from([-1, 0.5, 1]))),
    })


@st.composite
def route(draw, shapes: tuple[Shape, ...]) -> str:
    """One or more earlier layers of the same width and height, with groups dividing every
    one's channels; needs at least one earlier layer."""
    index = len(shapes) - 1
    first = draw(st.integers(0, index - 1))
    same_size = [i for i in range(index) if shapes[i + 1][1:] == shapes[first + 1][1:]]
    chosen = [first] + draw(st.lists(st.sampled_from(same_size), max_size=2))
    common = int(np.gcd.reduce([shapes[i + 1][0] for i in chosen]))
    groups = draw(maybe(st.sampled_from(divisors(common))))
    return section("route", {
        "layers": ",".join(str(reference(draw, index, i)) for i in chosen),
        "groups": groups,
        "group_id": draw(maybe(st.integers(0, (groups or 1) - 1))),
    })


@st.composite
def crop(draw, shapes: tuple[Shape, ...]) -> str:
    _, height, width = shapes[-1]
    return section("crop", {
        "crop_height": draw(st.integers(1, height)),
        "crop_width": draw(st.integers(1, width)),
        "noadjust": draw(maybe(st.sampled_from([0, 1]))),
        "flip": draw(maybe(st.just(0))),  # training options: accepted, ignored
    })


def batchnorm(shapes: tuple[Shape, ...]) -> st.SearchStrategy[str]:
    return st.just(section("batchnorm", {}))  # no options: its arrays are in the weights


@st.composite
def upsample(draw, shapes: tuple[Shape, ...]) -> str:
    _, height, width = shapes[-1]
    largest = max(1, 2 * MAX_SIDE // max(height, width))  # keeps maps small for the reference
    return section("upsample", {
        "stride": draw(maybe(st.integers(1, largest))) if largest > 1 else 1,
        "scale": draw(maybe(st.sampled_from([0.5, 1, 2]))),
    })


LAYER_STRATEGIES: dict[str, SectionStrategy] = {
    "convolutional": convolutional,
    "maxpool": maxpool,
    "avgpool": avgpool,
    "softmax": softmax,
    "cost": cost,
    "dropout": dropout,
    "connected": connected,
    "shortcut": shortcut,
    "route": route,
    "crop": crop,
    "batchnorm": batchnorm,
    "upsample": upsample,
}
NEEDS_EARLIER_LAYERS = frozenset({"shortcut", "route"})


def input_shapes(max_channels: int = 8) -> st.SearchStrategy[Shape]:
    """(channels, height, width): odd, even and non-square sizes, sometimes many channels."""
    channels = st.integers(1, max_channels) | st.sampled_from(WIDE_CHANNELS)
    return st.tuples(channels, st.integers(1, MAX_SIDE), st.integers(1, MAX_SIDE))


def net_section(shape: Shape) -> str:
    channels, height, width = shape
    return section("net", {"channels": channels, "height": height, "width": width})


def input_values(shape: tuple[int, ...]) -> st.SearchStrategy[np.ndarray]:
    """float32 inputs: seeded normal or uniform noise at a drawn scale (every cell distinct),
    or hypothesis' own arrays (repeated values, zeros, edges of the range)."""

    @st.composite
    def noise(draw) -> np.ndarray:
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        scale = draw(st.sampled_from([0.1, 1.0, 4.0]))
        if draw(st.booleans()):
            return (rng.standard_normal(shape) * scale).astype(np.float32)
        return rng.uniform(-scale, scale, shape).astype(np.float32)

    elements = st.floats(-4, 4, width=32, allow_subnormal=False)
    return noise() | hnp.arrays(np.float32, shape, elements=elements)


@dataclass(frozen=True)
class Case:
    """One network, its parameters and its input: what a property checks."""

    cfg: str
    params_seed: int
    x: np.ndarray

    @property
    def graph(self) -> Graph:
        return graph_from_text(self.cfg, "<hypothesis>")

    def raw_params(self, graph: Graph) -> RawParams:
        return random_params(graph, self.params_seed)


@st.composite
def networks(draw, kinds: frozenset[str] | None = None, max_layers: int = 5) -> str:
    """A whole random network as cfg text: [net] and 1..max_layers layers of the given kinds."""
    allowed = sorted(set(LAYER_STRATEGIES) & set(kinds if kinds is not None else LAYER_STRATEGIES))
    shapes: list[Shape] = [draw(input_shapes())]
    text = net_section(shapes[0])
    for _ in range(draw(st.integers(1, max_layers))):
        possible = [k for k in allowed if len(shapes) > 1 or k not in NEEDS_EARLIER_LAYERS]
        kind = draw(st.sampled_from(possible or ["convolutional"]))
        text += "\n" + draw(LAYER_STRATEGIES[kind](tuple(shapes)))
        shapes.append(graph_from_text(text).output_shape)
    return text


@st.composite
def cases(draw, cfg: st.SearchStrategy[str], max_batch: int = 3) -> Case:
    """A Case for each drawn cfg: a batch of 1..max_batch inputs and a parameter seed."""
    text = draw(cfg)
    graph = graph_from_text(text)
    x = draw(input_values((draw(st.integers(1, max_batch)),) + graph.input_shape))
    return Case(text, draw(st.integers(0, 2**32 - 1)), x)


@st.composite
def single_layers(draw, kind: str) -> str:
    """A network of one layer of `kind` at a drawn input shape; a kind that reads earlier layers
    (route, shortcut) comes after one or two convolutional or maxpool layers."""
    shapes: list[Shape] = [draw(input_shapes())]
    text = net_section(shapes[0])
    if kind in NEEDS_EARLIER_LAYERS:
        for _ in range(draw(st.integers(1, 2))):
            text += "\n" + draw(draw(st.sampled_from([convolutional, maxpool]))(tuple(shapes)))
            shapes.append(graph_from_text(text).output_shape)
    return text + "\n" + draw(LAYER_STRATEGIES[kind](tuple(shapes)))
