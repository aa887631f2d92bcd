"""The JSON Schema that ``trainctl schema`` prints: the config schema, for YAML editors.

It is :class:`~trainctl.config.schema.Experiment`'s pydantic schema with one change:
a file that ``extends:`` a base (and a base in ``configs/_base/``) is partial, its
missing keys coming from the base. ``extends`` merges mappings key by key and
replaces lists whole, so keys are optional in every mapping an ``extends`` merge
reaches, and stay required inside list items (a layer still needs its ``type``).
Unknown keys, types and enums are checked everywhere, as before. What is then
required after merging, ``trainctl validate`` checks.

Editors find the schema through each config's first line (VS Code's YAML extension,
any client of yaml-language-server)::

    # yaml-language-server: $schema=trainctl.schema.json

Example:
    >>> schema = editor_schema()
    >>> "required" in schema
    False
"""

from __future__ import annotations

import json
from typing import Any

from trainctl.config.schema import Experiment

DESCRIPTION = ("A trainctl experiment config. Keys are optional here because a config "
               "may take them from the base it `extends:`; `trainctl validate` checks the "
               "merged config.")


def editor_schema() -> dict[str, Any]:
    """The config's JSON Schema with the keys ``extends`` can supply made optional.

    Example:
        >>> editor_schema()["properties"]["fit"]
        {'$ref': '#/$defs/FitConfig', 'default': {...}}
    """
    schema = Experiment.model_json_schema()
    for name in mergeable_defs(schema):
        schema["$defs"][name].pop("required", None)
    schema.pop("required", None)  # the top level is a mapping that extends merges
    schema["description"] = DESCRIPTION
    add_layer_arguments(schema)
    return schema


def add_layer_arguments(schema: dict[str, Any]) -> None:
    """A layer item whose ``type`` is a Keras layer takes that layer's arguments only
    (``unit: 64`` and ``units: "64"`` are marked in the editor), from the same catalog
    of Keras's signatures ``trainctl validate`` checks them with. Other types (plug-ins,
    ``module:Name``, submodels) stay open."""
    from trainctl.registry.catalog import load

    spec = schema["$defs"]["LayerSpec"]
    own = spec.get("properties", {})
    rules = []
    for name, entry in sorted(load()["kinds"].get("layer", {}).items()):
        properties = {arg: argument_schema(kind) for arg, kind in entry.get("args", {}).items()}
        properties.update(own)  # type, name and inputs as trainctl takes them
        then = {"properties": properties, "additionalProperties": False}
        if entry.get("required"):
            then["required"] = list(entry["required"])
        rules.append({"if": {"properties": {"type": {"const": name}}, "required": ["type"]},
                      "then": then})
    spec["allOf"] = rules


SIMPLE = {"bool": ["boolean"], "float": ["number"], "int": ["integer"], "str": ["string"],
          "int_or_ints": ["integer", "array"]}


def argument_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of one catalog argument kind (``int?``, ``enum:a,b``, ...).

    Example:
        >>> argument_schema("int?")
        {'type': ['integer', 'null']}
    """
    optional = kind.endswith("?")
    kind = kind.rstrip("?")
    if kind == "posint":
        return {"type": ["integer", "null"] if optional else "integer", "minimum": 1}
    names: list[Any] = []  # enum values
    types: list[str] = []
    for part in kind.split("|"):
        if part.startswith("enum:"):
            names += part[5:].split(",")
        elif part.startswith("component:") or part == "activation":
            types += ["string", "object"]  # a name, or {type: ..., args}
        elif part in SIMPLE:
            types += SIMPLE[part]
        else:  # any, or a kind this does not know: no constraint rather than a wrong one
            return {}
    if optional:
        (types if types else names).append("null" if types else None)
    types = list(dict.fromkeys(types))
    typed = {"type": types[0] if len(types) == 1 else types}
    if names and types:  # 'epoch', 'batch' or an integer
        return {"anyOf": [{"enum": names}, typed]}
    return {"enum": names} if names else typed


def mergeable_defs(schema: dict[str, Any]) -> set[str]:
    """Names of the ``$defs`` used somewhere an ``extends`` merge reaches: through
    mappings only, from the top, never through a list's items.

    Args:
        schema: a pydantic JSON Schema (``$defs`` and ``$ref``).

    Example:
        >>> sorted(mergeable_defs(Experiment.model_json_schema()))[:2]
        ['CompileConfig', 'DataConfig']
    """
    defs = schema.get("$defs", {})
    merged: set[str] = set()
    seen: set[tuple[str, bool]] = set()

    def visit(node: Any, in_list: bool) -> None:
        if isinstance(node, list):
            for item in node:
                visit(item, in_list)
            return
        if not isinstance(node, dict):
            return
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            name = ref.rsplit("/", 1)[1]
            if (name, in_list) not in seen:
                seen.add((name, in_list))
                if not in_list:
                    merged.add(name)
                visit(defs.get(name), in_list)
        for key, value in node.items():
            if key != "$defs":
                # a list is replaced whole: what lies inside its items is never merged
                visit(value, in_list or key in ("items", "prefixItems"))

    visit(schema, False)
    return merged


def schema_text() -> str:
    """:func:`editor_schema` as the text ``trainctl schema`` writes (2-space JSON, newline)."""
    return readable_json(editor_schema()) + "\n"


def readable_json(value: Any, indent: int = 0, width: int = 88) -> str:
    """JSON indented by 2 spaces a level, but a list or mapping that fits on one line of
    ``width`` stays on one line (the layers' argument tables would otherwise take
    ~10,000 lines of one key each).

    Example:
        >>> print(readable_json({"a": {"type": "integer"}, "b": [1, 2]}))
        {"a": {"type": "integer"}, "b": [1, 2]}
    """
    flat = json.dumps(value)
    if len(flat) + indent <= width or not isinstance(value, (dict, list)) or not value:
        return flat
    pad = " " * (indent + 2)
    if isinstance(value, dict):
        items = [f"{pad}{json.dumps(k)}: {readable_json(v, indent + 2, width)}"
                 for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    items = [pad + readable_json(v, indent + 2, width) for v in value]
    return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"
