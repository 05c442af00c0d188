"""Dependencies listed once; every script runs against the checkout it lives in."""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SCRIPT_FOLDERS = ("retrieval_lm", "data_creation", "scripts")


def test_environment_yml_installs_requirements_txt_and_nothing_else():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    pip = [d["pip"] for d in deps if isinstance(d, dict)]
    assert [d for d in deps if not isinstance(d, dict)] == ["python=3.11", "pip"]
    assert pip == [["-c constraints.txt", "-r requirements.txt"]]


def _scripts() -> list[Path]:
    return [p for folder in SCRIPT_FOLDERS for p in sorted((ROOT / folder).rglob("*.py"))
            if p.name != "_path.py"]


def _imports_checkout(node: ast.AST) -> bool:
    """Whether ``node`` imports this repository's code (``selfrag`` or ``retrieval_lm``)."""
    if isinstance(node, ast.ImportFrom):
        return (node.module or "").split(".")[0] in ("selfrag", "retrieval_lm")
    return isinstance(node, ast.Import) and any(a.name.split(".")[0] == "selfrag"
                                                for a in node.names)


def test_every_script_puts_its_checkout_first_before_importing_selfrag():
    # sys.path.insert(0, <repository root>) (or `import _path`, which does it) must run at module
    # level before the first import of the repository's code, so that a script never runs a
    # different, installed selfrag.
    late = []
    for script in _scripts():
        tree = ast.parse(script.read_text(encoding="utf-8"))
        path_set = next((n.lineno for n in tree.body if ast.unparse(n).startswith(
            "sys.path.insert(0") or ast.unparse(n) == "import _path"), None)
        first = min((n.lineno for n in ast.walk(tree) if _imports_checkout(n)), default=None)
        if first is not None and (path_set is None or path_set > first):
            late.append(str(script.relative_to(ROOT)))
    assert late == []
