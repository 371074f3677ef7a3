"""The conformance check: one backend against another (by default the float64 reference),
layer kind by layer kind and on whole random networks, at every precision it offers.

    from tdn.testing import check_backend
    check_backend("my-backend")

Each property draws cases with hypothesis (tdn.testing.strategies) and checks, per layer:
the output's shape, then its dtype (float32), then its values within the stated tolerance
(tdn.testing.tolerances); also that the input is left unchanged and that run() gives the
last layer of run_layers(). A failure names the backend pair, the layer with all its
parameters, the input shape and the error; hypothesis adds the smallest failing example.
Failures are ConformanceError, raised explicitly (no `assert`), so the check still checks
under `python -O`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tdn.backend import Backend
from tdn.graph import Graph
from tdn.network import Network
from tdn.plugins import BackendRegistry, registry
from tdn.testing.reference import ReferenceProgram
from tdn.testing.strategies import LAYER_STRATEGIES, Case, cases, networks, single_layers
from tdn.testing.tolerances import tolerance
from tdn.weights import RawParams


class ConformanceError(AssertionError):
    """A backend that breaks the Backend/Program contract or disagrees with the one it is
    checked against (an AssertionError, so test runners report it as a failed check)."""


@dataclass(frozen=True)
class Side:
    """One backend computing at one precision."""

    backend: Backend
    precision: str

    def __str__(self) -> str:
        return f"'{self.backend.name}' ({self.precision})"

    def run_layers(self, graph: Graph, raw: RawParams, x: np.ndarray) -> list[np.ndarray]:
        """Every layer's output for input x, checked against the Backend/Program contract."""
        network = Network(graph, raw, self.backend, self.precision)
        program = network.program(x.shape[0], *x.shape[2:])
        given_x = x.copy()
        if type(program) is ReferenceProgram:
            return program.run_layers_float64(x)  # skip the float32 cast: the truth, unrounded
        outputs = program.run_layers(x)
        last = program.run(x)
        # Each check raises from its own line: hypothesis tells failures apart by where they come from.
        if not np.array_equal(x, given_x):
            raise ConformanceError(f"backend {self}: the program modified its input")
        if len(outputs) != len(graph.nodes):
            raise ConformanceError(
                f"backend {self}: run_layers returned {len(outputs)} outputs for {len(graph.nodes)} layers")
        if not (isinstance(last, np.ndarray) and last.shape == outputs[-1].shape and np.allclose(
                last, outputs[-1], rtol=tolerance(self.precision), atol=tolerance(self.precision), equal_nan=True)):
            raise ConformanceError(f"backend {self}: run() differs from the last output of run_layers()")
        return outputs


def describe(node, batch: int) -> str:
    return (f"layer {node.index} [{node.kind}] {node.layer!r} at {node.where}, "
            f"input shape {(batch,) + node.in_shape}")


def check_case(tested: Side, against: Side, case: Case, whole_network: bool) -> None:
    """Run case on both sides; fail on the first layer whose output disagrees."""
    graph = case.graph
    raw = case.raw_params(graph)
    expected = against.run_layers(graph, raw, case.x)
    outputs = tested.run_layers(graph, raw, case.x)
    batch = case.x.shape[0]
    allowed = tolerance(tested.precision) + tolerance(against.precision)
    for node, ours, theirs in zip(graph.nodes, outputs, expected):
        pair = f"{tested} vs {against}: {describe(node, batch)}"
        shape = (batch,) + node.out_shape
        if not (isinstance(ours, np.ndarray) and ours.shape == shape):
            raise ConformanceError(
                f"{pair}: output shape {getattr(ours, 'shape', type(ours).__name__)}, expected {shape}")
        if ours.dtype != np.float32:
            raise ConformanceError(f"{pair}: output dtype {ours.dtype}, expected float32")
        largest = float(np.abs(theirs).max())
        error = float(np.abs(ours.astype(np.float64) - theirs).max()) / max(1.0, largest)
        # In a whole network a layer also carries the errors of the layers before it.
        bound = allowed * (node.index + 1 if whole_network else 1)
        if not error <= bound:  # (a NaN error fails too)
            raise ConformanceError(f"{pair}: max error {error:.3g} (relative to max(1, largest value "
                                   f"{largest:.3g})) exceeds the tolerance {bound:.3g}")


