"""The PyTorch ALS engines. Importing this package asks torch to back its large CPU tensors with
transparent huge pages (torch's THP_MEM_ALLOC_ENABLE, read at its first allocation; a value already
in the environment wins): the solver's gathers and the grouping's permutations range over gigabytes,
and with 4 KB pages their TLB misses made the fit's time per rating grow with the data set."""

import os

os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
