"""The training loop: Darknet's train_classifier, one weight update per cfg `batch`.

Each update draws `batch` images with replacement (Darknet's get_random_paths), augments
them, and runs `subdivisions` forward/backward passes of batch/subdivisions images, each
advancing the `seen` counter; the gradients of the summed cross-entropy add up, and SGD
applies them divided by `batch`, with momentum and with decay on the weights only, at the
policy's learning rate (convolutional_layer.c update_convolutional_layer). The random numbers
of update k come from (seed, k), so a resumed run repeats an uninterrupted one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from tdn.errors import TdnError
from tdn.graph import Graph
from tdn.weights import RawParams
from torch.nn import functional

from tdn_torch.train.augment import augment
from tdn_torch.train.checkpoint import Checkpoint
from tdn_torch.train.data import Dataset
from tdn_torch.train.model import TrainableNetwork
from tdn_torch.train.options import TrainOptions
from tdn_torch.train.schedule import learning_rate


@dataclass(frozen=True)
class Progress:
    updates: int
    seen: int
    loss: float  # mean cross-entropy per image of this update
    learning_rate: float
    images_per_second: float


@dataclass
class Run:
    graph: Graph
    cfg_text: str
    options: TrainOptions
    dataset: Dataset
    params: RawParams
    seed: int
    device: torch.device
    head: int  # the softmax layer's index: the loss reads its input
    loss_scale: float = 1.0  # 1 + a following [cost] layer's scale (Darknet adds its delta)
    frozen_below: int = 0


class Trainer:
    def __init__(self, run: Run, resume: Checkpoint | None = None):
        self.run = run
        self.updates, self.seen = 0, 0
        params = run.params
        if resume is not None:
            if resume.cfg_text != run.cfg_text:
                raise TdnError("the checkpoint was written for another cfg (or other --classes)")
            params = [{name: tensor.numpy() for name, tensor in arrays.items()} for arrays in resume.params]
            self.updates, self.seen = resume.updates, resume.seen
        self.network = TrainableNetwork(run.graph, params, run.device, run.frozen_below)
        decayed, plain = self.network.parameter_groups()
        if not decayed and not plain:
            raise TdnError("nothing to train: every layer is frozen")
        o = run.options
        self.optimizer = torch.optim.SGD([{"params": decayed, "weight_decay": o.decay},
                                          {"params": plain, "weight_decay": 0.0}],
                                         lr=o.learning_rate, momentum=o.momentum)
        if resume is not None:
            self.optimizer.load_state_dict(resume.optimizer)

    def checkpoint(self) -> Checkpoint:
        return Checkpoint(self.run.cfg_text, self.updates, self.seen, self.run.seed,
                          self.network.params, self.optimizer.state_dict())

    def _batch(self, indices: np.ndarray, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        data = self.run.dataset
        images = np.stack([augment(data.image(int(i)), self.run.options, rng) for i in indices])
        labels = np.array([data.samples[int(i)][1] for i in indices])
        return (torch.from_numpy(images).to(self.run.device),
                torch.from_numpy(labels).to(self.run.device))

    def update(self) -> Progress:
        """One weight update (Darknet: one `batch`, `subdivisions` passes)."""
        start = time.perf_counter()
        o, number = self.run.options, self.updates + 1
        rng = np.random.default_rng((self.run.seed, number))
        generator = torch.Generator(self.run.device).manual_seed(int(rng.integers(2 ** 63)))
        indices = rng.integers(len(self.run.dataset.samples), size=o.mini_batch * o.subdivisions)
        total = 0.0
        for part in np.split(indices, o.subdivisions):
            x, labels = self._batch(part, rng)
            logits = self.network.forward(x, generator, self.run.head).flatten(1)
            loss = functional.cross_entropy(logits, labels, reduction="sum")
            (loss * (self.run.loss_scale / len(indices))).backward()
            total += loss.item()
            self.seen += len(part)
        mean_loss = total / len(indices)
        if not math.isfinite(mean_loss):
            raise TdnError(f"the loss became {mean_loss} at update {number}: lower learning_rate in the cfg")
        rate = learning_rate(o, number, rng)
        for group in self.optimizer.param_groups:
            group["lr"] = rate
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.updates = number
        return Progress(number, self.seen, mean_loss, rate, len(indices) / (time.perf_counter() - start))

    def train(self, on_update: Callable[[Progress], None] = lambda progress: None,
              checkpoint: Callable[[Trainer], None] = lambda trainer: None, every: int = 0,
              should_stop: Callable[[], bool] = lambda: False) -> bool:
        """Update until max_batches; True if it got there, False if should_stop() ended it
        first. `checkpoint(self)` runs every `every` updates and when stopped early."""
        while self.updates < self.run.options.max_batches:
            on_update(self.update())
            if should_stop():
                checkpoint(self)
                return False
            if every and self.updates % every == 0:
                checkpoint(self)
        return True

    def raw_params(self) -> RawParams:
        return self.network.raw_params()
