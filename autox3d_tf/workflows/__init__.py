"""The package's workflows: the orchestration behind each ``autox3d`` command, one module each.

- ``train``: train or fine-tune a model (`autox3d_tf.training.train`) from flags,
- ``search``: the probabilistic (supernet) search, :func:`~autox3d_tf.workflows.search.probabilistic_search`,
- ``entropy_search``: the training-free entropy search, :func:`~autox3d_tf.workflows.entropy_search.search_and_save`,
- ``evaluate``: multi-view evaluation of a run or a model,
- ``export``: SavedModel / TFLite export of a run or a zoo model,
- ``bench``: latency against the PyTorch reference (`autox3d bench`),
- ``demo``: the whole flow on the synthetic dataset (`autox3d demo`).

Each command module keeps its flags in a private `flagset.FlagSet` and exposes ``main(argv)``.
"""
