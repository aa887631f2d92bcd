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
    return schema


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
    return json.dumps(editor_schema(), indent=2) + "\n"
