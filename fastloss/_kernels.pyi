# The compiled bridge (_kernels.pyx) to the type checker: every name is Any. The bridge reads raw arrays and
# option codes for the Python layer, which alone takes user input and gives the public functions their types;
# a name-by-name stub would have to follow every new kernel for no check a user would see.
from typing import Any

def __getattr__(name: str) -> Any: ...
