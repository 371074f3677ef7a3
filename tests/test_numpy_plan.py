"""The planned NumPy path (backends/numpy/plan.py) against the plain layer-by-layer path.

Tolerance: probabilities within 1e-4 relative (1e-7 absolute for the tiny ones); every
algorithm reorders float32 sums and Winograd F(4x4, 3x3) and F(2x2, 5x5) multiply by constants up to 8.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
from tdn.backends.numpy.algorithms import GEMM, IM2COL, NCHW, PLAIN, WINOGRAD2_5X5, Winograd, choose
from tdn.backends.numpy.backend import NumpyBackend, NumpyProgram
from tdn.backends.numpy.cores import available_cores
from tdn.backends.numpy.memory import shared_zeros
from tdn.backends.numpy.plan import (
    BANDS_PER_THREAD,
    MIN_BANDS,
    MIN_PROCESS_FLOPS,
    PLANNED_KINDS,
    SMALL_MAPS_CHUNK,
    Executor,
    Plan,
    PlannedProgram,
)
from tdn.backends.numpy.team import PROCESSES_AVAILABLE, ProcessTeam, TeamError, ThreadTeam
from tdn.backends.numpy.workers import Workers
from threadpoolctl import threadpool_info

from tdn.graph import graph_from_text, load_graph
from tdn.network import load
from tdn.weights import fold_params, random_params, read_weights

from .conftest import REPO

PROBABILITY_RTOL, PROBABILITY_ATOL = 1e-4, 1e-7
TEAM_KINDS = [pytest.param(True, marks=pytest.mark.skipif(not PROCESSES_AVAILABLE, reason="needs Linux on x86-64"),
                           id="processes"), pytest.param(False, id="threads")]

SMALL = """
[net]
channels=3
height={h}
width={w}

[convolutional]
batch_normalize=1
filters=16
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
filters=24
size=1
stride=1
activation=relu

[convolutional]
batch_normalize=1
filters=20
size=3
stride=1
pad=1
activation=logistic

[maxpool]
size=3
stride=2

[convolutional]
filters=10
size=3
stride=2
pad=1
activation=linear

[dropout]
probability=.5

[avgpool]

[softmax]
temperature=2
"""


def _network(h: int, w: int, seed: int = 0):
    graph = graph_from_text(SMALL.format(h=h, w=w))
    return graph, fold_params(graph, random_params(graph, seed))


def _x(batch: int, graph, seed: int = 1) -> np.ndarray:
    c, h, w = graph.input_shape
    return np.random.default_rng(seed).random((batch, c, h, w), np.float32)


@pytest.mark.parametrize("algorithm", ["im2col", "winograd2", "winograd4"])
@pytest.mark.parametrize(("h", "w"), [(16, 16), (13, 10), (9, 22)])
def test_every_3x3_algorithm_matches_the_plain_path(algorithm, h, w):
    graph, params = _network(h, w)
    x = _x(2, graph)
    forced = {node.index: algorithm for node in graph.nodes
              if node.kind == "convolutional" and node.layer.size == 3 and node.layer.stride == 1}
    plan = Executor.of(graph, params, 2, algorithms=forced)
    assert {plan.algorithms[i].name for i in forced} == {algorithm}
    np.testing.assert_allclose(plan.run(x), NumpyProgram(graph, params).run(x),
                               rtol=PROBABILITY_RTOL, atol=PROBABILITY_ATOL,
                               err_msg=f"{algorithm} at {h}x{w}")


FIVE_BY_FIVE = """
[net]
channels=3
height={h}
width={w}

[convolutional]
filters=16
size=3
stride=1
pad=1
activation=relu

[convolutional]
batch_normalize=1
filters={filters}
size=5
stride=1
pad=1
activation=leaky

[maxpool]
size={pool}
stride=2

[convolutional]
filters=8
size=5
stride=1
pad=1
activation=linear

[avgpool]

