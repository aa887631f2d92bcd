"""trainctl: a YAML-driven experiment runner for Keras 3.

Plug-in modules register their classes with :func:`register`::

    import keras
    import trainctl

    @trainctl.register("layer")
    class MyDense(keras.layers.Layer):
        ...
"""

import time as _time

__version__ = "0.1.0"

# When trainctl's first module was imported: run.json ``timings.startup`` counts
# trainctl's own imports (click, the config schema, ...) from here.
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
