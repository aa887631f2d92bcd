"""Argument types for the catalog: derive them from Keras, check config values against them.

A type is a short string stored in ``catalog.json``:

- ``int``, ``float`` (an int is accepted), ``bool``, ``str``, ``any``;
- ``posint``: an integer >= 1 (``units``, ``filters``: Keras refuses 0 and below only
  when the layer is made, which ``validate`` without TensorFlow never does);
- ``int_or_ints``: an int or a (nested) list of ints (``kernel_size``, ``padding`` of ZeroPadding2D);
- ``activation``: an activation name, or a ``{type: ...}`` activation component;
- ``component:KIND``: a name or a ``{type: ...}`` mapping of that kind (initializers, ...);
- ``enum:a,b,c``: one of the listed strings (case-insensitive, as Keras compares them);
- ``A|B``: either; a trailing ``?`` means null is accepted too.

Derivation order (:func:`arg_type`): the argument's nested kind (``*_initializer``...),
a curated table, the docstring's first words ("Positive integer" -> int), the
default's type. Anything unclear is ``any``: a false "wrong type" error is worse
than a check that waits for ``validate --build``.

Example:
    >>> arg_type("units", REQUIRED, "Positive integer, dimensionality of the output.")
    'int'
    >>> value_error("int", "sixty-four")
    "expected an integer; received 'sixty-four' (str)"
"""

from __future__ import annotations

import re
from typing import Any

from trainctl.errors import describe
from trainctl.registry.specs import nested_kind
from trainctl.registry.signature import REQUIRED

# name -> type. Applied only when the argument's default fits it (or is None /
# absent), so e.g. ZeroPadding2D's tuple `padding` is not taken for Conv2D's enum.
CURATED: dict[str, str] = {
    "padding": "enum:valid,same,causal",
    "data_format": "enum:channels_last,channels_first",
    "reduction": "enum:sum_over_batch_size,sum,none,mean,mean_with_sample_weight",
    "mode": "enum:auto,min,max",
    "kernel_size": "int_or_ints", "strides": "int_or_ints", "pool_size": "int_or_ints",
    "dilation_rate": "int_or_ints", "target_shape": "int_or_ints", "dims": "int_or_ints",
    "axis": "int_or_ints", "size": "int_or_ints", "cropping": "int_or_ints",
    "units": "posint", "filters": "posint", "num_heads": "posint", "key_dim": "posint",
    "output_dim": "posint", "input_dim": "posint", "patience": "int", "cooldown": "int", "seed": "int",
    "n": "int",
    "rate": "float", "dropout": "float", "recurrent_dropout": "float", "min_delta": "float",
    "factor": "float", "min_lr": "float", "label_smoothing": "float", "momentum": "float",
    "epsilon": "float", "l1": "float", "l2": "float", "initial_learning_rate": "float",
    "decay_steps": "float", "decay_rate": "float", "baseline": "float",
    "from_logits": "bool", "use_bias": "bool", "return_sequences": "bool",
    "return_state": "bool", "save_best_only": "bool", "save_weights_only": "bool",
    "staircase": "bool", "restore_best_weights": "bool", "trainable": "bool",
    # Keras compares these with 'epoch'/'batch' or takes them as a number of batches;
    # anything else fails only inside fit (TensorBoard: "unsupported operand ... '%'")
    "update_freq": "enum:epoch,batch|int", "save_freq": "enum:epoch|int",
    "monitor": "str", "filepath": "str", "log_dir": "str", "filename": "str", "name": "str",
    "learning_rate": "float|component:schedule",
    "dtype": "any",  # a dtype name, a DTypePolicy or its config
}

# Words that, in an argument's description, mean "not only the type the default suggests".
_OTHER_TYPES = {
    "float": r"\b(tuple|list|string|str|callable|dict|tensor|array|instance)\b",
    "bool": r"\b(int|integer|string|str|callable|list|tuple|float)\b",
    "str": r"\b(int|integer|float|number|tuple|list|callable|dict|instance|bool|boolean"
           r"|tensor|function)\b",
}
# First words of a docstring description -> type.
_DOC_PATTERNS = (
    (r"^(a |an )?(optional )?(positive |non-negative |nonnegative |strictly positive )?"
     r"(integer|int)s?\b", "int"),
    (r"^(a |an )?(optional )?(positive |non-negative |scalar |python )?"
     r"(float|floating point|number)\b", "float"),
    (r"^(a |an )?(optional )?(boolean|bool)\b", "bool"),
    (r"^(a |an )?(optional )?(string|str)\b", "str"),
)


def arg_type(name: str, default: Any, doc: str | None) -> str:
    """The catalog type of one argument.

    Args:
        name: the argument name.
        default: its default (``signature.REQUIRED`` when it has none).
        doc: its description from the docstring's Args section, if any.

    Example:
        >>> arg_type("use_bias", True, None)
        'bool'
    """
    base = _base_type(name, default, (doc or "").strip())
    nullable = default is None or bool(re.search(r"\bNone\b", doc or ""))
    if base == "any" or not nullable:
        return base
    return base + "?"


