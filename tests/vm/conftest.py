"""The VM tier: real QEMU machines booted from the mailspec image (see vmtests/)."""

import pytest
from needs import need_root, need_tool


@pytest.fixture(scope="session", autouse=True)
def vm_tools():
    """The image build needs root and mmdebstrap; in CI a missing one fails, never skips."""
    need_root()
    for tool in ("qemu-system-x86_64", "qemu-img", "mmdebstrap", "mke2fs"):
        need_tool(tool)
