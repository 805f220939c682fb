"""Which packages a file may name classes from without ``allow_packaged_code``."""

from __future__ import annotations

__all__ = ["allowed_packages"]


def allowed_packages() -> set[str]:
    """Top-level packages whose classes files may name without ``allow_packaged_code``.

    ``modularml``, the packages of loaded ModularML plugins, the packages that registered
    components come from (a plugin that registers a class vouches for its package), and the
    framework packages of the installed backends.
    """
    from modularml.plugins.manager import get_plugin_manager
    from modularml.plugins.registry import KINDS

    manager = get_plugin_manager()
    allowed = {"modularml"}
    for record in manager.plugins():
        if record.status == "loaded" and record.module:
            allowed.add(record.module.split(":")[0].split(".")[0])
    for info in manager.backends().values():
        if info.framework_module:
            allowed.add(info.framework_module.split(".")[0])
    for kind in KINDS[1:]:
        for found in manager.registry(kind).entries():
            module = found.obj.partition(":")[0] if isinstance(found.obj, str) else getattr(found.obj, "__module__", "")
            if isinstance(module, str) and module:
                allowed.add(module.split(".")[0])
    return allowed
