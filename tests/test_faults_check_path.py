"""`iftscope run --check` and `iftscope verify` answer within a couple of seconds (issue 17 item 1):
they import no deep-learning or statistics library (torch alone takes about a second to import)."""

import subprocess
import sys

HEAVY = ("torch", "transformers", "scipy", "matplotlib", "peft", "accelerate")


def _imported_after(code: str) -> list[str]:
    probe = f"import sys\n{code}\nprint('imported:', *[m for m in {HEAVY!r} if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()[-1].split()[1:]  # the last line: the command's own output comes first


def test_recipe_check_imports_no_heavy_library():
    code = "from iftscope.cli import main\nassert main(['run', '--check', 'smoke', 'train.lr=0.001']) == 0"
    assert _imported_after(code) == []
    code = "from iftscope.cli import main\nassert main(['run', '--check', 'train.lr=-1']) == 2"
    assert _imported_after(code) == []


def test_verify_imports_no_heavy_library(tmp_path):
    (tmp_path / "recipe.yaml").write_text("name: x\n")
    code = f"from iftscope.cli import main\nassert main(['verify', {str(tmp_path)!r}]) == 0"
    assert _imported_after(code) == []
