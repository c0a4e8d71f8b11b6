"""Where chainabs finds what is not its Python code: one place, for every kind of install.

    artifacts()      compiled contracts (ABI, bytecode): package data, in every install
    portal_static()  the investor portal's pages, modules and styles: package data
    repo()           a source checkout (contracts/, tools/), which only compiling needs:
                     $CHAINABS_REPO, else the checkout this package runs from (editable install)
    node_modules()   npm packages (solc, OpenZeppelin, Anvil, the portal's chart.js and js-sha3):
                     $CHAINABS_NODE_MODULES, else <repo>/node_modules

An editable checkout finds everything by itself. A plain `pip install` has the package data
(enough for the demo, the service and the portal's own pages) and no checkout: the environment
points it at a node_modules folder, or a checkout, when it needs one. The variables are read at
each call, so a process that sets them before use is obeyed.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

REPO_ENV = "CHAINABS_REPO"
NODE_MODULES_ENV = "CHAINABS_NODE_MODULES"


def package_data(name: str) -> Path:
    """A folder of chainabs's package data. pip installs a package as files, so it is a folder
    on disk (a zipped chainabs is not supported: the portal serves files and build writes them)."""
    found = resources.files("chainabs").joinpath(name)
    if not isinstance(found, Path):
        raise RuntimeError(f"chainabs's package data {name!r} is not a folder on disk ({found!r})")
    return found


def artifacts() -> Path:
    return package_data("artifacts")


def portal_static() -> Path:
    return package_data("portal/static")


def _from_env(name: str) -> Path | None:
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser() if value else None


def repo() -> Path | None:
    """The source checkout: $CHAINABS_REPO, else the one this package was imported from (its
    src/ layout, next to pyproject.toml), else None (a plain install)."""
    named = _from_env(REPO_ENV)
    if named is not None:
        return named
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file() and (root / "src" / "chainabs").is_dir():
        return root
    return None


def node_modules() -> Path | None:
    """The npm packages: $CHAINABS_NODE_MODULES, else the checkout's node_modules, else None.
    The folder may not exist yet (`make setup` makes it); callers say so in a sentence."""
    named = _from_env(NODE_MODULES_ENV)
    if named is not None:
        return named
    root = repo()
    return root / "node_modules" if root is not None else None
