"""Which kernel variant each convolution runs with: one of conv.cu's (tiling.CONV_VARIANTS), or in
fp16, where it applies, one of conv_pipelined.cu's (pipelined.VARIANTS).

A tuning table, written by `tdn tune --backend cuda` on one GPU, holds for each convolution shape
and precision the time of every variant and the fastest one. The plan reads the tables for the GPU
it runs on: those shipped in the package (backends/cuda/tuned/*.json, measured on lent machines),
then the user's (tuned_dir()), which win. A shape no table holds gets `rule_choice`, the
performance model's rule. Tables measured in interpret mode are marked `interpreted`: they are
read only by the interpreter (whose device name no GPU has) and never shipped.

Format (FORMAT 1): {"format": 1, "gpu": NAME, "interpreted": bool, "created": ISO time,
"shapes": {KEY: {"best": VARIANT, "microseconds": {VARIANT: float, ...}}}}, KEY from shape_key().
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import TypeAlias

from tdn.backends.cuda import pipelined
from tdn.backends.cuda.pipelined import PipelinedVariant
from tdn.backends.cuda.tiling import CONV_VARIANTS, SM_COUNT, ConvGeometry, ConvVariant, round_up

from tdn.errors import TdnError

FORMAT = 1

Variant: TypeAlias = ConvVariant | PipelinedVariant
# Every variant of both kernels by name (the names are distinct), as tables name them.
ALL_VARIANTS: dict[str, Variant] = {**CONV_VARIANTS, **pipelined.VARIANTS}


class TuningError(TdnError):
    """A tuning table that cannot be read."""


@dataclass(frozen=True)
class Table:
    gpu: str
    interpreted: bool
    created: str
    shapes: Mapping[str, Mapping[str, float]]  # key -> variant -> microseconds

    def best(self) -> dict[str, str]:
        return {key: min(times, key=lambda name: times[name]) for key, times in self.shapes.items()}


def shape_key(geo: ConvGeometry, precision: str) -> str:
    """What a variant's speed depends on: everything of the geometry but the activation."""
    return (f"{precision} n{geo.batch} c{geo.channels} {geo.height}x{geo.width} f{geo.filters} "
            f"k{geo.size} s{geo.stride} p{geo.padding} g{geo.groups}")


def useful_fraction(geo: ConvGeometry) -> float:
    """The share of a variant's grid that computes outputs, not padding of partial tiles."""
    variant = geo.variant
    return geo.m_group * geo.pixels / (geo.m_pad * round_up(geo.pixels, variant.tile_n))


def candidates(geo: ConvGeometry, precision: str) -> dict[str, Variant]:
    """The variants that can compute this convolution in this precision: conv.cu's always, and in
    fp16 conv_pipelined.cu's where its channel rule holds (pipelined.unsupported_reason)."""
    if precision == "fp16" and pipelined.unsupported_reason(geo) is None:
        return dict(ALL_VARIANTS)
    return dict(CONV_VARIANTS)


def rule_choice(geo: ConvGeometry, precision: str = "fp32") -> Variant:
    """The variant without a measurement. In fp16 where it applies, conv_pipelined.cu's rule: the
    model's batch-64/256 fp16 rows are compute-bound at several hundred TFLOPS, which needs global
    latency hidden behind the mma work (cp.async stages) and fragments without conversions
    (ldmatrix of fp16 tiles), neither of which conv.cu has. Otherwise conv.cu's rule."""
    if precision == "fp16" and pipelined.unsupported_reason(geo) is None:
        return pipelined.rule_choice(geo)
    return conv_rule_choice(geo)


def conv_rule_choice(geo: ConvGeometry) -> ConvVariant:
    """conv.cu's variant without a measurement: the most useful work per SM-wave, i.e. the useful
    fraction of the grid times the share of the GPU's SMs the grid can occupy (min(1, blocks /
    SM_COUNT)); ties go to the larger tile, which stages fewer bytes per FLOP (the performance
    model's memory rows). So a 7x7 map with 1024 filters at batch 1 (16 blocks of m64n64) gets the
    narrow m32n16k16 (128 blocks), and a large layer at batch 256 the big m128n64k32."""
    def score(variant: ConvVariant) -> tuple[float, int]:
        shaped = replace(geo, variant=variant)
        blocks = shaped.grid[0] * shaped.grid[1] * shaped.grid[2]
        return round(useful_fraction(shaped) * min(1.0, blocks / SM_COUNT), 6), variant.tile_m * variant.tile_n

    return max(CONV_VARIANTS.values(), key=score)


