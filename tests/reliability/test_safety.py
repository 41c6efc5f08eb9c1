"""Safety: no unpickling of arbitrary objects, no remote code unless asked, no shell built from
config values, archives cannot write outside their folder, the MLflow UI binds to localhost."""
from __future__ import annotations

import ast
import io
import shlex
import tarfile
from pathlib import Path

import pytest
import torch
from reliability._support import FAST, ROOT

from mtlv.run.checkpoint import AtomicCheckpointIO, CheckpointError, verify_checkpoint
from mtlv.config import compose
from mtlv.errors import DataError

SOURCES = sorted([*ROOT.joinpath("mtlv").rglob("*.py"), *ROOT.joinpath("hydra_plugins").rglob("*.py"),
                  *ROOT.joinpath("scripts").glob("*.py")])


class Payload:
    """Unpickling this creates a folder: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        import os

        return os.makedirs, (self.marker,)


def malicious_checkpoint(path: Path, marker: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {"w": torch.zeros(1)}, "epoch": 0, "x": Payload(marker)}, path)
    return path


def test_malicious_checkpoint_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = malicious_checkpoint(tmp_path / "last.ckpt", marker)
    with pytest.raises(CheckpointError, match="refusing to load .*last.ckpt.*other than tensors"):
        verify_checkpoint(path)
    with pytest.raises(Exception):
        AtomicCheckpointIO().load_checkpoint(path, weights_only=False)  # weights-only whatever is asked
    assert not marker.exists()


def test_malicious_checkpoint_in_a_job_folder_is_refused_on_resume(tmp_path):
    """Someone plants checkpoints/last.ckpt in a job folder: the resume refuses it, nothing runs."""
    from mtlv.run.job import run_job
    from mtlv.run.spec import JobSpec

    marker = tmp_path / "pwned"
    cfg = compose([*FAST, f"paths.output_dir={tmp_path}", "logger=none"])
    malicious_checkpoint(JobSpec.of(cfg).job.folder / "checkpoints" / "last.ckpt", marker)
    with pytest.raises(CheckpointError, match="refusing to load"):
        run_job(cfg)
    assert not marker.exists()


def test_exported_weights_load_without_pickle(tmp_path):
    """`mtlv.predict` reads safetensors: a pickle disguised as model.safetensors is an error, not code."""
    from mtlv.io import write_json
    from mtlv.models.export import ExportedModel
    from transformers import BertConfig

    marker = tmp_path / "pwned"
    folder = tmp_path / "export"
    folder.mkdir()
    BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=1,
               intermediate_size=8).to_json_file(str(folder / "encoder_config.json"))
    write_json(folder / "mtlv_model.json", {"label_names": ["a"], "groups": [[0]], "pooling": "cls",
                                            "max_length": 16, "threshold": 0.5})
    torch.save({"x": Payload(marker)}, folder / "model.safetensors")
    with pytest.raises(Exception):
        ExportedModel(folder)
    assert not marker.exists()


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node


def _name(func: ast.AST) -> str:
    parts = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    parts.append(func.id if isinstance(func, ast.Name) else "<expr>")  # x().eval() is not eval()
    return ".".join(reversed(parts))


def _kw(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


def test_source_never_unpickles_or_evaluates_untrusted_data():
    """Every torch.load is weights_only=True; no pickle/joblib/unsafe yaml loads, no eval/exec,
    no np.load(allow_pickle=True)."""
    problems = []
    for path in SOURCES:
        for call in _calls(ast.parse(path.read_text(encoding="utf-8"))):
            name, where = _name(call.func), f"{path.relative_to(ROOT)}:{call.lineno}"
            if name == "torch.load":
                flag = _kw(call, "weights_only")
                if not (isinstance(flag, ast.Constant) and flag.value is True):
                    problems.append(f"{where}: torch.load without weights_only=True")
            elif name in ("pickle.load", "pickle.loads", "joblib.load", "dill.load", "cloudpickle.load",
                          "eval", "exec", "yaml.unsafe_load", "yaml.full_load", "marshal.loads"):
                problems.append(f"{where}: {name}")
            elif name == "yaml.load" and "SafeLoader" not in ast.unparse(call):
                problems.append(f"{where}: yaml.load without SafeLoader")
            elif name.endswith("np.load") or name == "numpy.load":
                flag = _kw(call, "allow_pickle")
                if flag is not None and not (isinstance(flag, ast.Constant) and flag.value is False):
                    problems.append(f"{where}: np.load(allow_pickle=...)")
    assert not problems, "\n".join(problems)


def test_no_shell_commands_built_from_values():
    """No os.system/os.popen, no shell=True; subprocess gets an argument list, never a string."""
    problems = []
    for path in SOURCES:
        for call in _calls(ast.parse(path.read_text(encoding="utf-8"))):
            name, where = _name(call.func), f"{path.relative_to(ROOT)}:{call.lineno}"
            if name in ("os.system", "os.popen", "os.execl", "os.execlp", "os.spawnl", "commands.getoutput"):
                problems.append(f"{where}: {name}")
            if name.startswith("subprocess.") or name in ("Popen", "check_output", "check_call"):
                shell = _kw(call, "shell")
                if shell is not None and not (isinstance(shell, ast.Constant) and shell.value is False):
                    problems.append(f"{where}: {name}(shell=...)")
                if call.args and isinstance(call.args[0], (ast.Constant, ast.JoinedStr, ast.BinOp)):
                    problems.append(f"{where}: {name} with a command string")
    assert not problems, "\n".join(problems)


def test_downloads_are_python_not_shell_tools():
    for path in SOURCES:
        text = path.read_text(encoding="utf-8")
        for tool in ('"curl"', '"wget"', "'curl'", "'wget'", '"curl ', '"wget '):
            assert tool not in text, f"{path}: {tool}"


@pytest.mark.parametrize("model", sorted(p.stem for p in (ROOT / "conf" / "model").glob("*.yaml")
                                         if not p.stem.startswith("_")))
def test_trust_remote_code_is_off_for_every_model_option(model):
    cfg = compose([f"model={model}"])
    assert cfg.model.trust_remote_code is False
    assert cfg.model.module.trust_remote_code is False


def test_no_config_file_turns_remote_code_on():
    for path in (ROOT / "conf").rglob("*.yaml"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if "trust_remote_code" in line.split("#")[0]:
                value = line.split("#")[0].split(":", 1)[1].strip()
                assert value in ("false", "${model.trust_remote_code}"), f"{path}: {line}"


def test_loaders_pass_trust_remote_code_false_by_default(monkeypatch):
    """What reaches transformers: trust_remote_code=False, for the config, tokenizer and model."""
    from mtlv.models import encoder

    seen = {}

    def spy(kind):
        def from_pretrained(path, *args, **kwargs):
            seen[kind] = kwargs.get("trust_remote_code")
            raise OSError("stop here")
        return from_pretrained

    monkeypatch.setattr(encoder.AutoConfig, "from_pretrained", spy("config"))
    monkeypatch.setattr(encoder.AutoTokenizer, "from_pretrained", spy("tokenizer"))
    monkeypatch.setattr(encoder.AutoModel, "from_pretrained", spy("model"))
    encoder.load_tokenizer.cache_clear()
    for call in (lambda: encoder.model_max_length("some/model"), lambda: encoder.load_tokenizer("some/model"),
                 lambda: encoder.load_encoder("some/model")):
        with pytest.raises(Exception):
            call()
    encoder.load_tokenizer.cache_clear()
    assert seen == {"config": False, "tokenizer": False, "model": False}


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _file(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


@pytest.mark.parametrize("evil", ["../escaped.txt", "ohsumed-all/C01/../../../escaped.txt", "/tmp/mtlv-abs-escape.txt",
                                  "symlink", "hardlink"])
def test_archives_cannot_write_outside_their_folder(tmp_path, evil):
    from mtlv.data.sources.ohsumed import load_ohsumed

    members = [_file("ohsumed-all/C01/0000001", b"A title\nAn abstract.")]
    if evil == "symlink":
        link = tarfile.TarInfo("ohsumed-all/C02")
        link.type, link.linkname = tarfile.SYMTYPE, str(tmp_path.parent)
        members.append((link, None))
    elif evil == "hardlink":
        link = tarfile.TarInfo("ohsumed-all/C02/0000002")
        link.type, link.linkname = tarfile.LNKTYPE, "/etc/passwd"
        members.append((link, None))
    else:
        members.append(_file(evil))
    (tmp_path / "data").mkdir()
    archive = _tar(tmp_path / "data" / "ohsumed.tar.gz", members)
    with pytest.raises(DataError, match="unsafe member"):
        load_ohsumed(str(archive))
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "data" / "escaped.txt").exists()
    assert not Path("/tmp/mtlv-abs-escape.txt").exists()
    assert not list((tmp_path / "data").glob("ohsumed_extracted"))  # nothing half-extracted left to trust


def test_mlflow_ui_binds_to_localhost_and_quotes_the_store():
    uri = "sqlite:////tmp/o'dd dir; rm -rf ~/mlflow.db"
    command = tracking_ui(uri)
    argv = shlex.split(command)
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    assert argv[argv.index("--backend-store-uri") + 1] == uri


def tracking_ui(uri: str) -> str:
    from mtlv.tracking import ui_command

    return ui_command(uri)


def test_makefile_mlflow_ui_binds_to_localhost():
    makefile = ROOT / "Makefile"
    if not makefile.exists():
        pytest.skip("no Makefile")
    lines = makefile.read_text(encoding="utf-8").splitlines()
    recipe = [line for line in lines if "mlflow ui" in line or "mlflow server" in line]
    assert recipe, "no mlflow ui/server command in the Makefile"
    for line in recipe:
        assert "--host 127.0.0.1" in line and "0.0.0.0" not in line, line