@dataclass(frozen=True)
class Property:
    """Backend `tested` agrees with `against` on one layer kind, or on whole networks (kind None)."""

    tested: Side
    against: Side
    kind: str | None

    def __str__(self) -> str:
        return f"{self.tested} vs {self.against}: {self.kind or 'whole networks'}"

    def cases(self) -> st.SearchStrategy[Case]:
        if self.kind is None:
            kinds = self.tested.backend.layer_kinds & self.against.backend.layer_kinds
            return cases(networks(frozenset(kinds)))
        return cases(single_layers(self.kind))

    def check(self, max_examples: int | None = None) -> None:
        """Run the property with hypothesis; ConformanceError on the smallest failing case."""
        @settings(max_examples=max_examples or settings().max_examples, deadline=None,
                  report_multiple_bugs=False, suppress_health_check=[HealthCheck.too_slow])
        @given(case=self.cases())
        def backends_agree(case: Case) -> None:
            check_case(self.tested, self.against, case, whole_network=self.kind is None)

        backends_agree()


def properties(tested: Backend, against: Backend, precisions: Iterable[str] | None = None,
               kinds: Iterable[str] | None = None, whole_networks: bool = True) -> list[Property]:
    """Every property check_backend runs: per precision, one per layer kind and one for networks."""
    chosen = set(tested.layer_kinds if kinds is None else kinds)
    unchecked = sorted(chosen - set(LAYER_STRATEGIES))
    missing = sorted(chosen - against.layer_kinds)
    if unchecked or missing:
        raise ConformanceError(
            f"backend '{tested.name}' declares layer kinds that cannot be checked: "
            + "; ".join(part for part in (
                unchecked and f"no strategy in tdn.testing for {', '.join(unchecked)}",
                missing and f"'{against.name}' does not run {', '.join(missing)}") if part))
    result = []
    for precision in precisions or tested.precisions:
        if precision not in tested.precisions:
            raise ValueError(f"backend '{tested.name}' does not offer precision {precision}")
        tested_side, against_side = Side(tested, precision), Side(against, against.precisions[0])
        result += [Property(tested_side, against_side, kind) for kind in sorted(chosen)]
        if whole_networks:
            result.append(Property(tested_side, against_side, None))
    return result


def check_backend(name: str | Backend, against: str | Backend = "reference", *,
                  precisions: Iterable[str] | None = None, kinds: Iterable[str] | None = None,
                  whole_networks: bool = True, max_examples: int | None = None,
                  backends: BackendRegistry | None = None) -> None:
    """Check backend `name` against backend `against` (default: the float64 reference) on every
    layer kind it declares and on whole random networks, at every precision it offers.

    Backends are looked up in `backends` (default: every installed plugin's). `precisions`
    and `kinds` narrow the check; `max_examples` overrides the hypothesis profile's count.
    Raises ConformanceError listing every property that failed, each with its smallest
    failing case; returns None when all agree.
    """
    backends = backends or registry()
    tested = name if isinstance(name, Backend) else backends.get(name)
    reference = against if isinstance(against, Backend) else backends.get(against)
    failures = []
    for prop in properties(tested, reference, precisions, kinds, whole_networks):
        try:
            prop.check(max_examples)
        except AssertionError as error:  # ConformanceError, or a failed assert in the backend itself
            # Hypothesis attaches the smallest failing example (the cfg text, the input) as notes.
            failures.append("\n  ".join([str(error), *getattr(error, "__notes__", [])]))
    if failures:
        raise ConformanceError(f"backend '{tested.name}' disagrees with '{reference.name}' in "
                             f"{len(failures)} propert{'y' if len(failures) == 1 else 'ies'}:\n"
                             + "\n".join(f"- {failure}" for failure in failures))
