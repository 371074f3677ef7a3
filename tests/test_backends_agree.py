"""Every pair of available backends agrees, property by property (tdn.testing.conformance).

Pairs: every available backend against the float64 reference (NumPy always, so CI always
checks it), and every available backend other than numpy against numpy (CUDA where there is
a GPU). Third-party backends installed under the `tdn` entry-point group join automatically.
The hypothesis profile sets the examples per property of tdn's own backends against the
reference (the `ci` profile: a few hundred); the other pairs run a quarter of them (examples).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

from tdn.activations import ACTIVATIONS
from tdn.graph import graph_from_text
from tdn.layers import LAYER_KINDS
from tdn.layers.cost import COST_TYPES
from tdn.plugins import BUILTIN_PLUGINS, BackendRegistry, make_plugin_manager
from tdn.testing.conformance import Property, properties
from tdn.testing.strategies import LAYER_STRATEGIES, cases, networks, single_layers

INSTALLED = BackendRegistry(make_plugin_manager(entry_points=True))  # asks for third parties on purpose
AVAILABLE = [name for name in INSTALLED.names() if INSTALLED.instance(name).unavailable_reason() is None]
PAIRS = ([(name, "reference") for name in AVAILABLE if name != "reference"]
         + [(name, "numpy") for name in AVAILABLE if name not in ("reference", "numpy")])
PROPERTIES: list[Property] = [prop for tested, against in PAIRS
                              for prop in properties(INSTALLED.get(tested), INSTALLED.get(against))]
# A pair against numpy cross-checks two backends that each meet the reference already, and a
# third-party backend's full check is its own suite's (plugins/tdn-torch/tests, `tox -e torch`).
CROSS_CHECK_SHARE = 4


def examples(prop: Property) -> int | None:
    """The profile's count (None) for tdn's own backends against the float64 reference, else a
    CROSS_CHECK_SHARE of it."""
    own = INSTALLED.entries[prop.tested.backend.name].plugin in BUILTIN_PLUGINS
    if own and prop.against.backend.name == "reference":
        return None
    return max(1, settings().max_examples // CROSS_CHECK_SHARE)


def test_numpy_against_the_reference_is_always_among_the_pairs():
    assert ("numpy", "reference") in PAIRS and ("numpy-exact", "reference") in PAIRS
    assert {prop.kind for prop in PROPERTIES if prop.tested.backend.name == "numpy"} == \
        set(INSTALLED.get("numpy").layer_kinds) | {None}


@pytest.mark.parametrize("prop", PROPERTIES, ids=str)
def test_backends_agree(prop: Property):
    prop.check(examples(prop))


@pytest.mark.parametrize("name", [name for name in AVAILABLE if "maxpool" in INSTALLED.get(name).layer_kinds])
def test_a_max_pool_window_wholly_in_the_padding_is_minus_flt_max(name):
    # 2 cells, padding 4 (2 before): of the 6 one-cell windows, the first two and last two hold none.
    graph = graph_from_text("[net]\nchannels=1\nheight=2\nwidth=2\n\n[maxpool]\nsize=1\nstride=1\npadding=4\n")
    x = np.array([[[[1.0, -2.0], [3.0, -4.0]]]], np.float32)
    out = INSTALLED.get(name).prepare(graph, [{}], 1, INSTALLED.get(name).precisions[0]).run(x)
    expected = np.full((1, 1, 6, 6), -np.finfo(np.float32).max, np.float32)
    expected[0, 0, 2:4, 2:4] = x[0, 0]
    np.testing.assert_array_equal(out, expected)


def test_every_layer_kind_has_a_strategy():
    assert set(LAYER_STRATEGIES) == set(LAYER_KINDS)


# Each option the cfg parser reads for a kind, as it appears in drawn cfg text.
OPTIONS = {
    "convolutional": ["filters=", "size=", "stride=", "pad=1", "pad=0", "padding=", "groups=", "batch_normalize=1",
                      "[conv]"] + [f"activation={name}\n" for name in ACTIVATIONS],
    "maxpool": ["size=", "stride=", "padding=", "[max]"],
    "avgpool": ["[avg]"],
    "softmax": ["groups=", "temperature=0.1", "temperature=10", "noloss=", "[soft]"],
    "cost": [f"type={name}\n" for name in COST_TYPES],
    "dropout": ["probability="],
    "connected": ["output=", "batch_normalize=1", "activation=", "[conn]"],
    "shortcut": ["from=-", "from=0", "alpha=", "beta=", "activation="],
    "route": ["layers=-", "layers=0", ",", "groups=", "group_id="],
    "crop": ["crop_height=", "crop_width=", "noadjust=1"],
    "batchnorm": ["[batchnorm]"],
    "upsample": ["stride=2", "scale="],
}


@pytest.mark.parametrize("kind", OPTIONS)
def test_strategies_reach_every_option(kind):
    seen: set[str] = set()

    @settings(database=None, derandomize=True, max_examples=400)
    @given(single_layers(kind))
    def draw(text):
        layer_section = text.rsplit("\n\n", 1)[1]  # the last: route and shortcut follow others
        seen.update(option for option in OPTIONS[kind] if option in layer_section)

    draw()
    assert seen == set(OPTIONS[kind])


@given(single_layers("convolutional"))
def test_drawn_layers_build_at_their_input(text):
    graph = graph_from_text(text)  # CfgWarning is an error under pytest: no unused option either
    assert len(graph.nodes) == 1


@given(networks(max_layers=5))
def test_drawn_networks_chain_shapes(text):
    graph = graph_from_text(text)
    assert 1 <= len(graph.nodes) <= 5
    for before, after in zip(graph.nodes, graph.nodes[1:]):
        assert before.out_shape == after.in_shape


@given(cases(networks()))
def test_drawn_inputs_fit_the_network(case):
    batch, *shape = case.x.shape
    assert 1 <= batch <= 3 and tuple(shape) == case.graph.input_shape
    assert case.x.dtype == np.float32 and case.x.flags.c_contiguous and np.isfinite(case.x).all()
