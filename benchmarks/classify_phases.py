"""Where a one-image `tdn classify` spends its CPU time: each phase timed (time.process_time) in a
fresh interpreter, in the order the command runs them. Run it with the Python of the install to
measure, from outside the checkout so that the installed tdn is the one imported:

    cd / && /path/to/venv/bin/python /path/to/tdn/benchmarks/classify_phases.py

The cfg comes from this checkout, the weights and image from ../shared (or $TDN_SHARED).
"""

import os
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("TDN_SHARED", REPO.parent / "shared")) / "darknet"
marks = [("interpreter start-up", time.process_time())]


def mark(name: str) -> None:
    marks.append((name, time.process_time()))


import numpy  # noqa: E402, F401

mark("import numpy")
import PIL.Image  # noqa: E402, F401

mark("import Pillow")
import tqdm  # noqa: E402, F401

mark("import tqdm (tdn/cli/classify.py imports it for its progress bar)")
import tdn.cli.classify  # noqa: E402, F401
import tdn.network  # noqa: E402

mark("import the rest of tdn's classify modules")
from tdn.plugins import registry  # noqa: E402
from tdn.weights import read_weights  # noqa: E402

backend = registry().get("auto")
mark("plugin registry and backend='auto' (imports the backends)")
graph = tdn.load_graph(REPO / "cfg" / "tiny.cfg")
mark("read the cfg")
_, params = read_weights(SHARED / "weights" / "tiny.weights", graph)
mark("read the weights")
net = tdn.network.Network(graph, params, backend, None)
mark("bind them to the backend")
x = tdn.preprocess(SHARED / "images" / "dog-stb.png", net)
mark("decode and preprocess the image")
program = net.program(1, *x.shape[1:])
mark("build the backend's program")
program.run(x[None])
mark("first run")
program.run(x[None])
mark("second run (for comparison)")
for (_, before), (name, after) in zip(marks, marks[1:]):
    print(f"{(after - before) * 1000:7.1f} ms  {name}")
print(f"{marks[-1][1] * 1000:7.1f} ms  total CPU time of this process, start-up included")
