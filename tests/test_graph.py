from tdn.graph import SUMMARY_HEADER, load_graph


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
