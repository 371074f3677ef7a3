import numpy as np

import tdn
from tdn.network import PROGRAMS_KEPT
from tests.batch_helpers import write_small_net


def test_programs_are_reused_and_only_the_most_recent_sizes_are_kept(tmp_path):
    net = tdn.load(*write_small_net(tmp_path), backend="numpy")
    sizes = [(16 + 2 * i, 20) for i in range(PROGRAMS_KEPT + 3)]
    for height, width in sizes:
        net.predict(np.zeros((3, height, width), np.float32))
    assert len(net._programs) == PROGRAMS_KEPT
    assert [key[1:] for key in net._programs] == sizes[-PROGRAMS_KEPT:]
    oldest_kept = net.program(1, *sizes[-PROGRAMS_KEPT])
    assert net.program(1, *sizes[-PROGRAMS_KEPT]) is oldest_kept  # reused, and now the most recent
    net.predict(np.zeros((3, 8, 8), np.float32))
    assert (1, *sizes[-PROGRAMS_KEPT]) in net._programs and (1, *sizes[-PROGRAMS_KEPT + 1]) not in net._programs
