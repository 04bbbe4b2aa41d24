"""Every public namespace's ``__all__`` equals what it really exports, and star-imports work."""

from __future__ import annotations

import importlib
import pkgutil
import types

import pytest

import nndoctor

PUBLIC = sorted(
    {"nndoctor"}
    | {
        m.name
        for m in pkgutil.walk_packages(nndoctor.__path__, "nndoctor.")
        if not any(part.startswith("_") for part in m.name.split("."))
    }
)


@pytest.mark.parametrize("name", PUBLIC)
def test_all_is_exported(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    # the order is enforced by ruff (RUF022, isort-style: constants, classes, functions)
    assert len(set(exported)) == len(exported), f"{name}.__all__ has duplicates"
    for attr in exported:
        assert hasattr(module, attr), f"{name}.__all__ names {attr!r}, which is not exported"


@pytest.mark.parametrize(
    "name", [n for n in PUBLIC if hasattr(importlib.import_module(n), "__path__")]
)
def test_package_all_matches_public_names(name: str) -> None:
    """A package's public names of its own (not typing helpers it imports) are its ``__all__``."""
    module = importlib.import_module(name)
    public = {
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_")
        and not isinstance(value, types.ModuleType)
        and attr not in {"annotations", "TYPE_CHECKING"}
        and str(getattr(value, "__module__", "nndoctor")).startswith("nndoctor")
    }
    missing = public - {"__version__"} - set(module.__all__)
    assert not missing, f"{name} exports {sorted(missing)} without listing them in __all__"


@pytest.mark.parametrize("name", PUBLIC)
def test_star_import(name: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from {name} import *", namespace)
    module = importlib.import_module(name)
    for attr in module.__all__:
        assert attr in namespace


def test_version_matches_metadata() -> None:
    from importlib.metadata import version

    assert nndoctor.__version__ == version("nndoctor")


def test_import_is_light() -> None:
    import subprocess
    import sys

    code = "import sys, nndoctor; print('sklearn' in sys.modules, 'matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
