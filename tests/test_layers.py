"""The package's layers only import downwards (the README's Layout section lists them)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

# Top to bottom; a module may import from its own layer and the ones below it.
LAYERS = [
    # The package root is the facade (emdl.load_run), on top with the Python API it hands out.
    (
        "commands",
        ("emdl.cli", "emdl.commands", "emdl.experiments", "emdl.api", "emdl.cvat", "emdl.serving"),
    ),
    ("train", ("emdl.train",)),
    ("results", ("emdl.metrics", "emdl.analysis", "emdl.export")),
    ("predict", ("emdl.predict",)),
    ("models", ("emdl.models",)),
    ("data", ("emdl.data",)),
    ("labels", ("emdl.labels",)),
    # emdl.synth writes its folders with emdl.io's writers.
    ("io", ("emdl.io", "emdl.synth")),
    (
        "base",
        (
            "emdl.annotations",
            "emdl.rasterize",
            "emdl.boxes",
            "emdl.errors",
            "emdl.console",
            "emdl.signatures",
            "emdl.settings",
            "emdl.sample_data",
        ),
    ),
]


def rank(module: str) -> int:
    if module == "emdl":
        return 0
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                return index
    raise AssertionError(f"{module} is in no layer")


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(tree: ast.AST) -> list[str]:
    names = []
    for node in ast.walk(tree):  # function-level imports count too
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
    return [name for name in names if name == "emdl" or name.startswith("emdl.")]


def test_every_module_is_in_a_layer():
    for path in (REPO / "emdl").rglob("*.py"):
        rank(module_name(path))


def test_imports_point_down():
    modules = {module_name(p) for p in (REPO / "emdl").rglob("*.py")}
    upward = []
    for path in sorted((REPO / "emdl").rglob("*.py")):
        source = module_name(path)
        for name in imported(ast.parse(path.read_text())):
            # "from emdl.x import y": y may be a module or a name; judge by the module.
            target = name if name in modules else name.rsplit(".", 1)[0]
            if rank(target) < rank(source):
                upward.append(f"{source} imports {name}")
    assert upward == []


def test_the_rule_sees_an_upward_import():
    tree = ast.parse("def f():\n    from emdl.train.run import load_run\n")
    assert rank(imported(tree)[0]) < rank("emdl.predict.tiled")
