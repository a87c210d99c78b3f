import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


@pytest.fixture
def one_torch_thread():
    """One torch thread for the test (as `train.torch_threads=1`): tiny networks run faster
    on one, and many threads crawl on a busy machine. Restores the previous count."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
