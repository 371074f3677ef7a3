"""Scale-out with Ray Data: one long-lived actor per GPU or CPU worker.

Each actor loads the network once and keeps its backend programs (compiled kernels on a
GPU) for the life of the actor; Ray Data feeds it batches of paths and collects the
results. `import ray` below is the Ray package: absolute imports never resolve to this
module. Paths, cfg and weights must be readable on every node (a shared file system).

    import ray, tdn.ray
    ray.init()
    ds = tdn.ray.classify("photos/", "tiny.cfg", "tiny.weights", num_gpus=1)
    ds.write_parquet("results/")   # columns: path, probabilities, error
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import ray
import ray.data

from tdn.network import load
from tdn.pipeline import expand_inputs


class Classifier:
    """The callable class given to Dataset.map_batches: constructed once per actor."""

    def __init__(self, cfg: str, weights: str, backend: str = "auto", mode: str = "resize_min",
                 workers: int = 2):
        self.net = load(cfg, weights, backend)
        self.mode = mode
        self.workers = workers

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        paths = [str(path) for path in batch["path"]]
        predictions = list(self.net.predict_batches(paths, batch=len(paths), mode=self.mode,
                                                    workers=self.workers, strict=False))
        # An unreadable image keeps its row: NaN probabilities and the reason in `error`.
        missing = np.full(self.net.classes, np.nan, np.float32)
        rows = [p.probabilities if p.probabilities is not None else missing for p in predictions]
        return {
            "path": np.array(paths, dtype=object),
            "probabilities": np.stack(rows),
            "error": np.array([p.error or "" for p in predictions], dtype=object),
        }


def classify(images: str | Iterable[str] | ray.data.Dataset, cfg: str, weights: str, *,
             backend: str = "auto", mode: str = "resize_min", batch_size: int = 32,
             actors: int | None = None, num_gpus: float = 0, workers: int = 2) -> ray.data.Dataset:
    """A lazy Dataset of (path, probabilities, error) rows, one per image.

    images: a directory, glob pattern or path (or a list of them), expanded here; or a Dataset
    with a `path` column. actors: how many network copies; default one per GPU when
    num_gpus > 0 (num_gpus is per actor), else one per CPU of the cluster. Row order is
    Ray Data's: join on `path`.
    """
    if isinstance(images, ray.data.Dataset):
        dataset = images
    else:
        items = [images] if isinstance(images, str) else list(images)
        dataset = ray.data.from_items([{"path": path} for path in expand_inputs(items)])
    if actors is None:
        resources = ray.cluster_resources()
        actors = max(1, int(resources.get("GPU", 0) / num_gpus) if num_gpus else int(resources.get("CPU", 1)))
    return dataset.map_batches(
        Classifier,
        fn_constructor_kwargs={"cfg": str(cfg), "weights": str(weights), "backend": backend,
                               "mode": mode, "workers": workers},
        batch_size=batch_size, batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=actors), num_gpus=num_gpus)
