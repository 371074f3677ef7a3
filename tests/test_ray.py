"""tdn.ray on a local two-CPU Ray: every image's result equals the single-process result."""

from __future__ import annotations

import numpy as np
import pytest
import ray

import tdn.ray
from tdn.network import load
from tests.batch_helpers import write_images, write_small_net


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def test_ray_results_equal_single_process(local_ray, tmp_path):
    cfg, weights = write_small_net(tmp_path)
    images = write_images(tmp_path / "images", seed=5)
    net = load(cfg, weights, "numpy")
    paths = [str(path) for path in images["good"] + images["bad"]]
    expected = {p.source: p for p in net.predict_batches(paths, batch=1, workers=0, strict=False)}
    rows = tdn.ray.classify(str(tmp_path / "images"), str(cfg), str(weights), backend="numpy",
                            batch_size=3, actors=2).take_all()
    assert sorted(row["path"] for row in rows) == sorted(expected)
    for row in rows:
        want = expected[row["path"]]
        if want.ok:
            assert row["error"] == ""
            np.testing.assert_allclose(row["probabilities"], want.probabilities, rtol=1e-5, atol=1e-7,
                                       err_msg=row["path"])
        else:
            assert row["error"] == want.error and np.isnan(row["probabilities"]).all()
