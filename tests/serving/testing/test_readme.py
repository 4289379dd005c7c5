"""The README's example of the local test servers runs as written."""

import re

import numpy as np

from tests.conftest import REPO


def test_the_readme_example_runs(unet_serving_dir):
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Serving with TF Serving: clients", 1)[1].split("\n## ", 1)[0]
    clients, servers = re.findall(r"```python\n(.*?)```", section, re.S)
    image = np.random.default_rng(0).integers(0, 256, (12, 10), np.uint8)
    namespace = {"image": image}
    exec(clients.split("\n", 1)[0], namespace)  # the import line; no TF Serving runs here
    exec(servers.replace('"DIR"', repr(str(unet_serving_dir))), namespace)
    assert namespace["outputs"]["probabilities"].shape == (1, 12, 10, 3)
    assert namespace["outputs"]["probabilities"].dtype == np.float32
