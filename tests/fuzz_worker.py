"""The fuzz suite's worker process: runs one case after another, in-process, under a memory limit.

`python -m tests.fuzz_worker MEMORY_MB` reads one JSON case per line on its standard input and
answers one JSON line per case on its standard output (both moved to private descriptors, so
nothing tdn prints can mix with them). A case is a set of files to write into a fresh folder and
a command line for tdn's main(), run there with its output captured. The parent
(tests/test_fuzz.py) judges the answer and restarts the worker when a case outlives its timeout
or kills the worker.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import resource
import shutil
import sys
import tempfile
import traceback
import warnings
from pathlib import Path


def hermetic_plugins() -> None:
    """Built-in backends only, as under pytest (tests/conftest.py): no entry points."""
    import tdn.plugins

    real = tdn.plugins.make_plugin_manager
    tdn.plugins.make_plugin_manager = (  # type: ignore[assignment]
        lambda plugins=(), *, entry_points=False: real(plugins, entry_points=entry_points))
    tdn.plugins.registry.cache_clear()


def write_files(folder: Path, files: dict[str, str]) -> None:
    """name -> base64 contents; the contents 'fifo:' make a named pipe instead."""
    for name, data in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if data == "fifo:":
            os.mkfifo(path)
        else:
            path.write_bytes(base64.b64decode(data))


def random_weights(cfg: Path, weights: Path) -> None:
    """Weights for a cfg that parses into a small network (the case then runs it); nothing for
    another cfg, whose error the case's command reports itself."""
    from tdn.errors import TdnError
    from tdn.graph import load_graph
    from tdn.weights import expected_floats, random_params, write_weights

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graph = load_graph(cfg)
    except TdnError:
        return
    if expected_floats(graph) <= 2_000_000 and graph.flops() <= 2e8:
        write_weights(weights, graph, random_params(graph))


def run_case(case: dict, base: Path) -> dict:
    from tdn.cli import main

    folder = Path(tempfile.mkdtemp(dir=base))
    out, err = io.StringIO(), io.StringIO()
    answer: dict = {"code": None, "exception": None}
    here = os.getcwd()
    try:
        if "allocate_mb" in case:  # the suite's own check that the memory limit holds
            bytearray(case["allocate_mb"] * 2**20)
        write_files(folder, case.get("files", {}))
        if "random_weights" in case:
            random_weights(*(folder / name for name in case["random_weights"]))
        argv = [arg.replace("{dir}", str(folder)) for arg in case["argv"]]
        os.chdir(folder)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
            sys.stdin = io.StringIO(case.get("stdin", "").replace("{dir}", str(folder)))
            try:
                answer["code"] = main(argv)
            except SystemExit as exit:  # argparse's usage errors
                answer["code"] = exit.code
    except BaseException:
        answer["exception"] = traceback.format_exc(limit=12)
    finally:
        os.chdir(here)
        shutil.rmtree(folder, ignore_errors=True)
    answer["stdout"], answer["stderr"] = out.getvalue()[-20000:], err.getvalue()[-20000:]
    answer["files"] = sorted(os.listdir(base))  # anything a case left outside its folder
    return answer


def serve(memory_mb: int) -> None:
    protocol_in = os.fdopen(os.dup(0), "r")
    protocol_out = os.fdopen(os.dup(1), "w")
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    hermetic_plugins()
    import tdn.cli  # noqa: F401  (everything a case needs, imported before the limit)

    limit = memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    base = Path(tempfile.mkdtemp(prefix="tdn-fuzz-"))
    try:
        for line in protocol_in:
            answer = run_case(json.loads(line), base)
            protocol_out.write(json.dumps(answer) + "\n")
            protocol_out.flush()
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    serve(int(sys.argv[1]))
