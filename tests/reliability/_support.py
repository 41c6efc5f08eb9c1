"""Helpers shared by the reliability tests (import as `from reliability._support import ...`)."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Tiny random BERT, few documents, no progress bar, one intra-op thread (a model this small only
# waits on its threads, badly so on a busy CPU): a whole job takes seconds.
FAST = ["model=tiny", "dataset.limit=120", "trainer.max_epochs=1", "callbacks.progress_bar=null",
        "trainer.enable_progress_bar=false", "eval.save_weights=false", "torch_threads=1"]


class EntryPoint:
    """`python -m mtlv.train ARGS` run in this process: returns (exit code, stdout, stderr)."""

    def __init__(self, monkeypatch, capsys, output_dir: Path) -> None:
        self.monkeypatch, self.capsys, self.output_dir = monkeypatch, capsys, output_dir

    def __call__(self, *args: str, module: str = "mtlv.train") -> tuple[int, str, str]:
        import importlib

        entry = importlib.import_module(module)
        self.monkeypatch.setenv("MTLV_OUTPUT_DIR", str(self.output_dir))
        self.monkeypatch.setattr(sys, "argv", [module, *args])
        self.capsys.readouterr()
        root = logging.getLogger()
        handlers, level = root.handlers[:], root.level
        code = 0
        try:
            entry.main()
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        finally:  # Hydra points the root logger at this test's captured stdout: undo it
            for handler in root.handlers[:]:
                if handler not in handlers:
                    root.removeHandler(handler)
                    handler.close()
            for handler in handlers:
                if handler not in root.handlers:
                    root.addHandler(handler)
            root.setLevel(level)
        out = self.capsys.readouterr()
        return code, out.out, out.err


def assert_short_error(code: int, err: str, *needles: str) -> None:
    """Exit code 2, one `error: ...` message naming what is wrong and the fix, no traceback."""
    assert code == 2, err
    assert "Traceback" not in err, err
    assert "error: " in err, err
    message = err[err.index("error: "):]
    assert len(message.strip().splitlines()) <= 6, err
    for needle in needles:
        assert needle in err, f"{needle!r} not in:\n{err}"


def demo_rows(n: int = 60) -> list[dict]:
    """A learnable little table: label a when 'alpha' is in the text, b when 'beta' is."""
    rows = []
    for i in range(n):
        words = ["alpha"] * (i % 2 == 0) + ["beta"] * (i % 3 == 0) + ["report", f"number {i}"]
        labels = ";".join(name for name, on in (("a", i % 2 == 0), ("b", i % 3 == 0)) if on)
        rows.append({"text": " ".join(words), "labels": labels})
    return rows
