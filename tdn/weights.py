"""Darknet's binary .weights format (parser.c load_weights / save_weights).

Layout, little-endian: int32 major, minor, revision; then `seen` as uint64 when
major*10+minor >= 2 and both are below 1000 (a 20-byte header), else as int32 (16 bytes);
then each parameterised layer's float32 arrays in cfg order. major or minor above 1000
marks [connected] weights stored transposed, as (inputs, outputs).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tdn.errors import WeightsError
from tdn.graph import Graph, Node

RawParams = list[dict[str, np.ndarray]]
"""Per layer, the arrays exactly as stored in the file (unfolded), by name."""


@dataclass(frozen=True)
class Header:
    major: int = 0
    minor: int = 2
    revision: int = 0
    seen: int = 0

    @property
    def seen_is_64bit(self) -> bool:
        return (self.major * 10 + self.minor) >= 2 and self.major < 1000 and self.minor < 1000

    @property
    def size(self) -> int:
        return 20 if self.seen_is_64bit else 16

    @property
    def transpose(self) -> bool:
        return self.major > 1000 or self.minor > 1000


def _stored_transposed(header: Header, node: Node, name: str) -> bool:
    """Old [connected] weights are stored (inputs, outputs) when the header says so."""
    return header.transpose and name in node.layer.transposed_when_flagged


def expected_floats(graph: Graph) -> int:
    return sum(int(np.prod(shape)) for node in graph.nodes
               for _, shape in node.layer.weight_layout(node.in_shape))


def _read_header(data: bytes, source: str) -> Header:
    if len(data) < 12:
        raise WeightsError(f"{source}: {len(data)} bytes is too short for a Darknet weights header (16 or 20 bytes)")
    major, minor, revision = (int(v) for v in np.frombuffer(data, "<i4", 3))
    header = Header(major, minor, revision)
    if len(data) < header.size:
        raise WeightsError(f"{source}: header of version {major}.{minor} needs {header.size} bytes, found {len(data)}")
    seen_type = "<u8" if header.seen_is_64bit else "<i4"
    seen = int(np.frombuffer(data, seen_type, 1, offset=12)[0])
    return Header(major, minor, revision, seen)


def read_weights(path: str | Path, graph: Graph) -> tuple[Header, RawParams]:
    source = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise WeightsError(f"{source}: cannot read weights: {error.strerror or error}") from None
    header = _read_header(data, source)
    expected = header.size + 4 * expected_floats(graph)
    if len(data) != expected:
        raise WeightsError(
            f"{source}: expected {expected} bytes for {graph.source} "
            f"({header.size}-byte header + {expected_floats(graph)} floats), found {len(data)} "
            f"({'truncated' if len(data) < expected else 'too long'})"
        )
    offset = header.size
    params: RawParams = []
    for node in graph.nodes:
        arrays = {}
        for name, shape in node.layer.weight_layout(node.in_shape):
            count = int(np.prod(shape))
            stored = np.frombuffer(data, "<f4", count, offset)
            if _stored_transposed(header, node, name):
                arrays[name] = np.ascontiguousarray(stored.reshape(shape[::-1]).T, np.float32)
            else:
                arrays[name] = stored.reshape(shape).astype(np.float32)
            offset += 4 * count
        params.append(arrays)
    return header, params


def write_weights(path: str | Path, graph: Graph, params: RawParams, header: Header = Header()) -> None:
    """Write params in Darknet's format, atomically."""
    path = Path(path)
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as handle:
        handle.write(np.array([header.major, header.minor, header.revision], "<i4").tobytes())
        handle.write(np.array([header.seen], "<u8" if header.seen_is_64bit else "<i4").tobytes())
        for node, arrays in zip(graph.nodes, params):
            for name, shape in node.layer.weight_layout(node.in_shape):
                array = np.asarray(arrays[name], "<f4")
                if array.shape != shape:
                    raise ValueError(f"layer {node.index} {name}: shape {array.shape}, expected {shape}")
                handle.write((array.T if _stored_transposed(header, node, name) else array).tobytes())
    os.replace(handle.name, path)


def random_params(graph: Graph, seed: int = 0) -> RawParams:
    """Deterministic random parameters with sane magnitudes (for tests and benchmarks)."""
    rng = np.random.default_rng(seed)
    params: RawParams = []
    for node in graph.nodes:
        arrays = {}
        for name, shape in node.layer.weight_layout(node.in_shape):
            if name == "weights":
                fan_in = int(np.prod(shape[1:])) or 1
                value = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
            elif name in ("scales", "rolling_variance"):
                value = rng.uniform(0.5, 1.5, shape)
            else:
                value = rng.normal(0.0, 0.1, shape)
            arrays[name] = value.astype(np.float32)
        params.append(arrays)
    return params


def fold_params(graph: Graph, params: RawParams) -> RawParams:
    """What backends compute with: batch-norm folded, per layer."""
    return [node.layer.fold(arrays) for node, arrays in zip(graph.nodes, params)]
