"""Timing every kernel variant that can compute each convolution shape of some networks (conv.cu's,
and conv_pipelined.cu's in fp16 where it applies: tuning.candidates): what `tdn tune --backend cuda`
runs. Random data: a variant's time does not depend on the values."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from tdn.backends.cuda import kernels
from tdn.backends.cuda.device import device
from tdn.backends.cuda.layout import STORAGE
from tdn.backends.cuda.pipelined import PipelinedGeometry, PipelinedVariant
from tdn.backends.cuda.tiling import ConvGeometry
from tdn.backends.cuda.tuning import Variant, candidates, shape_key

from tdn.graph import Graph

# Each measurement runs about this long on the device, whatever one launch takes, so that the whole
# zoo fits in a few minutes: short layers are repeated, long ones run only once or twice.
SECONDS_PER_MEASUREMENT = 0.02


def conv_shapes(graphs: Iterable[Graph], batches: Sequence[int], precisions: Sequence[str]
                ) -> dict[str, tuple[ConvGeometry, str]]:
    """shape key -> (geometry, precision), each distinct shape once."""
    shapes: dict[str, tuple[ConvGeometry, str]] = {}
    for graph in graphs:
        for node in graph.nodes:
            if node.kind != "convolutional":
                continue
            for batch in batches:
                geo = ConvGeometry.of(node.layer, node.in_shape, node.out_shape, batch)  # type: ignore[arg-type]
                for precision in precisions:
                    shapes.setdefault(shape_key(geo, precision), (geo, precision))
    return shapes


def time_variants(geo: ConvGeometry, precision: str, max_repeats: int) -> dict[str, float]:
    """Microseconds per launch of each variant on this shape: one launch to compile and warm, one
    timed to size the repeats, then up to max_repeats timed together."""
    rng = np.random.default_rng(0)
    dev = device()
    storage = STORAGE[precision]
    x = dev.upload(rng.standard_normal((geo.batch, geo.height, geo.width, geo.channels), np.float32), storage)
    bias = dev.upload(rng.standard_normal(geo.filters, np.float32))
    y = dev.empty((geo.batch, geo.out_h, geo.out_w, geo.filters), storage)
    weights = rng.standard_normal((geo.filters, geo.channels // geo.groups, geo.size, geo.size), np.float32)
    times = {}
    for variant in candidates(geo, precision).values():
        run = _launcher(geo, variant, precision, dev.upload, weights, (x, bias, y))
        dev.seconds_per_run(run, 1)
        once = dev.seconds_per_run(run, 1)
        repeats = max(1, min(max_repeats, int(SECONDS_PER_MEASUREMENT / max(once, 1e-9))))
        times[variant.name] = dev.seconds_per_run(run, repeats) * 1e6
    return times


def _launcher(geo: ConvGeometry, variant: Variant, precision: str, upload: Callable[..., Any],
              weights: np.ndarray, buffers: tuple[Any, Any, Any]) -> Callable[[], None]:
    """A function launching `variant` on the geometry, its weights packed and uploaded once."""
    x, bias, y = buffers
    storage = STORAGE[precision]
    if isinstance(variant, PipelinedVariant):
        pipelined_geo = PipelinedGeometry(geo, variant)
        packed = upload(pipelined_geo.pack_weights(weights), storage)
        return lambda: kernels.conv_pipelined(x, packed, bias, y, pipelined_geo)
    shaped = replace(geo, variant=variant)
    packed = upload(shaped.pack_weights(weights), storage)
    return lambda: kernels.conv(x, packed, bias, y, shaped, precision)


def measure(shapes: dict[str, tuple[ConvGeometry, str]], max_repeats: int,
            progress: Callable[[int, int, str], None] = lambda done, total, key: None) -> dict[str, dict[str, float]]:
    """shape key -> variant -> microseconds, for every shape."""
    results = {}
    for done, (key, (geo, precision)) in enumerate(shapes.items()):
        progress(done, len(shapes), key)
        results[key] = time_variants(geo, precision, max_repeats)
    return results
