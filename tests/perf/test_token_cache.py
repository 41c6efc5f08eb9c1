"""Tokenize once: the on-disk cache is hit by later runs and by parallel jobs (the tokenizer runs
once), and a file left by a killed writer is never trusted."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from mtlv.data.tokenize import tokenize_cached

ROOT = Path(__file__).resolve().parents[2]

# A stand-in tokenizer (no model files needed): it appends one line per call to `calls`, so calls
# made in other processes are counted too, and it can be slow to make parallel jobs overlap.
FAKE = textwrap.dedent("""
    import os, time

    class FakeTokenizer:
        name_or_path = "fake-tokenizer"
        init_kwargs = {"do_lower_case": True}

        def __init__(self, calls, delay=0.0):
            self.calls, self.delay = calls, delay

        def __len__(self):
            return 1000

        def __call__(self, texts, truncation=True, max_length=128, **kwargs):
            with open(self.calls, "a") as fh:
                fh.write(f"{os.getpid()}\\n")
            time.sleep(self.delay)
            ids = [[101] + [100 + len(w) for w in t.split()][: max_length - 2] + [102] for t in texts]
            return {"input_ids": ids}
""")
namespace: dict = {}
exec(FAKE, namespace)
FakeTokenizer = namespace["FakeTokenizer"]

TEXTS = [f"report {i} " + "word " * (i % 40) + "normal heart size" for i in range(300)]


def n_calls(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_second_run_hits_the_cache(tmp_path):
    calls = tmp_path / "calls.txt"
    first = tokenize_cached(TEXTS, FakeTokenizer(calls), 32, tmp_path / "cache")
    assert not first.from_cache and n_calls(calls) == 1
    second = tokenize_cached(TEXTS, FakeTokenizer(calls), 32, tmp_path / "cache")
    assert second.from_cache and n_calls(calls) == 1
    np.testing.assert_array_equal(first.flat, second.flat)
    np.testing.assert_array_equal(first.offsets, second.offsets)
    # other texts or another max_length are other cache entries
    tokenize_cached(TEXTS, FakeTokenizer(calls), 16, tmp_path / "cache")
    tokenize_cached(TEXTS[:-1], FakeTokenizer(calls), 32, tmp_path / "cache")
    assert n_calls(calls) == 3


def test_stl_sweep_tokenizes_once(tmp_path):
    """19 STL jobs over the same corpus ask the cache 19 times; the tokenizer runs once."""
    calls = tmp_path / "calls.txt"
    for _ in range(19):
        tokens = tokenize_cached(TEXTS, FakeTokenizer(calls), 64, tmp_path / "cache")
    assert tokens.from_cache and n_calls(calls) == 1
    assert len(list((tmp_path / "cache" / "tokens").glob("*.npz"))) == 1


def _worker_script(cache: Path, calls: Path, delay: float, texts_file: Path) -> str:
    return FAKE + textwrap.dedent(f"""
        import json
        from mtlv.data.tokenize import tokenize_cached
        texts = json.load(open({str(texts_file)!r}))
        t = tokenize_cached(texts, FakeTokenizer({str(calls)!r}, {delay}), 32, {str(cache)!r})
        print(int(t.from_cache), int(t.offsets[-1]))
    """)


def test_parallel_jobs_tokenize_once(tmp_path):
    """Four processes race for the same entry: one tokenizes, the others wait on the lock and load."""
    import json

    texts_file = tmp_path / "texts.json"
    texts_file.write_text(json.dumps(TEXTS))
    calls, cache = tmp_path / "calls.txt", tmp_path / "cache"
    script = _worker_script(cache, calls, 1.0, texts_file)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env) for _ in range(4)]
    outs = [p.communicate(timeout=600) for p in procs]  # only a hang
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    results = [tuple(map(int, o[0].split())) for o in outs]
    assert n_calls(calls) == 1
    assert sorted(r[0] for r in results) == [0, 1, 1, 1]  # one tokenized, three read the cache
    assert len({r[1] for r in results}) == 1  # and all got the same tokens


def test_parallel_threads_tokenize_once(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    calls, cache = tmp_path / "calls.txt", tmp_path / "cache"
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: tokenize_cached(TEXTS, FakeTokenizer(calls, 0.5), 32, cache), range(4)))
    assert n_calls(calls) == 1
    assert sorted(r.from_cache for r in results) == [False, True, True, True]


def test_killed_writer_leaves_nothing_trusted(tmp_path):
    """A writer killed mid-write (os._exit: no cleanup runs, like SIGKILL) leaves only a temp file;
    the next run ignores it and tokenizes again."""
    import json

    texts_file = tmp_path / "texts.json"
    texts_file.write_text(json.dumps(TEXTS))
    calls, cache = tmp_path / "calls.txt", tmp_path / "cache"
    killer = FAKE + textwrap.dedent(f"""
        import json, os
        import numpy as np
        from mtlv.data import tokenize as tk

        def savez_then_die(fh, **arrays):
            fh.write(b"PK\\x03\\x04 half a zip file")
            fh.flush()
            os._exit(9)

        tk.np.savez = savez_then_die
        texts = json.load(open({str(texts_file)!r}))
        tk.tokenize_cached(texts, FakeTokenizer({str(calls)!r}), 32, {str(cache)!r})
    """)
    proc = subprocess.run([sys.executable, "-c", killer], env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 9, proc.stderr[-2000:]
    folder = cache / "tokens"
    assert not list(folder.glob("*.npz")), "a killed writer must not leave a cache entry"
    assert list(folder.glob(".*.tmp")), "the partial temp file is expected to remain (no cleanup on kill)"
    assert n_calls(calls) == 1

    tokens = tokenize_cached(TEXTS, FakeTokenizer(calls), 32, cache)  # the lock died with the writer
    assert not tokens.from_cache and n_calls(calls) == 2
    again = tokenize_cached(TEXTS, FakeTokenizer(calls), 32, cache)
    assert again.from_cache and n_calls(calls) == 2
    np.testing.assert_array_equal(again.flat, tokens.flat)


def test_damaged_cache_file_is_recomputed(tmp_path):
    calls, cache = tmp_path / "calls.txt", tmp_path / "cache"
    good = tokenize_cached(TEXTS, FakeTokenizer(calls), 32, cache)
    entry = next((cache / "tokens").glob("*.npz"))
    entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])  # truncated outside MTLV's control
    again = tokenize_cached(TEXTS, FakeTokenizer(calls), 32, cache)
    assert not again.from_cache and n_calls(calls) == 2
    np.testing.assert_array_equal(again.flat, good.flat)
    assert tokenize_cached(TEXTS, FakeTokenizer(calls), 32, cache).from_cache
