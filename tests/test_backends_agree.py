"""Every pair of available backends agrees, property by property (tdn.testing.conformance).

Pairs: every available backend against the float64 reference (NumPy always, so CI always
checks it), and every available backend other than numpy against numpy (CUDA where there is
a GPU). Third-party backends installed under the `tdn` entry-point group join automatically.
The hypothesis profile sets the examples per property (the `ci` profile: a few hundred).
"""

from __future__ import annotations

import pytest

from tdn.plugins import BackendRegistry, make_plugin_manager
from tdn.testing.conformance import Property, properties

INSTALLED = BackendRegistry(make_plugin_manager(entry_points=True))  # asks for third parties on purpose
AVAILABLE = [name for name in INSTALLED.names() if INSTALLED.instance(name).unavailable_reason() is None]
PAIRS = ([(name, "reference") for name in AVAILABLE if name != "reference"]
         + [(name, "numpy") for name in AVAILABLE if name not in ("reference", "numpy")])
PROPERTIES: list[Property] = [prop for tested, against in PAIRS
                              for prop in properties(INSTALLED.get(tested), INSTALLED.get(against))]


def test_numpy_against_the_reference_is_always_among_the_pairs():
    assert ("numpy", "reference") in PAIRS and ("numpy-exact", "reference") in PAIRS
    assert {prop.kind for prop in PROPERTIES if prop.tested.backend.name == "numpy"} == \
        set(INSTALLED.get("numpy").layer_kinds) | {None}


@pytest.mark.parametrize("prop", PROPERTIES, ids=str)
def test_backends_agree(prop: Property):
    prop.check()
