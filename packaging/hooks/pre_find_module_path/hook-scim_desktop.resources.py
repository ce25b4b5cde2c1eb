"""``scim_desktop.resources`` is the repository's ``resources/`` folder (see ``package-dir`` in
pyproject.toml). PyInstaller does not follow setuptools' editable-install mapping, so point
it at the folder: search for the module ``resources`` in the repository root."""

from pathlib import Path

from PyInstaller.depend.imphookapi import PreFindModulePathAPI

ROOT = Path(__file__).resolve().parents[3]


def pre_find_module_path(api: PreFindModulePathAPI) -> None:
    api.search_dirs = [str(ROOT)]
