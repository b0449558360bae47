"""Packaging: which folders install under which import names, and the data the wheel ships.

The repository keeps its top-level folders; the installed names are all ``netmon``-prefixed, so nothing
generic lands in site-packages:

- ``netmon/``          -> ``netmon``         the core (and its sub-packages)
- ``addons/``          -> ``netmon_proxy``   the mitmproxy adapters
- ``captive_portal/``  -> ``netmon_portal``  the pupils' portal
- ``console/``         -> ``netmon_console`` the staff console

A built wheel (or ``pip install .``) also carries the default data under ``netmon/_shipped/``:
``library/``, ``policy/``, ``deploy/`` and ``mitm_config.yaml``. ``netmon.config.paths`` finds them there,
or in the checkout when netmon runs from one (an editable install copies nothing).
"""

import shutil
from pathlib import Path

from setuptools import find_namespace_packages, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
FACES = {"netmon_proxy": "addons", "netmon_portal": "captive_portal", "netmon_console": "console"}
DATA = ("library", "policy", "deploy", "mitm_config.yaml")


class BuildWithData(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        shipped = Path(self.build_lib) / "netmon" / "_shipped"
        for name in DATA:
            src = HERE / name
            if src.is_dir():
                shutil.copytree(
                    src,
                    shipped / name,
                    dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
                )
            else:
                shipped.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, shipped / name)


setup(
    packages=[
        *find_namespace_packages(include=["netmon", "netmon.*"]),
        *(
            f"{name}{'.' + '.'.join(sub.relative_to(HERE / folder).parts) if sub != HERE / folder else ''}"
            for name, folder in FACES.items()
            for sub in [HERE / folder, *(d for d in (HERE / folder).rglob("*") if d.is_dir())]
            if sub.name != "__pycache__"
        ),
    ],
    package_dir=FACES,
    cmdclass={"build_py": BuildWithData},
)
