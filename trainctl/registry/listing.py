"""What ``trainctl components`` prints: the names of each kind, one component's arguments.

Read from the catalog of Keras's components (:mod:`trainctl.registry.catalog`) and the
registries, without importing Keras.

Example:
    >>> print(format_component("layer", "Dense"))  # doctest: +ELLIPSIS
    layer Dense (Keras):
      units                 int                required
    ...
"""

from __future__ import annotations

from trainctl.registry.catalog import _kind_table, _own_names, _plugin_names, names
from trainctl.registry.registry import KINDS, REGISTRIES


def format_components(kind: str | None = None) -> str:
    """The text of ``trainctl components [KIND]``: names per kind, plug-ins marked.

    Example:
        >>> print(format_components("schedule"))  # doctest: +ELLIPSIS
        schedule (6):
          CosineDecay...
    """
    kinds = [kind] if kind else list(KINDS)
    blocks = []
    for k in kinds:
        own = _own_names(k)
        plugins = set(_plugin_names(k)) - own
        all_names = names(k)
        table = _kind_table(k)
        lines = []
        for n in all_names:
            note = " (plug-in)" if n in plugins else \
                " (trainctl)" if n in own or table.get(n, {}).get("trainctl") else ""
            if n not in plugins and "alias_of" in table.get(n, {}):
                note = f" -> {table[n]['alias_of']}"
            lines.append(f"  {n}{note}")
        blocks.append(f"{k} ({len(all_names)}):\n" + ("\n".join(lines) or "  (none)"))
    return "\n\n".join(blocks)


def nearest_component(name: str) -> str:
    """`` (did you mean layer 'Dense'?)`` over every kind's names, or ""."""
    import difflib

    every = {n: k for k in KINDS for n in names(k)}
    close = difflib.get_close_matches(name, list(every), n=1, cutoff=0.75)
    return f" (did you mean {every[close[0]]} {close[0]!r}?)" if close else ""


def kinds_of(name: str) -> list[str]:
    """The kinds that have a component called ``name`` (``Dense`` -> ``['layer']``)."""
    return [k for k in KINDS if name in names(k)]


def format_component(kind: str, name: str) -> str:
    """The text of ``trainctl components KIND NAME``: one component's arguments.

    Keras's own components list each argument with its kind, as ``trainctl validate``
    checks it (``int``, ``float?``: a float or null, ``enum:a,b``, ``component:initializer``:
    a name or ``{type: ..., args}``); a plug-in's arguments are its ``__init__``'s.

    Raises:
        ConfigError: ``name`` is not a ``kind``; lists the nearest names.

    Example:
        >>> print(format_component("layer", "Dense"))  # doctest: +ELLIPSIS
        layer Dense (Keras):
          units                  int                required
        ...
    """
    from trainctl.errors import ConfigError, did_you_mean

    known = names(kind)
    if name not in known:
        raise ConfigError(f"no {kind} {name!r}{did_you_mean(name, known)}",
                          hint=f"`trainctl components {kind}` lists them")
    entry = _kind_table(kind).get(name)
    if entry is None or name in _plugin_names(kind):
        return _plugin_component(kind, name)
    if "alias_of" in entry:
        return f"{kind} {name}: another name for {entry['alias_of']}\n\n" + \
            format_component(kind, entry["alias_of"])
    required = set(entry.get("required", []))
    args = entry.get("args", {})
    width = max([len(a) for a in args] + [10]) + 2
    lines = [f"  {a.ljust(width)}{t.ljust(19)}{'required' if a in required else ''}".rstrip()
             for a, t in args.items()]
    return f"{kind} {name} (Keras):\n" + ("\n".join(lines) or "  (no arguments)")


def _plugin_component(kind: str, name: str) -> str:
    """A registered component's arguments, from its signature (a class's ``__init__``)."""
    import inspect

    obj = REGISTRIES[kind].registered(name) if kind in REGISTRIES else None
    module = getattr(obj, "__module__", "") or ""
    who = "trainctl" if module.startswith("trainctl.") else f"plug-in from {module}"
    try:
        params = list(inspect.signature(obj).parameters.values())
    except (TypeError, ValueError):
        return f"{kind} {name} ({who}): its signature cannot be read"
    if getattr(obj, "trainctl_source", False):
        params = params[1:]  # a built-in source's SourceContext
    hidden = {"self", "path", "seed"} if kind == "dataset" else {"self"}
    lines = []
    for p in params:
        if p.name in hidden or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        default = "required" if p.default is p.empty else f"default {p.default!r}"
        lines.append(f"  {p.name.ljust(22)}{default}")
    return f"{kind} {name} ({who}):\n" + ("\n".join(lines) or "  (no arguments)")
