"""Component registries: names -> classes/functions, and building them from config.

Importing this package never imports TensorFlow; Keras built-ins are loaded on
the first lookup in a Keras-backed kind.

Example:
    >>> from trainctl.registry import register
    >>> @register("callback")
    ... class LossHistory: ...
"""

from trainctl.registry.registry import (
    KERAS_KINDS,
    KINDS,
    REGISTRIES,
    DuplicateNameError,
    Entry,
    Registry,
    get_registry,
    import_attr,
    nested_kind,
    register,
    split_spec,
)
from trainctl.registry.signature import ParamInfo, accepted_params

__all__ = [
    "KERAS_KINDS", "KINDS", "REGISTRIES", "DuplicateNameError", "Entry", "ParamInfo",
    "Registry", "accepted_params", "get_registry", "import_attr", "nested_kind",
    "register", "split_spec",
]