def _base_type(name: str, default: Any, doc: str) -> str:
    kind = nested_kind(name)
    if kind == "activation":
        return "activation"
    if kind is not None and name != "learning_rate":
        return f"component:{kind}"
    curated = CURATED.get(name)
    if curated and _fits_default(curated, default):
        return curated
    head = re.split(r"[.;:]\s", doc.lower(), maxsplit=1)[0]
    for pattern, found in _DOC_PATTERNS:
        if re.match(pattern, head):
            if found == "int" and re.search(r"\b(tuple|list)\b", head):
                return "int_or_ints"
            if " or " in head or "tuple" in head or "list" in head:
                return "any"  # "float or tuple", "string or callable": too loose to check
            return found if _fits_default(found, default) else "any"
    return _default_type(default, doc.lower())


def _default_type(default: Any, doc: str) -> str:
    if isinstance(default, bool):
        found = "bool"
    elif isinstance(default, (int, float)):
        # An int default often stands for a number (min_delta=0): say "a number".
        found = "float"
    elif isinstance(default, str):
        found = "str"
    elif isinstance(default, (tuple, list)) and default and _is_ints(default):
        return "int_or_ints"
    else:
        return "any"  # None, no default, or an object: nothing to go on
    return "any" if re.search(_OTHER_TYPES[found], doc) else found


def _fits_default(type_: str, default: Any) -> bool:
    if default is REQUIRED or default is None:
        return True
    return value_error(type_, default) is None


def _is_ints(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_is_ints(v) for v in value)
    return isinstance(value, int) and not isinstance(value, bool)


_EXPECTED = {"int": "an integer", "posint": "a positive integer", "float": "a number", "bool": "true or false",
             "str": "a string", "int_or_ints": "an integer or a list of integers",
             "activation": "an activation name such as 'relu'"}


def expected(type_: str) -> str:
    """Human words for a type: ``"an integer or null"``."""
    nullable = type_.endswith("?")
    parts = []
    for alt in type_.rstrip("?").split("|"):
        if alt.startswith("enum:"):
            parts.append("one of " + ", ".join(repr(v) for v in alt[5:].split(",")))
        elif alt.startswith("component:"):
            parts.append(f"a {alt[10:]} name or a mapping with 'type'")
        else:
            parts.append(_EXPECTED.get(alt, "any value"))
    return " or ".join(parts + (["null"] if nullable else []))


def _fits(alt: str, value: Any) -> bool:
    if alt == "any":
        return True
    if alt == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if alt == "posint":
        return isinstance(value, int) and not isinstance(value, bool) and value >= 1
    if alt == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if alt == "bool":
        return isinstance(value, bool)
    if alt == "str":
        return isinstance(value, str)
    if alt == "int_or_ints":
        return _is_ints(value)
    if alt.startswith("enum:"):
        return isinstance(value, str) and value.lower() in alt[5:].split(",")
    # activation / component: a name or a {type: ...} mapping; names checked by the caller.
    return isinstance(value, str) or (isinstance(value, dict) and "type" in value)


def value_error(type_: str, value: Any) -> str | None:
    """The message for a value that does not fit ``type_``, or None when it fits.

    Names inside activation/component values are not checked here
    (see :func:`trainctl.registry.catalog.check_component`).

    Example:
        >>> value_error("int_or_ints", 2.5)
        'expected an integer or a list of integers; received 2.5 (float)'
    """
    if value is None and type_.endswith("?"):
        return None
    if any(_fits(alt, value) for alt in type_.rstrip("?").split("|")):
        return None
    return f"expected {expected(type_)}; received {describe(value)}"


def component_kind(type_: str, value: Any) -> str | None:
    """The kind whose names ``value`` must be checked against, if any.

    Example:
        >>> component_kind("float|component:schedule", {"type": "ExponentialDecay"})
        'schedule'
    """
    if not isinstance(value, (str, dict)):
        return None
    for alt in type_.rstrip("?").split("|"):
        if alt == "activation":
            return "activation"
        if alt.startswith("component:"):
            return alt[10:]
    return None


def doc_args(doc: str | None) -> dict[str, str]:
    """Argument descriptions from a Google-style docstring's ``Args:`` section.

    Example:
        >>> doc_args("X.\\n\\n    Args:\\n        units: Positive integer.\\n")
        {'units': 'Positive integer.'}
    """
    found: dict[str, str] = {}
    lines = (doc or "").expandtabs().splitlines()
    indent = None
    current = None
    in_args = False
    for line in lines:
        stripped = line.strip()
        if stripped in ("Args:", "Arguments:"):
            in_args, indent = True, None
            continue
        if not in_args or not stripped:
            continue
        depth = len(line) - len(line.lstrip())
        if indent is None:
            indent = depth
        if depth < indent:  # "Returns:", "Example:" or the end of the section
            in_args = False
            continue
        match = re.match(r"(\w+)\s*(\([^)]*\))?:\s*(.*)", stripped)
        if depth == indent and match:
            # The first description wins (a subclass's doc comes before its base's).
            current = match.group(1) if match.group(1) not in found else None
            if current:
                found[current] = match.group(3)
        elif current is not None:
            found[current] += " " + stripped
    return found
