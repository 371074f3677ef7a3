import warnings

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tdn.cfg import CfgWarning, parse_cfg_text, read_cfg
from tdn.errors import CfgError
from tdn.graph import graph_from_text, load_graph
from tdn.layers import Convolutional, Maxpool

NET = "[net]\nwidth=32\nheight=24\nchannels=3\n"


def test_every_shared_cfg_parses_into_sections(shared):
    cfgs = sorted((shared / "cfg").glob("*.cfg"))
    assert len(cfgs) == 10
    for path in cfgs:
        sections = read_cfg(path)
        assert sections[0].header in ("net", "network"), path
        assert len(sections) > 5, path


def test_our_tiny_cfg_describes_darknets_network(shared):
    ours, theirs = load_graph("cfg/tiny.cfg"), load_graph(shared / "cfg" / "tiny.cfg")
    assert ours.layers == theirs.layers
    assert ours.net == theirs.net


def test_whitespace_comments_and_aliases_as_darknet_reads_them():
    graph = graph_from_text(NET + "# a comment\n; another\n\n[conv]\n filters = 8\nsize=3\npad=1\n"
                            "activation=leaky\n[max]\nsize=2\nstride=2\n")
    conv, pool = graph.layers
    assert conv == Convolutional(8, 3, 1, 1, 1, False, "leaky")
    assert pool == Maxpool(size=2, stride=2, padding=1)


def test_pad_flag_means_half_the_size_and_overrides_padding():
    graph = graph_from_text(NET + "[convolutional]\nfilters=4\nsize=5\npad=1\npadding=7\nactivation=linear\n")
    assert graph.layers[0].padding == 2
    assert graph.nodes[0].out_shape == (4, 24, 32)


def test_darknet_defaults_logistic_activation_and_maxpool_padding():
    graph = graph_from_text(NET + "[convolutional]\n[maxpool]\nstride=3\n")
    assert graph.layers[0].activation == "logistic"
    assert graph.layers[1] == Maxpool(size=3, stride=3, padding=2)
    # (24 + 2 - 3) // 3 + 1 = 8, (32 + 2 - 3) // 3 + 1 = 11
    assert graph.nodes[1].out_shape == (1, 8, 11)


def test_training_keys_accepted_unknown_keys_reported():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        graph_from_text(NET + "batch=64\nmomentum=0.9\n[maxpool]\nsize=2\nfrobnicate=3\n", "x.cfg")
    messages = [str(w.message) for w in caught if w.category is CfgWarning]
    assert messages == ["x.cfg:9: [maxpool] unknown option 'frobnicate' ignored"]


def test_repeated_key_keeps_the_first_like_darknet():
    with pytest.warns(CfgWarning, match="x.cfg:7: .*'size' repeated; using line 6"):
        graph = graph_from_text(NET + "[maxpool]\nsize=2\nsize=3\n", "x.cfg")
    assert graph.layers[0].size == 2


@pytest.mark.parametrize("text, message", [
    (NET + "[convolutional]\nfilters=x\n", r"x\.cfg:6: \[convolutional\] option 'filters': expected an integer, got"),
    (NET + "[convolutional]\nactivation=swish\n", r"x\.cfg:6: .*'activation': expected one of linear, leaky"),
    (NET + "[convolutional]\nsize=0\n", r"x\.cfg:6: .*'size': expected an integer >= 1, got '0'"),
    (NET + "[softmax]\ntemperature=-1\n", r"x\.cfg:6: .*'temperature': expected a positive number"),
    (NET + "[convolutional]\nbatch_normalize=2\n", r"x\.cfg:6: .*expected 0 or 1"),
    (NET + "[yolo3]\n", r"x\.cfg:5: unknown layer type \[yolo3\]"),
    (NET + "[lstm]\n", r"x\.cfg:5: layer type \[lstm\] is not supported"),
    (NET + "[maxpool]\nsize\n", r"x\.cfg:6: expected key=value, got 'size'"),
    ("width=3\n", r"x\.cfg:1: option before the first \[section\]"),
    ("[convolutional]\n", r"x\.cfg:1: the first section must be \[net\]"),
    (NET, r"x\.cfg: the network has no layers"),
    ("[net]\nwidth=8\nchannels=3\n[maxpool]\n", r"x\.cfg:1: \[net\] option 'height' is required"),
    (NET + "[convolutional]\nfilters=4\ngroups=2\n", r"x\.cfg:5: layer 0 \[convolutional\] at input 3x24x32: groups=2"),
    (NET + "[convolutional]\nsize=40\n", r"x\.cfg:5: layer 0 .*does not fit the 24x32 input"),
    (NET + "[net]\n", r"x\.cfg:5: \[net\] may only be the first section"),
    (NET + "[convolutional\n", r"x\.cfg:5: expected a section header"),
    (NET + "[convolutional]\nxnor=1\n", r"x\.cfg:6: .*'xnor': binary \(XNOR\) convolutions are not supported"),
])
def test_bad_cfg_is_a_one_line_error_with_file_and_line(text, message):
    with pytest.raises(CfgError, match=message) as raised:
        graph_from_text(text, "x.cfg")
    assert "\n" not in str(raised.value)


def test_missing_cfg_file(tmp_path):
    with pytest.raises(CfgError, match="nope.cfg: cannot read cfg"):
        load_graph(tmp_path / "nope.cfg")


@given(st.text(alphabet="[]=#;\n abcnetwidhgsz0123456789", max_size=300))
def test_garbage_never_crashes_with_anything_but_a_cfg_error(text):
    try:
        graph_from_text(text)
    except CfgError:
        pass


@st.composite
def cfg_texts(draw):
    height, width, channels = draw(st.integers(8, 40)), draw(st.integers(8, 40)), draw(st.integers(1, 4))
    lines = [f"[net]\nheight={height}\nwidth={width}\nchannels={channels}"]
    for _ in range(draw(st.integers(1, 5))):
        if draw(st.booleans()):
            size = draw(st.sampled_from([1, 3]))
            lines.append(f"[convolutional]\nfilters={draw(st.integers(1, 6))}\nsize={size}\npad=1\n"
                         f"batch_normalize={draw(st.integers(0, 1))}\nactivation=leaky")
        else:
            lines.append(f"[maxpool]\nsize={draw(st.integers(1, 3))}\nstride={draw(st.integers(1, 2))}")
    return "\n".join(lines) + "\n"


@given(cfg_texts())
def test_random_valid_cfg_text_builds_a_graph_whose_shapes_chain(text):
    graph = graph_from_text(text)
    for before, after in zip(graph.nodes, graph.nodes[1:]):
        assert after.in_shape == before.out_shape
    assert [s.header for s in parse_cfg_text(text)][1:] == [layer.kind for layer in graph.layers]
