"""Checkpoints: everything a run needs to continue bit for bit, written atomically.

A checkpoint holds the parameters and batch-norm statistics, the momentum buffers, the
number of updates done and images seen, and the cfg text it was trained with. The random
numbers of each update come from (seed, update number), so no generator state is stored.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from tdn.errors import TdnError


@dataclass
class Checkpoint:
    cfg_text: str
    updates: int
    seen: int
    seed: int
    params: list[dict[str, torch.Tensor]]
    optimizer: dict

    def save(self, path: str | Path) -> None:
        path = Path(path)
        state = {"cfg_text": self.cfg_text, "updates": self.updates, "seen": self.seen, "seed": self.seed,
                 "params": [{name: tensor.detach().to("cpu").clone() for name, tensor in arrays.items()}
                            for arrays in self.params],
                 "optimizer": self.optimizer}
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=path.name, suffix=".tmp", delete=False) as handle:
            torch.save(state, handle)
        os.replace(handle.name, path)

    @classmethod
    def load(cls, path: str | Path) -> Checkpoint:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            return cls(state["cfg_text"], int(state["updates"]), int(state["seen"]), int(state["seed"]),
                       state["params"], state["optimizer"])
        except FileNotFoundError:
            raise TdnError(f"{path}: no such checkpoint") from None
        except Exception as error:  # torch raises many kinds for a file that is not its own
            raise TdnError(f"{path}: not a tdn train checkpoint ({type(error).__name__})") from None