[softmax]
"""


@pytest.mark.parametrize("algorithm", ["im2col", "winograd2-5x5"])
@pytest.mark.parametrize(("batch", "h", "w", "filters", "pool"),
                         [(1, 27, 27, 256, 3), (3, 13, 10, 24, 2), (2, 9, 22, 20, 3), (1, 6, 5, 32, 2)])
def test_every_5x5_algorithm_matches_the_plain_path(algorithm, batch, h, w, filters, pool):
    # Odd sizes leave part of the last tiles outside the map; 256 filters at batch 1 split the
    # layer between the threads by filters; both pools follow a fused convolution.
    graph = graph_from_text(FIVE_BY_FIVE.format(h=h, w=w, filters=filters, pool=pool))
    params = fold_params(graph, random_params(graph, 3))
    x = _x(batch, graph)
    forced = {node.index: algorithm for node in graph.nodes if node.kind == "convolutional" and node.layer.size == 5}
    plan = Executor.of(graph, params, batch, algorithms=forced)
    assert {plan.algorithms[i].name for i in forced} == {algorithm}
    np.testing.assert_allclose(plan.run(x), NumpyProgram(graph, params).run(x),
                               rtol=PROBABILITY_RTOL, atol=PROBABILITY_ATOL, err_msg=f"{algorithm} at {h}x{w}")


def test_5x5_winograd_is_chosen_where_it_applies_and_refuses_other_geometry():
    alexnet = graph_from_text(FIVE_BY_FIVE.format(h=27, w=27, filters=256, pool=3))
    assert choose(alexnet.nodes[1]) is WINOGRAD2_5X5  # 16 channels in, 27x27: AlexNet's second layer
    assert choose(alexnet.nodes[3]) is WINOGRAD2_5X5
    unpadded = graph_from_text(FIVE_BY_FIVE.format(h=27, w=27, filters=256, pool=3).replace("pad=1", "pad=0"))
    assert choose(unpadded.nodes[1]) is IM2COL
    assert "5x5, stride 1, pad 2" in WINOGRAD2_5X5.refusal(unpadded.nodes[1])
    tiny_map = graph_from_text(FIVE_BY_FIVE.format(h=4, w=4, filters=256, pool=3))
    assert choose(tiny_map.nodes[1]) is IM2COL  # 4 tiles: too few to pay for the transforms


def test_unfused_plan_matches_every_layer_of_the_plain_path():
    graph, params = _network(15, 12)
    x = _x(3, graph)
    planned = PlannedProgram(graph, params, 3).run_layers(x)
    plain = NumpyProgram(graph, params).run_layers(x)
    assert len(planned) == len(plain) == len(graph.nodes)
    for node, got, want in zip(graph.nodes, planned, plain, strict=False):
        assert got.shape == want.shape, f"layer {node.index} {node.kind}"
        scale = float(np.abs(want).max())
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * scale,
                                   err_msg=f"layer {node.index} {node.kind}")


def test_fused_plan_refuses_run_layers():
    graph, params = _network(8, 8)
    with pytest.raises(ValueError, match="fuse=False"):
        Executor.of(graph, params, 1).run_layers(_x(1, graph))


def test_grouped_convolution_takes_the_plain_algorithm():
    graph = graph_from_text("[net]\nchannels=4\nheight=6\nwidth=7\n\n[convolutional]\nfilters=8\n"
                            "size=3\nstride=1\npad=1\ngroups=2\nactivation=leaky\n\n[maxpool]\nsize=2\nstride=2\n")
    params = fold_params(graph, random_params(graph))
    plan = Executor.of(graph, params, 2)
    assert plan.algorithms == {0: PLAIN}
    x = _x(2, graph)
    np.testing.assert_allclose(plan.run(x), NumpyProgram(graph, params).run(x), rtol=1e-5, atol=1e-6)


def test_algorithm_choice_by_shape():
    graph = load_graph(REPO / "cfg" / "tiny.cfg")
    chosen = {node.index: choose(node) for node in graph.nodes if node.kind == "convolutional"}
    assert chosen[0] is NCHW  # 3 input channels: too few for Winograd; the image arrives NCHW
    assert {chosen[i] for i in chosen if graph.nodes[i].layer.size == 1} == {GEMM}
    assert all(isinstance(chosen[i], Winograd) for i in chosen if i and graph.nodes[i].layer.size == 3)


def test_tiny_darknet_probabilities_match_the_plain_path(shared):
    graph = load_graph(REPO / "cfg" / "tiny.cfg")
    _, raw = read_weights(shared / "weights" / "tiny-random.weights", graph)
    params = fold_params(graph, raw)
    x = np.load(shared / "reference" / "tiny_dog_resize_min_input.npy")[None]
    graph = graph.resized(*x.shape[2:])
    planned = PlannedProgram(graph, params, 1).run(x)
    np.testing.assert_allclose(planned, NumpyProgram(graph, params).run(x),
                               rtol=PROBABILITY_RTOL, atol=PROBABILITY_ATOL)
    reference = np.load(shared / "reference" / "tiny_dog_resize_min_output.npy")
    assert int(planned.argmax()) == int(reference.argmax())


def test_numpy_backend_uses_the_plan_and_numpy_exact_keeps_its_own_path(shared):
    x = np.load(shared / "reference" / "tiny_dog_resize_min_input.npy")
    fast = load(REPO / "cfg" / "tiny.cfg", shared / "weights" / "tiny-random.weights", "numpy")
    assert isinstance(fast.program(1, *x.shape[1:]), PlannedProgram)
    exact = load(REPO / "cfg" / "tiny.cfg", shared / "weights" / "tiny-random.weights", "numpy-exact")
    expected = np.load(shared / "reference" / "tiny_dog_resize_min_output.npy").ravel()
    assert not isinstance(exact.program(1, *x.shape[1:]), PlannedProgram)
    np.testing.assert_allclose(exact.predict(x), expected, rtol=1e-5, atol=0)
    np.testing.assert_allclose(fast.predict(x), expected, rtol=PROBABILITY_RTOL, atol=PROBABILITY_ATOL)


@pytest.mark.parametrize("processes", TEAM_KINDS)
@pytest.mark.parametrize("threads", [1, 2])
def test_blas_threads_never_exceed_the_cores_during_a_run(threads, processes):
    graph, params = _network(16, 16)
    plan = Executor.of(graph, params, 1, threads=threads, processes=processes)
    seen = shared_zeros((2,), np.int64)  # what the first band's and the last band's BLAS may use
    tasks = plan.phases[0]
    assert len(tasks) >= 2  # with a process team, the caller runs the first band and the helper the last

    def recording(slot, task):
        def record():
            seen[slot] = max(info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas")
            return task()
        return record

    tasks[0], tasks[-1] = recording(0, tasks[0]), recording(1, tasks[-1])
    plan.run(_x(1, graph))
    assert 1 <= seen.min() and seen.max() <= available_cores()
    if threads > 1:  # the bands are the parallelism: each band's BLAS runs on one thread only
        assert seen.max() == 1


def test_plan_reports_its_buffers():
    graph, params = _network(16, 16)
    one, four = Executor.of(graph, params, 1), Executor.of(graph, params, 4)
    c, h, w = graph.input_shape
    assert one.nbytes > 4 * c * h * w
    assert four.nbytes > one.nbytes


def test_plan_rejects_another_input_shape():
    graph, params = _network(8, 8)
    with pytest.raises(ValueError, match="this plan runs"):
        Executor.of(graph, params, 2).run(_x(1, graph))


@pytest.mark.parametrize("processes", TEAM_KINDS)
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("batch", [1, 3])
def test_bands_and_lanes_match_the_plain_path(threads, batch, processes):
    # batch 1: each step's rows cut into bands for `threads` members; batch 3: whole images on
    # `threads` lanes. 56 rows: the first layer's map is tall enough for the most bands.
    graph, params = _network(56, 18)
    x = _x(batch, graph)
    plan = Executor.of(graph, params, batch, threads=threads, processes=processes)
    assert len(plan.lanes) == (min(threads, batch) if batch > 1 else 1)
    team = {True: ProcessTeam, False: ThreadTeam}[processes]
    assert isinstance(plan.team, team) if threads > 1 else plan.team is None
    workers = threads if batch == 1 else 1  # each lane runs its image's bands on its own thread
    assert max(len(step.tasks) for step in plan.steps) == max(workers * BANDS_PER_THREAD, MIN_BANDS)
    np.testing.assert_allclose(plan.run(x), NumpyProgram(graph, params).run(x),
                               rtol=PROBABILITY_RTOL, atol=PROBABILITY_ATOL)


@pytest.mark.parametrize("processes", TEAM_KINDS)
def test_a_failing_band_raises_its_own_error_and_the_plan_still_runs(processes):
    graph, params = _network(16, 16)
    plan = Executor.of(graph, params, 1, threads=2, processes=processes)
    original = plan.phases[0][-1]  # a process team's helper runs the last band

    def failing():
        raise RuntimeError("band failed")

    plan.phases[0][-1] = failing
    with pytest.raises(TeamError if processes else RuntimeError, match="band failed"):
        plan.run(_x(1, graph))
    plan.phases[0][-1] = original
    np.testing.assert_allclose(plan.run(_x(1, graph)), NumpyProgram(graph, params).run(_x(1, graph)),
                               rtol=PROBABILITY_RTOL, atol=PROBABILITY_ATOL)


@pytest.mark.parametrize("weights", ["tiny.weights", "tiny-random.weights"])
def test_tiny_darknet_224_probabilities_match_the_plain_path_at_batch_1_and_2(shared, weights):
    # The trained weights too: Winograd F(4x4) multiplies by constants up to 8.
    graph = load_graph(REPO / "cfg" / "tiny.cfg")
    _, raw = read_weights(shared / "weights" / weights, graph)
    params = fold_params(graph, raw)
    x = np.load(shared / "reference" / "tiny_dog_stretch_input.npy")[None]
    x = np.concatenate([x, x[:, :, ::-1]])
    want = NumpyProgram(graph, params).run(x)
    for batch in (1, 2):
        got = np.concatenate([Executor.of(graph, params, batch).run(x[i:i + batch]) for i in range(0, 2, batch)])
        np.testing.assert_allclose(got, want, rtol=PROBABILITY_RTOL, atol=PROBABILITY_ATOL)


HEAD = """
[net]
channels=3
height=12
width=10