def tuned_dir() -> Path:
    """The user's tables: $TDN_TUNED_DIR, else $XDG_CACHE_HOME/tdn/tuned, else ~/.cache/tdn/tuned."""
    if configured := os.environ.get("TDN_TUNED_DIR"):
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tdn" / "tuned"


def table_filename(gpu: str) -> str:
    """'NVIDIA H200' -> 'nvidia-h200.json'."""
    return re.sub(r"[^a-z0-9]+", "-", gpu.lower()).strip("-") + ".json"


def read_table(path: Path) -> Table:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as error:
        raise TuningError(f"{path}: cannot read the tuning table: {error}") from None
    except json.JSONDecodeError as error:
        raise TuningError(f"{path}: line {error.lineno}: not JSON: {error.msg}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise TuningError(f"{path}: expected a tuning table of format {FORMAT}")
    gpu, interpreted, shapes = data.get("gpu"), data.get("interpreted"), data.get("shapes")
    if not isinstance(gpu, str) or not isinstance(interpreted, bool) or not isinstance(shapes, dict):
        raise TuningError(f"{path}: expected \"gpu\" (text), \"interpreted\" (true/false) and \"shapes\"")
    for key, entry in shapes.items():
        times = entry.get("microseconds") if isinstance(entry, dict) else None
        if (not isinstance(times, dict) or not times or any(name not in ALL_VARIANTS for name in times)
                or not all(isinstance(t, (int, float)) and t > 0 for t in times.values())):
            raise TuningError(f"{path}: shape {key!r}: expected positive microseconds for known variants "
                              f"({', '.join(ALL_VARIANTS)})")
    return Table(gpu, interpreted, str(data.get("created", "")),
                 {key: dict(entry["microseconds"]) for key, entry in shapes.items()})


def write_table(table: Table, path: Path) -> None:
    """Atomically: a reader sees the old table or the whole new one."""
    best = table.best()
    data = {"format": FORMAT, "gpu": table.gpu, "interpreted": table.interpreted, "created": table.created,
            "shapes": {key: {"best": best[key], "microseconds": dict(times)}
                       for key, times in sorted(table.shapes.items())}}
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", delete=False) as file:
        json.dump(data, file, indent=1)
        file.write("\n")
    os.replace(file.name, path)


def shipped_tables() -> list[Table]:
    """The tables in the package; an interpreted one there is a packaging error."""
    folder = resources.files("tdn.backends.cuda").joinpath("tuned")
    tables = []
    if folder.is_dir():
        for item in sorted(folder.iterdir(), key=lambda entry: entry.name):
            if item.name.endswith(".json"):
                with resources.as_file(item) as path:
                    table = read_table(path)
                if table.interpreted:
                    raise TuningError(f"{item.name}: an interpreted table is shipped; ship only GPU measurements")
                tables.append(table)
    return tables


def best_variants(gpu: str) -> dict[str, str]:
    """shape key -> fastest variant on this GPU: the shipped tables, then the user's over them."""
    best: dict[str, str] = {}
    user = tuned_dir()
    user_tables = [read_table(path) for path in sorted(user.glob("*.json"))] if user.is_dir() else []
    for table in [*shipped_tables(), *user_tables]:
        if table.gpu == gpu:
            best.update(table.best())
    return best


def chooser(best: Mapping[str, str], precision: str) -> Callable[[ConvGeometry], Variant]:
    """The plan's choice for each convolution: the table's where it holds the shape (and names a
    variant that can compute it), else the rule's."""
    def choose(geo: ConvGeometry) -> Variant:
        name = best.get(shape_key(geo, precision))
        variants = candidates(geo, precision)
        return variants[name] if name in variants else rule_choice(geo, precision)

    return choose
