"""check_backend catches planted bugs and says where: a scratch copy of the reference backend
with one layer broken, registered through the plugin hook like any third-party backend."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from tdn.backend import Backend, Program
from tdn.hookspecs import hookimpl
from tdn.testing import TOLERANCES, ConformanceError, check_backend
from tdn.testing import reference as ref
from tdn.testing.conformance import properties
from tdn.testing.reference import LAYERS, ReferenceBackend
from tdn.testing.tolerances import tolerance

from .conftest import REPO, hermetic_backends


def padding_off_by_one(node, params, x, sources):
    """The classic bug: one cell too few before the input, one too many after (same shape)."""
    if node.layer.padding == 0:
        return LAYERS["convolutional"](node, params, x, sources)
    shifted = np.pad(x, ((0, 0), (0, 0), (0, 1), (0, 1)))[:, :, 1:, 1:]
    return LAYERS["convolutional"](node, params, shifted, sources)


def leaky_slope_001(node, params, x, sources):
    """leaky with the slope of relie, 0.01 instead of Darknet's 0.1."""
    if node.layer.activation != "leaky":
        return LAYERS["convolutional"](node, params, x, sources)
    linear = replace(node, layer=replace(node.layer, activation="linear"))
    out = LAYERS["convolutional"](linear, params, x, sources)
    return np.where(out > 0, out, 0.01 * out)


class BrokenProgram(Program):
    """A scratch copy of the reference program with its convolution replaced; float32 out."""

    def __init__(self, graph, params, convolution):
        self.graph, self.params, self.convolution = graph, params, convolution

    def run_layers(self, x):
        x = np.asarray(x, dtype=np.float64)
        outputs = []
        for node, params in zip(self.graph.nodes, self.params):
            forward = self.convolution if node.kind == "convolutional" else LAYERS[node.kind]
            x = forward(node, params, x, tuple(outputs[i] for i in node.sources))
            outputs.append(x)
        return [out.astype(np.float32) for out in outputs]

    def run(self, x):
        return self.run_layers(x)[-1]


def broken_backend(name: str, convolution):
    """A plugin registering a backend `name` that computes like the reference except for
    its convolution."""

    class Broken(Backend):
        description = "the reference with a planted bug"
        layer_kinds = ReferenceBackend.layer_kinds
        precisions = ("fp32",)
        folded_batchnorm = False

        def prepare(self, graph, params, batch, precision):
            return BrokenProgram(graph, params, convolution)

    Broken.name = name

    class Plugin:
        @hookimpl
        def tdn_register_backends(self, register):
            register(name, Broken)

    return Plugin()


def test_a_padding_off_by_one_is_caught_with_the_layer_and_input_named():
    backends = hermetic_backends(broken_backend("broken-padding", padding_off_by_one))
    with pytest.raises(AssertionError) as failure:
        check_backend("broken-padding", kinds=["convolutional"], backends=backends)
    message = str(failure.value)
    assert message.startswith("backend 'broken-padding' disagrees with 'reference' in 2 properties:")
    assert "'broken-padding' (fp32) vs 'reference' (fp64): convolutional" not in message  # the layer, not the property
    assert re.search(r"'broken-padding' \(fp32\) vs 'reference' \(fp64\): layer 0 \[convolutional\] "
                     r"Convolutional\(filters=\d+, size=\d+, stride=\d+, padding=[1-9]\d*, groups=\d+, "
                     r"batch_normalize=(True|False), activation='\w+'\) at <hypothesis>:\d+, "
                     r"input shape \(\d+, \d+, \d+, \d+\): max error .* exceeds the tolerance", message)


def test_a_wrong_leaky_slope_is_caught():
    backends = hermetic_backends(broken_backend("broken-leaky", leaky_slope_001))
    with pytest.raises(AssertionError, match=r"layer \d+ \[convolutional\] Convolutional\(.*activation='leaky'\)"):
        # 200 examples: one in 15 convolutions draws leaky, so missing it is a one-in-a-million chance.
        check_backend("broken-leaky", kinds=["convolutional"], whole_networks=False, backends=backends,
                      max_examples=200)