[convolutional]
filters=8
size=3
stride=1
pad=1
activation=leaky

[convolutional]
filters=6
size=1
stride=1
activation={activation}

[avgpool]

[softmax]
"""


@pytest.mark.parametrize("activation", ["linear", "leaky"])
@pytest.mark.parametrize("batch", [1, 3])
def test_a_linear_1x1_convolution_before_the_average_pool_runs_on_the_averaged_pixel(activation, batch):
    graph = graph_from_text(HEAD.format(activation=activation))
    params = fold_params(graph, random_params(graph, 3))
    plan = Executor.of(graph, params, batch, threads=2)
    # Averaging first is exact only for a linear activation: leaky keeps its own steps.
    steps = plan.steps + (plan.tail.steps if plan.tail else [])  # at batch 3 the end runs on the whole batch
    averaged = [step for step in steps if [n.kind for n in step.nodes] == ["convolutional", "avgpool"]]
    assert len(averaged) == (1 if activation == "linear" else 0)
    x = _x(batch, graph)
    np.testing.assert_allclose(plan.run(x), NumpyProgram(graph, params).run(x),
                               rtol=PROBABILITY_RTOL, atol=PROBABILITY_ATOL)


def test_a_1x1_convolution_runs_in_the_bands_of_the_layer_before_it():
    graph, params = _network(20, 18)  # an even height: the 2x2 pool's windows tile the rows
    plan = Executor.of(graph, params, 1, threads=2)
    first, pointwise = plan.steps[0], plan.steps[1]  # 3x3 + max pool, then the 1x1
    assert pointwise.nodes[0].layer.size == 1
    assert pointwise.row_bands == first.row_bands and len(first.row_bands) > 1
    assert len(plan.phases) < len(plan.steps)  # fewer meeting points than steps
    assert len(plan.phases[0]) == len(first.row_bands)
    x = _x(1, graph)
    np.testing.assert_allclose(plan.run(x), NumpyProgram(graph, params).run(x),
                               rtol=PROBABILITY_RTOL, atol=PROBABILITY_ATOL)


OVERLAPPING_POOLS = """
[net]
channels=3
height={h}
width=37

