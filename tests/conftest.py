"""Shared test fixtures: devices (CUDA ones marked and skipped cleanly) and fresh random seeds.

Every run draws new random inputs; the session seed is printed in the report
header and can be replayed with ``XVF_TEST_SEED=<seed> pytest ...``.
"""

from __future__ import annotations

import os
import random
import zlib

import pytest
import torch

#: The shared development radiographs (``../shared/data/cxr-dev`` beside the repository, or
#: XVF_CXR_DEV); tests that need them skip with a reason when they are absent.
CXR_DEV = os.environ.get(
    "XVF_CXR_DEV",
    os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "cxr-dev"),
)
needs_cxr_dev = pytest.mark.skipif(
    not os.path.isdir(CXR_DEV), reason=f"development images not found at {CXR_DEV} (set XVF_CXR_DEV)"
)

SESSION_SEED = int(os.environ.get("XVF_TEST_SEED", random.SystemRandom().randrange(2**31)))


def cuda_ready() -> bool:
    from xvertfast._extension import cuda_kernels_available

    return torch.cuda.is_available() and cuda_kernels_available()


def pytest_report_header(config):
    return f"xvertfast test seed: XVF_TEST_SEED={SESSION_SEED}"


def pytest_collection_modifyitems(config, items):
    if cuda_ready():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU and the CUDA kernels (xvertfast info)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def seed(request) -> int:
    """A per-test seed derived from the session seed; also seeds torch's global generator."""
    value = (SESSION_SEED + zlib.crc32(request.node.nodeid.encode())) % 2**31
    torch.manual_seed(value)
    return value


#: Parametrisation over the devices the ops run on.
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]
