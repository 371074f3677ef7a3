import pytest

from tdn.errors import CfgError
from tdn.graph import SUMMARY_HEADER, ResizeError, graph_from_text, load_graph
from tdn.weights import expected_floats


def test_summary_is_darknets_layer_table(shared):
    darknet = (shared / "reference" / "classify_master_stderr.txt").read_text().splitlines()
    table = [line for line in darknet if line.startswith(("layer ", "    ", "   "))]
    ours = load_graph("cfg/tiny.cfg").summary().splitlines()
    assert ours[0] == SUMMARY_HEADER
    assert ours[:-1] == table
    assert ours[-1] == "Total BFLOPs 0.983"


def test_shapes_known_for_any_input_size_before_any_array():
    graph = load_graph("cfg/tiny.cfg").resized(224, 298)
    shapes = [node.out_shape for node in graph.nodes]
    assert shapes[0] == (16, 224, 298)
    assert shapes[1] == (16, 112, 149)
    assert shapes[3] == (32, 56, 75)  # Darknet's maxpool padding: (149 + 1 - 2) // 2 + 1
    assert shapes[19] == (1000, 14, 19)
    assert shapes[20] == (1000, 1, 1) and shapes[21] == (1000, 1, 1)
    assert graph.classes == 1000


def test_resized_to_own_size_is_the_same_graph():
    graph = load_graph("cfg/tiny.cfg")
    assert graph.resized(224, 224) is graph
    assert graph.resized(100, 60).resized(224, 224).nodes == graph.nodes


def test_flops_scale_with_input_area():
    graph = load_graph("cfg/tiny.cfg")
    assert abs(graph.resized(448, 448).flops() / graph.flops() - 4.0) < 0.02


def test_route_and_shortcut_references_resolve_to_absolute_sources():
    graph = graph_from_text("[net]\nchannels=3\nheight=8\nwidth=8\n"
                            "[convolutional]\nfilters=4\nsize=1\n"
                            "[convolutional]\nfilters=4\nsize=1\n"
                            "[shortcut]\nfrom=-2\n"
                            "[route]\nlayers=-1, 0\n"
                            "[route]\nlayers=1\n")
    assert [node.sources for node in graph.nodes] == [(), (), (0,), (2, 0), (1,)]
    assert graph.nodes[3].out_shape == (8, 8, 8)
    lines = graph.summary().splitlines()
    assert lines[3] == "    2 res    0                   8 x   8 x   4   ->     8 x   8 x   4"
    assert lines[4] == "    3 route  2 0"


@pytest.mark.parametrize("layer, message", [
    ("[route]\nlayers=-3\n", "<cfg>:8: layer 1 [route] refers to layer -3 (= -2), but only layers 0..0 come before it"),
    ("[route]\nlayers=1\n", "<cfg>:8: layer 1 [route] refers to layer 1 (= 1), but only layers 0..0 come before it"),
    ("[shortcut]\nfrom=5\n",
     "<cfg>:8: layer 1 [shortcut] refers to layer 5 (= 5), but only layers 0..0 come before it"),
    ("[shortcut]\nactivation=leaky\n", "<cfg>:8: [shortcut] option 'from' is required"),
    ("[route]\nlayers=a,b\n", "<cfg>:9: [route] option 'layers': expected comma-separated layer indices, got 'a,b'"),
    ("[route]\nlayers=0\ngroups=3\n",
     "<cfg>:8: layer 1 [route] at input 4x4x4: groups=3 must divide layer 0's 4 channels"),
    ("[maxpool]\nsize=2\nstride=2\n[route]\nlayers=0,1\n",
     "<cfg>:11: layer 2 [route] at input 4x2x2: layer 1 outputs 2x2, layer 0 outputs 4x4"),
    ("[crop]\ncrop_height=4\ncrop_width=2\n[shortcut]\nfrom=0\n",
     "<cfg>:11: layer 2 [shortcut] at input 4x4x2: Darknet cannot add layer 0's 4x4 output to a 2x4 input"),
    ("[local]\nfilters=2\n", "<cfg>:8: layer type [local] is not supported by tdn"),
    ("[lrn]\n", "<cfg>:8: layer type [lrn] is not supported by tdn"),
    ("[upsample]\nstride=-2\n", "<cfg>:8: [upsample] stride=-2: Darknet's reverse (downsampling) upsample"),
])
def test_bad_references_and_shapes_are_one_line_cfg_errors(layer, message):
    text = "[net]\nchannels=3\nheight=4\nwidth=4\n[convolutional]\nfilters=4\nsize=1\n" + layer
    with pytest.raises(CfgError) as error:
        graph_from_text(text)
    assert "\n" not in str(error.value)
    assert str(error.value).startswith(message)


def test_resizing_follows_darknets_resize_network():
    text = "[net]\nchannels=3\nheight=8\nwidth=8\n[convolutional]\nfilters=4\nsize=3\nstride=2\npad=1\n"
    # A connected layer cannot be resized; after the avgpool Darknet stops resizing.
    with pytest.raises(ResizeError, match=r"<cfg>:10: layer 1 \[connected\]: Darknet cannot resize"):
        graph_from_text(text + "[connected]\noutput=3\n").resized(16, 8)
    assert graph_from_text(text + "[avgpool]\n[connected]\noutput=3\n").resized(16, 8).output_shape == (3, 1, 1)
    # A shortcut between different widths and heights is refused (Darknet asserts); equal ones resize.
    with pytest.raises(ResizeError, match=r"<cfg>:11: layer 2 \[shortcut\]: Darknet's resize_shortcut_layer asserts"):
        graph_from_text("[net]\nchannels=3\nheight=8\nwidth=8\n[convolutional]\nfilters=4\nsize=1\n"
                        "[maxpool]\nsize=2\nstride=2\n[shortcut]\nfrom=0\n").resized(16, 16)
    resized = graph_from_text("[net]\nchannels=3\nheight=8\nwidth=8\n[convolutional]\nfilters=3\nsize=1\n"
                              "[shortcut]\nfrom=0\n[route]\nlayers=0,1\n").resized(6, 10)
    assert resized.output_shape == (6, 6, 10)
    # The crop keeps its ratio to the cfg's size, truncated: 6/8 of 10 and 12.
    crop = graph_from_text("[net]\nchannels=3\nheight=8\nwidth=8\n[crop]\ncrop_height=6\ncrop_width=6\n")
    assert crop.resized(10, 13).nodes[0].out_shape == (3, 7, 9)
    assert crop.resized(10, 13).resized(8, 8).nodes == crop.nodes


def test_every_zoo_cfg_loads_with_the_parameter_count_darknet_reads(shared):
    # Float counts from make_weights.py, which matches Darknet's for these cfgs.
    expected = {"alexnet": 62378344, "darknet": 7323480, "darknet19": 20856776, "darknet19_448": 20856776,
                "darknet53": 41645640, "extraction": 23455400, "resnet18": 11523496, "resnet50": 22825896,
                "tiny": 1046488, "vgg-16": 138357544}
    for name, floats in expected.items():
        assert expected_floats(load_graph(shared / "cfg" / f"{name}.cfg")) == floats, name