[convolutional]
filters=16
size=11
stride=4
pad=0
activation=relu

[maxpool]
size=3
stride=2
padding=0

[convolutional]
filters=24
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=3
stride=2
padding=0

[avgpool]
"""


@pytest.mark.parametrize(("h", "algorithm"), [(227, "winograd2"), (227, "winograd4"), (197, "im2col")])
def test_bands_under_overlapping_pool_windows_compute_the_rows_they_share(h, algorithm):
    # A 3x3 pool at stride 2 (AlexNet's): each band computes the conv rows its windows read,
    # the row between two bands twice, instead of the whole layer running on one thread.
    graph = graph_from_text(OVERLAPPING_POOLS.format(h=h))
    params = fold_params(graph, random_params(graph, 5))
    plan = Executor.of(graph, params, 1, threads=2, algorithms={2: algorithm})
    assert len(plan.steps[0].row_bands) > 1 and len(plan.steps[1].row_bands) > 1
    x = _x(1, graph)
    np.testing.assert_allclose(plan.run(x), NumpyProgram(graph, params).run(x),
                               rtol=PROBABILITY_RTOL, atol=PROBABILITY_ATOL)


SHORTCUTS = """
[net]
channels=3
height={h}
width=20

[convolutional]
filters=16
size=3
stride=1
pad=1
activation=leaky

