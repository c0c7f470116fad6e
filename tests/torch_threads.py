"""A fixture that runs a test module's torch work on one thread.

The models in these tests are tiny. Several threads add no speed to them, and on a
busy machine the threads of each parallel operation wait for one another far longer
than the work itself takes.
"""

import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
