"""Darknet's binary .weights format (parser.c load_weights / save_weights).

Layout, little-endian: int32 major, minor, revision; then `seen` as uint64 when
major*10+minor >= 2 and both are below 1000 (a 20-byte header), else as int32 (16 bytes);
then each parameterised layer's float32 arrays in cfg order. major or minor above 1000
marks [connected] weights stored transposed, as (inputs, outputs).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tdn.errors import WeightsError, WrongKindOfFile
from tdn.files import atomic_file, open_regular, sniff
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
    return sum(math.prod(shape) for node in graph.nodes
               for _, shape in node.layer.weight_layout(node.in_shape))


def _not_weights(head: bytes) -> str | None:
    """What the file seems to be instead of Darknet weights, or None. A weights file starts
    with the int32 version 0, so its first bytes are never text."""
    kind = sniff(head)
    if kind is not None:
        return kind
    if head and all(32 <= byte < 127 or byte in b"\t\n\r" for byte in head):
        return "a text file (a cfg or a names list?)"
    return None


def _plausible(header: Header) -> bool:
    """A header Darknet could have written: small version numbers (above 1000: the transposed flag)."""
    return all(0 <= value <= 2000 for value in (header.major, header.minor)) and 0 <= header.revision < 2**16


class NotWeightsError(WeightsError, WrongKindOfFile):
    """A file that is not Darknet weights at all (an image or a cfg given in its place)."""


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


def _first_non_finite(values: np.ndarray, graph: Graph, source: str, header_size: int) -> WeightsError | None:
    finite = np.isfinite(values)
    if finite.all():
        return None
    index = int(np.argmin(finite))
    start = 0
    for node in graph.nodes:
        for name, shape in node.layer.weight_layout(node.in_shape):
            count = math.prod(shape)
            if index < start + count:
                return WeightsError(
                    f"{source}: byte {header_size + 4 * index}: layer {node.index} [{node.kind}] ({node.where}) "
                    f"{name} holds {values[index]}: a damaged file, or one saved from a diverged training")
            start += count
    raise AssertionError("a value outside every layer")  # unreachable: values holds exactly the layouts


def read_weights(path: str | Path, graph: Graph) -> tuple[Header, RawParams]:
    """The header and each layer's arrays; WeightsError (naming the file and what is wrong)
    for a file of the wrong size or kind, or one holding NaN or infinite values."""
    source = str(path)
    count = expected_floats(graph)
    with open_regular(path, "weights", WeightsError) as handle:
        size = os.fstat(handle.fileno()).st_size
        head = handle.read(20)
        kind = _not_weights(head)
        if kind is not None:
            raise NotWeightsError(f"{source}: not a Darknet weights file: it looks like {kind}")
        header = _read_header(head, source)
        expected = header.size + 4 * count
        # The size is checked before reading the floats: a wrong file of any size costs nothing.
        if size != expected and not _plausible(header):
            raise NotWeightsError(
                f"{source}: not a Darknet weights file: its header reads version {header.major}."
                f"{header.minor}.{header.revision}, and its {size} bytes are not the {expected} "
                f"that {graph.source} needs")
        if size != expected:
            found = (f"{expected - size} bytes short: truncated, or written for another cfg" if size < expected
                     else f"{size - expected} bytes too long: written for another cfg?")
            raise WeightsError(f"{source}: expected {expected} bytes for {graph.source} ({header.size}-byte "
                               f"header + {count} floats), found {size} ({found})")
        handle.seek(header.size)
        values = np.empty(count, "<f4")
        if handle.readinto(values.data.cast("B")) != 4 * count:
            raise WeightsError(f"{source}: the file changed while it was read")
    failure = _first_non_finite(values, graph, source, header.size)
    if failure is not None:
        raise failure
    offset = 0
    params: RawParams = []
    for node in graph.nodes:
        arrays = {}
        for name, shape in node.layer.weight_layout(node.in_shape):
            stored = values[offset:offset + math.prod(shape)]
            if _stored_transposed(header, node, name):
                arrays[name] = np.ascontiguousarray(stored.reshape(shape[::-1]).T, np.float32)
            else:
                arrays[name] = stored.reshape(shape).astype(np.float32)
            offset += math.prod(shape)
        params.append(arrays)
    return header, params


def write_weights(path: str | Path, graph: Graph, params: RawParams, header: Header = Header()) -> None:
    """Write params in Darknet's format, atomically (tdn.files.atomic_file)."""
    with atomic_file(path, binary=True, what="weights") as handle:
        handle.write(np.array([header.major, header.minor, header.revision], "<i4").tobytes())
        handle.write(np.array([header.seen], "<u8" if header.seen_is_64bit else "<i4").tobytes())
        for node, arrays in zip(graph.nodes, params):
            for name, shape in node.layer.weight_layout(node.in_shape):
                array = np.asarray(arrays[name], "<f4")
                if array.shape != shape:
                    raise ValueError(f"layer {node.index} {name}: shape {array.shape}, expected {shape}")
                handle.write((array.T if _stored_transposed(header, node, name) else array).tobytes())


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
