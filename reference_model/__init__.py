"""CoTRR-Pro, the bundled reference model, and its synthetic multimodal scenarios.

Registered as the ``reference`` plugin (entry point ``reference_model.plugin:make_model``),
found exactly like an outside plugin. Modules:

- :mod:`~reference_model.config` -- ``ModelConfig`` / ``TrainConfig`` and the presets
- :mod:`~reference_model.model` -- the network (``CoTRRNet``)
- :mod:`~reference_model.losses` -- ListMLE, focal, calibration, InfoNCE
- :mod:`~reference_model.train` -- the training loop
- :mod:`~reference_model.synthetic` -- data generator and scenarios
- :mod:`~reference_model.baseline` -- the "V1.0" cosine-similarity baseline
- :mod:`~reference_model.plugin` -- the plugin (``make_model``, ``CoTRRPro``)

See ``docs/REFERENCE_MODEL.md``. Importing this package does not import torch.
"""

__all__ = ["config", "model", "losses", "train", "synthetic", "baseline", "plugin"]