def test_the_correct_copy_passes():
    backends = hermetic_backends(broken_backend("unbroken", LAYERS["convolutional"]))
    check_backend("unbroken", backends=backends, max_examples=30)


def test_check_backend_covers_every_kind_and_precision_it_declares(installed_backends):
    props = properties(installed_backends.get("torch"), installed_backends.get("reference")) \
        if "torch" in installed_backends.names() else []
    numpy_props = properties(installed_backends.get("numpy"), installed_backends.get("reference"))
    assert {(p.tested.precision, p.kind) for p in numpy_props} == \
        {("fp32", kind) for kind in installed_backends.get("numpy").layer_kinds} | {("fp32", None)}
    if props:
        assert {p.tested.precision for p in props} == {"fp32", "fp64"}


def test_a_kind_without_a_strategy_cannot_pass_unchecked():
    class Unknown(ReferenceBackend):
        name = "unknown-kind"
        layer_kinds = ReferenceBackend.layer_kinds | {"lstm"}

    with pytest.raises(AssertionError, match="backend 'unknown-kind' declares layer kinds that cannot be "
                                             "checked: no strategy in tdn.testing for lstm; 'reference' "
                                             "does not run lstm"):
        check_backend(Unknown())


def test_every_precision_has_a_stated_tolerance():
    assert set(TOLERANCES) == {"fp64", "fp32", "tf32", "fp16"}
    assert TOLERANCES["fp64"] < TOLERANCES["fp32"] < TOLERANCES["tf32"] < TOLERANCES["fp16"]
    with pytest.raises(ValueError, match="no tolerance is stated for precision 'int8' "
                                         r"\(known: fp64, fp32, tf32, fp16\)"):
        tolerance("int8")


def test_reference_module_is_the_registered_plugin():
    assert ref.tdn_register_backends is not None
    assert hermetic_backends().entries["reference"].plugin == "tdn.testing.reference"


class ZerosProgram(Program):
    """Right shapes and dtype, every value 0: only the value check can catch it."""

    def __init__(self, graph):
        self.graph = graph

    def run_layers(self, x):
        return [np.zeros((x.shape[0], *node.out_shape), np.float32) for node in self.graph.nodes]

    def run(self, x):
        return self.run_layers(x)[-1]


class ZerosBackend(Backend):
    name = "zeros"
    description = "returns zeros"
    layer_kinds = ReferenceBackend.layer_kinds
    precisions = ("fp32",)

    def prepare(self, graph, params, batch, precision):
        return ZerosProgram(graph)


class ZerosPlugin:
    @hookimpl
    def tdn_register_backends(self, register):
        register("zeros", ZerosBackend)


def check_zeros() -> str:
    """check_backend on the zeros backend; the ConformanceError's message."""
    try:
        check_backend("zeros", kinds=["convolutional"], whole_networks=False, max_examples=20,
                      backends=hermetic_backends(ZerosPlugin()))
    except ConformanceError as error:
        return str(error)
    raise RuntimeError("check_backend passed a backend that returns zeros")


def test_a_backend_that_returns_zeros_fails_with_a_conformance_error():
    message = check_zeros()
    assert message.startswith("backend 'zeros' disagrees with 'reference' in 1 property:")
    assert re.search(r"layer 0 \[convolutional\] .* max error .* exceeds the tolerance", message)


def test_the_check_still_checks_under_python_O():
    code = ("import sys; from tests.test_conformance import check_zeros; "
            "assert False, 'asserts run'; print(check_zeros().splitlines()[0])")
    done = subprocess.run([sys.executable, "-O", "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert (done.returncode, done.stdout) == (0, "backend 'zeros' disagrees with 'reference' in 1 property:\n"), \
        done.stderr


def test_tdn_testing_has_no_assert_statement():
    """`python -O` removes assert statements: a check written with one would pass everything."""
    files = sorted((REPO / "tdn" / "testing").rglob("*.py"))
    asserts = [f"{path.relative_to(REPO)}:{node.lineno}" for path in files
               for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Assert)]
    assert len(files) > 10 and asserts == []