[convolutional]
filters=16
size=3
stride=1
pad=1
activation=linear

[shortcut]
from=-2
activation=leaky

[convolutional]
filters=24
size=3
stride=2
pad=1
activation=linear

[shortcut]
from=-2
alpha=0.5
beta=2
activation=relu

[upsample]
stride=2

[convolutional]
filters=8
size=1
stride=1
activation=linear

[shortcut]
from=-4
activation=linear

[convolutional]
filters=16
size=1
stride=1
activation=leaky

[avgpool]
"""


@pytest.mark.parametrize("h", [44, 24])
def test_a_shortcut_runs_in_the_bands_of_the_layer_before_it(h):
    # Equal shapes; Darknet's sampling from a larger source (stride 2, fewer channels) and from a
    # smaller one (sample 2): each band adds the rows it wrote, no meeting point between the two.
    graph = graph_from_text(SHORTCUTS.format(h=h))
    params = fold_params(graph, random_params(graph, 7))
    plan = Executor.of(graph, params, 1, threads=2)
    shortcuts = [step for step in plan.steps if step.nodes[0].kind == "shortcut"]
    assert len(shortcuts) == 3
    assert all(len(step.row_bands) > 1 for step in shortcuts)
    before = {id(step.out): step for step in plan.steps}
    chained = [step for step in shortcuts if getattr(before.get(id(step.x)), "row_bands", None) == step.row_bands]
    assert len(chained) >= 2
    assert len(plan.phases) <= len(plan.steps) - len(chained)
    x = _x(1, graph)
    np.testing.assert_allclose(plan.run(x), NumpyProgram(graph, params).run(x),
                               rtol=PROBABILITY_RTOL, atol=PROBABILITY_ATOL)
    unfused = PlannedProgram(graph, params, 1).run_layers(x)
    for node, got, want in zip(graph.nodes, unfused, NumpyProgram(graph, params).run_layers(x), strict=True):
        if node.kind == "shortcut":
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=f"layer {node.index}")


@pytest.mark.parametrize("batch", [1, 3])
def test_bands_share_working_memory_only_when_they_never_run_at_once(batch):
    # batch 1: the bands of one phase run at once and need their own slots; a later step's band
    # reuses its index's slot. batch 3: each lane runs its bands one after another, all in slot 0.
    graph, params = _network(56, 18)
    plan = Executor.of(graph, params, batch, threads=2)
    assert plan.arena.fits
    assert len(plan.arena.memory) == (plan.plan.parts if batch == 1 else 1)
    first, later = plan.steps[0].bands, plan.steps[2].bands  # a 3x3 + pool, then a Winograd 3x3

    def slots(band):
        return [slot for slot, memory in plan.arena.memory.items()
                if np.shares_memory(memory, band.raw if hasattr(band, "raw") else band.winograd.products)]
    assert slots(first[0]) == slots(later[0]) == [0]
    assert [slots(band) for band in later] == ([[k] for k in range(len(later))] if batch == 1 else [[0]] * len(later))
    x = _x(batch, graph)
    np.testing.assert_allclose(plan.run(x), NumpyProgram(graph, params).run(x),
                               rtol=PROBABILITY_RTOL, atol=PROBABILITY_ATOL)


@pytest.mark.skipif(not PROCESSES_AVAILABLE, reason="process teams need Linux on x86-64")
def test_threads_by_default_and_processes_in_a_processes_pool_only_for_runs_worth_a_fork():
    small, params = _network(16, 16)
    assert small.flops() < MIN_PROCESS_FLOPS
    pool = Workers("processes")
    assert isinstance(Executor.of(small, params, 1, threads=2, workers=pool).team, ThreadTeam)
    tiny = load_graph(REPO / "cfg" / "tiny.cfg")
    assert tiny.flops() >= MIN_PROCESS_FLOPS
    tiny_params = fold_params(tiny, random_params(tiny, 1))
    assert isinstance(Executor.of(tiny, tiny_params, 1, threads=2).team, ThreadTeam)
    assert isinstance(Executor.of(tiny, tiny_params, 1, threads=2, workers=pool).team, ProcessTeam)
    assert isinstance(Executor.of(tiny, tiny_params, 1, threads=2, processes=False, workers=pool).team, ThreadTeam)


@pytest.mark.skipif(not PROCESSES_AVAILABLE, reason="process teams need Linux on x86-64")
def test_lanes_share_the_arrays_derived_from_the_weights():
    graph, params = _network(56, 18)
    plan = Executor.of(graph, params, 3, threads=2, processes=True)
    shared = [name for own, lane in zip(plan.steps, plan.lanes[1].steps, strict=True)
              for name in ("matrix", "kernel") if hasattr(own, name) and getattr(lane, name) is getattr(own, name)]
    assert shared.count("matrix") >= 2 and shared.count("kernel") >= 1  # the 1x1s and first layer; a Winograd 3x3
    x = _x(3, graph)
    np.testing.assert_allclose(plan.run(x), NumpyProgram(graph, params).run(x),
                               rtol=PROBABILITY_RTOL, atol=PROBABILITY_ATOL)


@pytest.mark.skipif(not PROCESSES_AVAILABLE, reason="process teams need Linux on x86-64")
def test_a_fork_of_the_process_gets_its_own_plan_and_leaves_the_parents_alone():
    # A multiprocessing worker forked from a process that already ran the network: the plan's
    # shared buffers belong to the parent and its helpers.
    graph, params = _network(56, 18)
    x = _x(1, graph)
    want = NumpyProgram(graph, params).run(x)
    program = PlannedProgram(graph, params, 1)
    program.executor = Executor.of(graph, params, 1, threads=2, processes=True)
    np.testing.assert_allclose(program.run(x), want, rtol=PROBABILITY_RTOL, atol=PROBABILITY_ATOL)
    parents_executor = program.executor
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report whether its run matched, then leave without cleaning up
        try:
            with pytest.raises(TeamError, match="not in a fork"):
                parents_executor.run(x)
            ok = np.allclose(program.run(x), want, rtol=PROBABILITY_RTOL, atol=PROBABILITY_ATOL)
            os.write(write, b"1" if ok and program.executor is not parents_executor else b"0")
        finally:
            os._exit(0)
    os.close(write)
    assert os.read(read, 1) == b"1"
    os.waitpid(pid, 0)
    np.testing.assert_allclose(program.run(x), want, rtol=PROBABILITY_RTOL, atol=PROBABILITY_ATOL)
    assert program.executor is parents_executor


# Every kind the zoo adds: shortcuts (same shapes, and Darknet's sampling between shapes, alpha and
# beta), routes with groups, a crop, an upsample, a standalone batch norm and connected layers.
ZOO_KINDS = """
[net]
channels=3
height=20
width=20

