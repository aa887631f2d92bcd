"""trainctl: a YAML-driven experiment runner for Keras 3.

Plug-in modules register their classes with :func:`register`::

    import keras
    import trainctl

    @trainctl.register("layer")
    class MyDense(keras.layers.Layer):
        ...
"""

import time as _time

_before = _time.perf_counter()
# Standard-library modules that click needs (so every command imports them) and that
# ``import tensorflow`` imports too: a plain Keras script pays for them as well, so
# run.json's timings count them as ``import``, not as trainctl's own start-up
# (trainctl.run.timing.TENSORFLOW_IMPORTS has the rest; tests/test_timing.py checks
# that TensorFlow imports every one).
SHARED_IMPORTS = ("copy", "dataclasses", "datetime", "gettext", "inspect", "locale",
                  "threading", "typing", "uuid")
for _name in SHARED_IMPORTS:
    __import__(_name)
SHARED_IMPORT_SECONDS = _time.perf_counter() - _before

__version__ = "0.1.0"

# When trainctl's own imports began: run.json ``timings.startup`` counts them (click,
# the config schema, ...) from here.
STARTED = _time.perf_counter()


def register(kind, obj=None, *, name=None):
    """Register a user class or function under ``kind`` (layer, loss, metric, ...).

    Args:
        kind: one of the registry kinds (``trainctl components`` lists them).
        obj: the class or function; omit to use as a decorator.
        name: the name configs use (default: ``obj.__name__``).

    Example:
        >>> @trainctl.register("loss")
        ... def my_mse(y_true, y_pred): ...
    """
    from trainctl.registry import register as _register

    return _register(kind, obj, name=name)
