"""The [net] section's training options, read with Darknet's defaults (parser.c parse_net_options).

Every option Darknet's `classifier train` reads is either honoured here or refused with the
file and line; options that belong to Darknet's detector training are refused when set.
"""

from __future__ import annotations

from dataclasses import dataclass

from tdn.cfg import Section
from tdn.errors import CfgError

POLICIES = ("constant", "step", "steps", "exp", "poly", "random", "sigmoid")

# Options that change training in ways tdn train does not implement, with why.
REFUSED = {
    "adam": "Adam is not implemented (tdn train runs Darknet's SGD with momentum)",
    "time_steps": "recurrent training (time_steps) is not implemented",
    "clip": "gradient clipping (clip) is not implemented",
    "mixup": "mixup is detector-training augmentation (AlexeyAB); not implemented",
    "cutmix": "cutmix is detector-training augmentation (AlexeyAB); not implemented",
    "mosaic": "mosaic is detector-training augmentation (AlexeyAB); not implemented",
    "blur": "blur is detector-training augmentation (AlexeyAB); not implemented",
    "label_smooth_eps": "label smoothing is not implemented",
    "letter_box": "letter_box training is detector augmentation; not implemented",
}
NEUTRAL = {"time_steps": "1"}


def _number_list(section: Section, key: str, cast):
    option = section.options.get(key)
    if option is None:
        return ()
    option.used = True
    try:
        return tuple(cast(part) for part in option.value.split(","))
    except ValueError:
        raise CfgError(f"{section.where(option.line)}: [{section.header}] option '{key}': expected "
                       f"comma-separated numbers, got '{option.value}'") from None


@dataclass(frozen=True)
class TrainOptions:
    batch: int  # images per weight update (the cfg's batch)
    subdivisions: int  # forward/backward passes per update, of batch // subdivisions images each
    learning_rate: float
    momentum: float
    decay: float
    policy: str
    power: float
    step: int
    scale: float
    steps: tuple[int, ...]
    scales: tuple[float, ...]
    gamma: float
    burn_in: int
    max_batches: int
    width: int
    height: int
    min_size: int  # the shorter side is scaled to a random size in [min_size, max_size]
    max_size: int
    angle: float
    aspect: float
    hue: float
    saturation: float
    exposure: float
    flip: bool
    center: bool

    @property
    def mini_batch(self) -> int:
        return self.batch // self.subdivisions

    @classmethod
    def from_section(cls, net: Section) -> TrainOptions:
        for key, reason in REFUSED.items():
            option = net.options.get(key)
            if option is not None and option.value not in ("0", NEUTRAL.get(key, "0")):
                raise CfgError(f"{net.where(option.line)}: [{net.header}] option '{key}': {reason}")
        batch = net.int("batch", 1, minimum=1)
        subdivisions = net.int("subdivisions", 1, minimum=1)
        if batch < subdivisions:
            raise CfgError(f"{net.where()}: [{net.header}] batch={batch} is smaller than "
                           f"subdivisions={subdivisions} (each pass gets batch/subdivisions images)")
        width, height = net.int("width", 0, minimum=1), net.int("height", 0, minimum=1)
        max_crop = net.int("max_crop", width * 2, minimum=1)
        min_crop = net.int("min_crop", width, minimum=1)
        # classifier.c: args.min = min_ratio * w, args.max = max_ratio * w (C truncation).
        min_ratio = net.float("min_ratio", min_crop / width, positive=True)
        max_ratio = net.float("max_ratio", max_crop / width, positive=True)
        policy = net.choice("policy", "constant", POLICIES)
        steps = _number_list(net, "steps", int)
        scales = _number_list(net, "scales", float)
        if policy == "steps" and (not steps or len(steps) != len(scales)):
            raise CfgError(f"{net.where()}: [{net.header}] policy=steps needs 'steps' and 'scales' "
                           f"with as many values each")
        options = cls(
            batch=batch, subdivisions=subdivisions,
            learning_rate=net.float("learning_rate", 0.001),
            momentum=net.float("momentum", 0.9),
            decay=net.float("decay", 0.0001),
            policy=policy,
            power=net.float("power", 4),
            step=net.int("step", 1, minimum=1),
            scale=net.float("scale", 1),
            steps=steps, scales=scales,
            gamma=net.float("gamma", 1),
            burn_in=net.int("burn_in", 0, minimum=0),
            max_batches=net.int("max_batches", 0, minimum=0),
            width=width, height=height,
            min_size=int(min_ratio * width), max_size=int(max_ratio * width),
            angle=net.float("angle", 0),
            aspect=net.float("aspect", 1, positive=True),
            hue=net.float("hue", 0),
            saturation=net.float("saturation", 1, positive=True),
            exposure=net.float("exposure", 1, positive=True),
            flip=net.flag("flip", True),
            center=net.flag("center", False),
        )
        if options.min_size < 1:
            raise CfgError(f"{net.where()}: [{net.header}] min_crop/min_ratio give a crop size below 1 pixel")
        return options
