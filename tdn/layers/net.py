"""[net] / [network]: the input size. Training options are accepted here; `tdn train`
(the tdn-torch plugin) reads them."""

from __future__ import annotations

from dataclasses import dataclass

from tdn.cfg import Section
from tdn.errors import CfgError

TRAINING_OPTIONS = (
    "batch", "subdivisions", "time_steps", "notruth", "random", "adam", "B1", "B2", "eps",
    "learning_rate", "momentum", "decay", "policy", "power", "max_batches", "step", "scale",
    "steps", "scales", "gamma", "burn_in", "angle", "aspect", "saturation", "exposure", "hue",
    "max_crop", "min_crop", "max_ratio", "min_ratio", "center", "clip", "flip", "inputs",
    "label_smooth_eps", "mosaic", "letter_box", "cutmix", "mixup", "blur",
)


@dataclass(frozen=True)
class NetOptions:
    channels: int
    height: int
    width: int

    @classmethod
    def from_section(cls, section: Section) -> NetOptions:
        section.accept(*TRAINING_OPTIONS)
        for key in ("height", "width"):
            if not section.has(key):
                raise CfgError(f"{section.where()}: [{section.header}] option '{key}' is required "
                               f"(the network's input size)")
        return cls(
            channels=section.int("channels", 3, minimum=1),
            height=section.int("height", 0, minimum=1),
            width=section.int("width", 0, minimum=1),
        )
