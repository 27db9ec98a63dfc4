"""The code's shape (../shared/STYLE.md): imports run one way through the pipeline's steps, no
`assert` standing in for a runtime check (`python -O` drops it), nothing done at import,
prompts shipped with the package."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

PRODUCT = ["bot", "ingest", "webui", "eval", "prompts", "install"]


def _modules() -> list[Path]:
    files = [ROOT / "app.py"]
    for folder in PRODUCT:
        files += sorted((ROOT / folder).rglob("*.py"))
    return files


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


# The pipeline's steps, lowest first: a module imports only from its own step or lower ones.
LAYERS = [
    ["bot.errors", "bot.settings", "bot.net", "prompts"],
    ["bot.text"],
    ["bot.models"],
    ["bot.index"],
    ["bot.retrieval"],
    ["bot.deps"],
    ["bot.answering"],
    ["bot.__main__", "bot.ratings", "bot.warmup", "ingest", "install"],
    ["bot.llamaindex"],
    ["webui", "eval"],
    ["app"],
]


def _component(module: str) -> tuple[int, str] | None:
    """(layer, component) of a module of ours, None for anything else."""
    for rank, names in enumerate(LAYERS):
        for name in names:
            if module == name or module.startswith(name + "."):
                return rank, name
    return None


def test_layering_is_one_way() -> None:
    wrong = []
    for path in _modules():
        parts = path.relative_to(ROOT).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if module == "bot":
            continue  # its docstring only
        here = _component(module)
        assert here is not None, path
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets = [node.module]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            for target in targets:
                there = _component(target)
                if there and (there[0] > here[0] or (there[0] == here[0] and there != here)):
                    wrong.append(f"{_name(path)}:{node.lineno} imports {target}")
    assert not wrong, wrong


def test_the_product_checks_at_run_time_without_assert() -> None:
    found = [
        f"{_name(path)}:{node.lineno}"
        for path in _modules()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Assert)
    ]
    assert not found, f"assert used as a runtime check (python -O drops it): {found}"


def test_importing_the_app_leaves_the_environment_alone() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADIO_")}
    code = (
        "import os, gradio; before = dict(os.environ); import app; "
        "changed = sorted(set(os.environ.items()) ^ set(before.items())); "
        "print(changed); raise SystemExit(1 if changed else 0)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
@pytest.mark.reliability
def test_a_non_editable_install_finds_its_prompts_and_packages(tmp_path: Path) -> None:
    """`pip install .` (not -e): the installed copy, run from elsewhere, renders every prompt
    and imports every package of the product."""
    source, target = tmp_path / "source", tmp_path / "site"
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    for name in PRODUCT:  # a copy: the build writes beside its sources
        shutil.copytree(ROOT / name, source / name, ignore=skip)
    shutil.copy(ROOT / "pyproject.toml", source)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    code = (
        "import bot.answering.prompts as p, importlib, pkgutil, bot, ingest, webui, eval\n"
        f"assert p.__file__.startswith({str(target)!r}), p.__file__\n"
        "for name in ('answer_system', 'answer_user', 'rewrite', 'source'): assert p.load(name)\n"
        "for package in (bot, ingest, webui, eval):\n"
        "    for info in pkgutil.walk_packages(package.__path__, package.__name__ + '.'):\n"
        "        if not info.name.endswith('__main__'): importlib.import_module(info.name)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
