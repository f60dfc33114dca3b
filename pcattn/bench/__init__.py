"""The benchmarks behind ``pcattn bench``: ``suite`` (ops, blocks, large clouds), ``train``
(whole models' training steps), ``budget`` (configs under one time budget), ``concurrent``
(trainings side by side), ``attention`` (the efficient families) and ``scale`` (serialized
against kNN attention as N grows); ``memory`` measures peak memory for all of them."""
