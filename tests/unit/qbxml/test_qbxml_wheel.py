"""The templates ship in the wheel: a message builds from an installed copy, not the checkout."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
ONE_LINER = """
import qbwc_bridge, qbxml_templates
from qbwc_bridge.qbxml import build
from qbwc_bridge.qbxml.versions import QbxmlVersion
for module in (qbwc_bridge, qbxml_templates):
    assert module.__file__.startswith({venv!r}), module.__file__
data = build.message([("1", build.customer_query("Doe, Jane"))], QbxmlVersion(13, 0))
assert b"<CustomerQueryRq requestID=" in data, data
print("built", len(data))
"""


def _can_build_offline() -> bool:
    """setuptools builds wheels by itself from 70.1; older ones need the `wheel` package."""
    major, minor = (int(part) for part in importlib.metadata.version("setuptools").split(".")[:2])
    return (major, minor) >= (70, 1) or importlib.util.find_spec("wheel") is not None


def _run(*command: str | Path, cwd: Path) -> str:
    done = subprocess.run(
        [str(part) for part in command], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.slow
def test_templates_load_from_an_installed_wheel(tmp_path: Path) -> None:
    if not _can_build_offline():
        pytest.skip("building a wheel offline needs setuptools>=70.1 or the `wheel` package")
    source = tmp_path / "source"  # build from a copy: setuptools writes build/ and egg-info
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("qbwc_bridge", "qbxml_templates"):
        shutil.copytree(REPO / folder, source / folder, ignore=ignore)
    shutil.copy(REPO / "pyproject.toml", source)
    readme = REPO / "README.md"
    (source / "README.md").write_text(readme.read_text() if readme.exists() else "qbwc-bridge\n")
    dist = tmp_path / "dist"
    python = sys.executable
    _run(python, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "-q", "-w", dist, source, cwd=tmp_path)  # fmt: skip
    [wheel] = dist.glob("qbwc_bridge-*.whl")

    venv = tmp_path / "venv"
    _run(python, "-m", "venv", "--system-site-packages", "--without-pip", venv, cwd=tmp_path)
    venv_python = venv / "bin" / "python"
    _run(python, "-m", "pip", "--python", venv_python, "install", "--no-deps", "--no-index",
         "-q", wheel, cwd=tmp_path)  # fmt: skip
    # Dependencies (lxml) come from the test environment, which holds no copy of the project.
    where = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    purelib = Path(_run(venv_python, "-c", where, cwd=tmp_path).strip())
    (purelib / "test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    output = _run(venv_python, "-I", "-c", ONE_LINER.format(venv=str(venv)), cwd=outside)
    assert output.startswith("built ")
