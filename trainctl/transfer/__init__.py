"""Models in: ``model.weights_from`` (transfer learning and fine-tuning).

- :mod:`trainctl.transfer.source`: which file the weights come from (no TensorFlow:
  ``trainctl validate`` uses it);
- :mod:`trainctl.transfer.groups`: the layers stored in a Keras 3 weights file, by name;
- :mod:`trainctl.transfer.load`: copy them into a built model, layer by layer by name.
"""
