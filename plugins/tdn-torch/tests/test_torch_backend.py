"""tdn-torch checked the way any plugin author checks a backend: tdn.testing.check_backend."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tdn.graph import graph_from_text
from tdn.network import Network
from tdn.plugins import registry
from tdn.testing import check_backend
from tdn.testing.reference.activations import ACTIVATIONS as REFERENCE_ACTIVATIONS
from tdn.weights import random_params

from tdn_torch.activations import ACTIVATIONS


def test_registered_through_the_entry_point():
    assert registry().entries["torch"].plugin == "tdn-torch"
    assert registry().entries["torch-cuda"].plugin == "tdn-torch"


def test_torch_agrees_with_the_reference_at_every_precision():
    check_backend("torch")


def test_torch_agrees_with_numpy():
    check_backend("torch", against="numpy", precisions=["fp32"])


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activations_are_darknets(name):
    x = np.linspace(-6, 6, 1201)  # steps of 0.01 over every piece of every formula
    ours = ACTIVATIONS[name](torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours, REFERENCE_ACTIVATIONS[name](x), rtol=1e-12, atol=1e-15)


def test_outputs_are_the_callers_own():
    graph = graph_from_text("[net]\nchannels=2\nheight=3\nwidth=3\n\n[dropout]\n\n[cost]\n")
    x = np.ones((1, 2, 3, 3), np.float32)
    outputs = Network(graph, random_params(graph), registry().get("torch")).program(1, 3, 3).run_layers(x)
    outputs[0][...] = 5
    assert x.max() == 1 and outputs[1].max() == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message given without CUDA")
def test_torch_cuda_says_why_it_cannot_run():
    reason = registry().instance("torch-cuda").unavailable_reason()
    assert reason in (f"this torch ({torch.__version__}) is built without CUDA", "no CUDA device visible to torch")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU and a CUDA build of torch")
def test_torch_cuda_agrees_with_the_reference_at_every_precision():
    check_backend("torch-cuda")