[crop]
crop_height=18
crop_width=18
flip=0

[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky

[convolutional]
filters=8
size=1
stride=1
activation=linear

[shortcut]
from=-2
activation=leaky

[convolutional]
filters=16
size=3
stride=2
pad=1
activation=relu

[shortcut]
from=-3
alpha=0.5
beta=2
activation=linear

[route]
layers=-1,-2
groups=2
group_id=1

[upsample]
stride=2

[batchnorm]

[maxpool]
size=2
stride=2

[convolutional]
filters=12
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[connected]
output=10
activation=leaky

[dropout]
probability=.5

[connected]
output=7
activation=linear

[softmax]
"""


@pytest.mark.parametrize("processes", TEAM_KINDS)
@pytest.mark.parametrize("batch", [1, 3])
def test_every_zoo_kind_runs_in_the_plan_and_matches_the_plain_path(batch, processes):
    graph = graph_from_text(ZOO_KINDS)
    params = fold_params(graph, random_params(graph, 2))
    program = NumpyBackend().prepare(graph, params, batch, "fp32")
    assert isinstance(program, PlannedProgram)
    plan = Executor.of(graph, params, batch, threads=2, processes=processes)
    steps = plan.steps + (plan.tail.steps if plan.tail else [])  # at batch 3 the end runs on the whole batch
    assert {type(step).__name__ for step in steps} >= {"_Shortcut", "_Connected", "_Layer", "_Conv"}
    x = _x(batch, graph)
    np.testing.assert_allclose(plan.run(x), NumpyProgram(graph, params).run(x),
                               rtol=PROBABILITY_RTOL, atol=PROBABILITY_ATOL)
    unfused = PlannedProgram(graph, params, batch).run_layers(x)
    for node, got, want in zip(graph.nodes, unfused, NumpyProgram(graph, params).run_layers(x), strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * float(np.abs(want).max()),
                                   err_msg=f"layer {node.index} {node.kind}")


@pytest.mark.parametrize("name", ["tiny", "darknet", "extraction", "darknet19", "darknet19_448", "darknet53",
                                  "resnet18", "resnet50", "alexnet", "vgg-16"])
def test_every_zoo_network_runs_planned(shared, name):
    graph = load_graph(shared / "cfg" / f"{name}.cfg")
    assert {node.kind for node in graph.nodes} <= PLANNED_KINDS


SMALL_MAPS_MANY_FILTERS = """
[net]
channels=8
height=12
width=12

[convolutional]
filters=256
size=3
stride=2
pad=1
activation=leaky

[convolutional]
filters=256
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
filters=300
size=1
stride=1
activation=relu

[convolutional]
filters=260
size=3
stride=1
pad=1
activation=linear

[avgpool]
"""


@pytest.mark.parametrize("pool", ["size=2\nstride=2", "size=3\nstride=2"])  # 3x3 pads: a -FLT_MAX copy per band
@pytest.mark.parametrize("processes", TEAM_KINDS)
def test_short_maps_with_many_filters_split_by_filters_at_batch_1(processes, pool):
    graph = graph_from_text(SMALL_MAPS_MANY_FILTERS.replace("[maxpool]\nsize=2\nstride=2", f"[maxpool]\n{pool}"))
    assert graph.nodes[2].layer.size == int(pool[5])
    params = fold_params(graph, random_params(graph, 4))
    plan = Executor.of(graph, params, 1, threads=2, processes=processes)
    convs = [step for step in plan.steps if hasattr(step, "bands")]
    assert len(convs) == 4
    for step in convs:
        widths = [band.out.shape[-1] for band in step.bands]
        assert len(widths) == 2 and sum(widths) == step.nodes[0].out_shape[0]
        assert all(band.out.shape[1] == step.out.shape[1] for band in step.bands)  # whole maps
    x = _x(1, graph)
    np.testing.assert_allclose(plan.run(x), NumpyProgram(graph, params).run(x), rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(not PROCESSES_AVAILABLE, reason="needs Linux on x86-64")
def test_networks_heavy_on_small_maps_take_several_images_per_pass_in_processes():
    graph = graph_from_text(SMALL_MAPS_MANY_FILTERS)
    params = fold_params(graph, random_params(graph, 4))
    plan = Executor.of(graph, params, 8, threads=2, processes=True)
    assert plan.chunk == SMALL_MAPS_CHUNK and len(plan.lanes) == 2 and plan.tail is None
    assert Executor.of(graph, params, 4, threads=2, processes=True).chunk == 2  # each member still gets a pass
    x = _x(8, graph)
    np.testing.assert_allclose(plan.run(x), NumpyProgram(graph, params).run(x), rtol=1e-5, atol=1e-6)
    tiny = load_graph(REPO / "cfg" / "tiny.cfg")
    assert Executor.of(tiny, fold_params(tiny, random_params(tiny, 1)), 8, threads=2).chunk == 1


def test_small_maps_throughout_run_the_whole_batch_at_once_split_by_filters_in_threads():
    graph = graph_from_text(SMALL_MAPS_MANY_FILTERS)
    params = fold_params(graph, random_params(graph, 4))
    plan = Executor.of(graph, params, 8, threads=2)
    assert plan.chunk == 8 and len(plan.lanes) == 1 and plan.tail is None
    assert [plan.plan.splits[group[0].index].by_filters for group in plan.plan.groups] == [True] * 4 + [False]
    x = _x(8, graph)
    np.testing.assert_allclose(plan.run(x), NumpyProgram(graph, params).run(x), rtol=1e-5, atol=1e-6)


SMALL_MAPS_AT_THE_END = """
[net]
channels=3
height=24
width=24

[convolutional]
filters=16
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
filters=256
size=3
stride=2
pad=1
activation=leaky

[dropout]
probability=.5

[convolutional]
filters=256
size=1
stride=1
activation=relu

[connected]
output=300
activation=leaky

[softmax]
"""


@pytest.mark.parametrize("batch", [2, 5])
def test_the_end_on_small_maps_runs_on_the_whole_batch_after_the_lanes(batch):
    graph = graph_from_text(SMALL_MAPS_AT_THE_END)
    params = fold_params(graph, random_params(graph, 4))
    plan = Executor.of(graph, params, batch, threads=2)
    assert [group[0].index for group in plan.plan.groups] == [0]  # conv + maxpool on 24x24, in lanes
    assert plan.chunk == 1 and len(plan.lanes) == 2
    tail = plan.tail
    assert tail is not None and tail.chunk == batch and isinstance(tail.team, ThreadTeam)
    assert [step.nodes[0].kind for step in tail.steps] == ["convolutional", "convolutional", "connected", "softmax"]
    assert [len(step.tasks) for step in tail.steps] == [2, 2, 2, 1]  # filters and outputs split in two
    x = _x(batch, graph)
    want = NumpyProgram(graph, params).run(x)
    np.testing.assert_allclose(plan.run(x), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(plan.run(x[::-1].copy()), want[::-1], rtol=1e-5, atol=1e-6)  # buffers reused
    assert Executor.of(graph, params, 1, threads=2).tail is None
    assert Executor.of(graph, params, batch, threads=1).tail is None


def test_the_plan_is_immutable_decisions_and_executors_run_it():
    graph = graph_from_text(SMALL_MAPS_MANY_FILTERS)
    params = fold_params(graph, random_params(graph, 4))
    plan = Plan.make(graph, 1, threads=2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.chunk = 2  # type: ignore[misc]
    assert not any(isinstance(value, np.ndarray) for value in vars(plan).values())
    assert [tuple(node.kind for node in group) for group in plan.groups][:2] == [
        ("convolutional",), ("convolutional", "maxpool")]
    assert [plan.splits[group[0].index].by_filters for group in plan.groups] == [True, True, True, True, False]
    x = _x(1, graph)
    first, second = Executor(plan, params), Executor(plan, params)
    assert first.steps[0] is not second.steps[0]
    np.testing.assert_array_equal(first.run(x), second.run(x))


@pytest.mark.parametrize("filters", [1, 3])
def test_shortcut_between_different_channel_counts_sums_the_overlap(filters):
    # The source has 2 channels, the input 1 or 3: Darknet adds the channels both have.
    graph = graph_from_text("[net]\nchannels=2\nheight=3\nwidth=3\n\n[maxpool]\nsize=1\nstride=1\n\n"
                            f"[convolutional]\nfilters={filters}\nsize=1\n\n[shortcut]\nfrom=0\n")
    params = fold_params(graph, random_params(graph, 0))
    x = _x(1, graph)
    np.testing.assert_allclose(Executor.of(graph, params, 1).run(x), NumpyProgram(graph, params).run(x),
                               rtol=1e-6, atol=1e-7)


def test_a_route_through_layers_that_compute_nothing_reads_the_input():
    graph = graph_from_text("[net]\nchannels=2\nheight=3\nwidth=2\n\n[cost]\n\n[dropout]\n\n[route]\nlayers=1\n")
    x = _x(2, graph)
    np.testing.assert_array_equal(Executor.of(graph, [{}] * 3, 2).run(x), x)


SHORTCUT_INTO_THE_END = """
[net]
channels=3
height=24
width=24

[convolutional]
filters=16
size=3
stride=2
pad=1
activation=leaky
{extra}
[convolutional]
filters=256
size=3
stride=2
pad=1
activation=leaky

[convolutional]
filters=256
size=3
stride=1
pad=1
activation=linear

[shortcut]
from={source}
activation=leaky

[connected]
output=10
activation=linear
"""


@pytest.mark.parametrize(("extra", "source", "start"), [
    ("", -3, 1),  # the shortcut reads the end's own input: the end starts at the strided convolution
    ("\n[convolutional]\nfilters=16\nsize=1\nactivation=leaky\n", 0, 5),  # it reads further back: after it
])
def test_the_whole_batch_end_starts_after_every_layer_its_shortcuts_read(extra, source, start):
    graph = graph_from_text(SHORTCUT_INTO_THE_END.format(extra=extra, source=source))
    params = fold_params(graph, random_params(graph, 5))
    plan = Executor.of(graph, params, 3, threads=2)
    assert plan.tail is not None and plan.tail.steps[0].nodes[0].index == start
    x = _x(3, graph)
    np.testing.assert_allclose(plan.run(x), NumpyProgram(graph, params).run(x), rtol=1e-5, atol=1e-6)
