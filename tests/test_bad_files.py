"""Bad files and bad output places are one UserError naming the file, what is wrong and the fix (issue 19)."""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import pickle
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from amc.cli.args import positive_int
from amc.cli.common import check_output_path, require_text_file
from amc.cli.compare_cmd import check_summary
from amc.cli.main import main
from amc.data import load_dataset
from amc.data.idx import read_idx
from amc.errors import UserError

SMOKE = str(Path(__file__).resolve().parent.parent / "configs" / "smoke.yaml")


def message(error: pytest.ExceptionInfo[UserError]) -> str:
    return " ".join(str(error.value).split())


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """`amc ARGS` in this interpreter (a subprocess per case would re-import torch: seconds each); an exception
    the CLI does not turn into its one-paragraph error propagates and fails the test, as a traceback would."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 2
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def one_paragraph(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    return " ".join(result.stderr.split())


def _idx_bytes(array: np.ndarray) -> bytes:
    return bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape) + array.tobytes()


# 1. datasets


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("x", b"garbage that is not idx", "bad magic number"),
        ("x", _idx_bytes(np.zeros((5, 28, 28), np.uint8))[:-100], "truncated"),
        ("x.gz", b"not gzip at all", "cannot be read"),
        ("x.gz", gzip.compress(_idx_bytes(np.zeros((5, 4, 4), np.uint8)))[:-20], "cannot be read"),
    ],
)
def test_garbage_or_truncated_idx_file(tmp_path: Path, name: str, content: bytes, words: str) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(UserError) as error:
        read_idx(tmp_path / name)
    assert str(tmp_path / name) in message(error) and words in message(error)
    assert "official release" in error.value.fix


def _cifar_folder(root: Path, broken: str, content: bytes) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    good = pickle.dumps({b"data": np.zeros((20, 3072), np.uint8), b"labels": [1] * 20}, protocol=2)
    for name in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"):
        (folder / name).write_bytes(content if name == broken else good)
    return folder


def test_cifar_reads_a_good_folder(tmp_path: Path) -> None:
    _cifar_folder(tmp_path, "none", b"")
    bundle = load_dataset("cifar10", tmp_path, search_val_size=10)
    assert bundle.input_size == (3, 32, 32) and len(bundle.test) == 20  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"\x00garbage bytes", "is not a CIFAR-10 python batch"),
        (pickle.dumps({b"data": np.zeros((20, 3072), np.uint8), b"labels": [1] * 20}, protocol=2)[:300], "is not"),
        (pickle.dumps({"weights": [1, 2]}), "does not hold CIFAR-10 data"),
        (pickle.dumps(print), "refusing to load"),  # a pickle naming a Python global: never loaded
    ],
)
def test_garbage_cifar_batch_names_the_file_and_no_download(tmp_path: Path, content: bytes, words: str) -> None:
    folder = _cifar_folder(tmp_path, "data_batch_3", content)
    with pytest.raises(UserError) as error:
        load_dataset("cifar10", tmp_path, search_val_size=10)
    assert str(folder / "data_batch_3") in message(error) and words in message(error)
    assert "cifar-10-python.tar.gz" in error.value.fix and "download=True" not in message(error)


def test_missing_cifar_files_say_where_to_put_them(tmp_path: Path) -> None:
    result = run_cli("train", "--dataset", "cifar10", "--data-root", str(tmp_path), "--no-progress")
    text = one_paragraph(result)
    assert "cifar-10-batches-py" in text and "missing data_batch_1" in text and "download=True" not in text
    assert "Nothing is downloaded" in text


def test_imagefolder_without_images_or_with_unreadable_ones(tmp_path: Path) -> None:
    for split in ("train", "val"):
        (tmp_path / split / "cat").mkdir(parents=True)
    with pytest.raises(UserError) as error:
        load_dataset("imagefolder", tmp_path, search_val_size=1)
    assert f"{tmp_path / 'train'} holds no images" in message(error) and "<class>/" in error.value.fix
    for split in ("train", "val"):
        for index in range(3):
            (tmp_path / split / "cat" / f"{index}.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(UserError) as error:
        load_dataset("imagefolder", tmp_path, search_val_size=1)
    assert "0.jpg cannot be read" in message(error) and "replace the file" in error.value.fix


# 2. checkpoints


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        (torch.zeros(3), "holds a Tensor, not weights"),
        ({"model": {"conv.weight": torch.zeros(1)}, "epoch": 3}, "entries 'model', 'epoch' are not tensors"),
        ({}, "holds an empty dict"),
        (b"plain bytes, not torch", "cannot be read safely"),
    ],
)
def test_checkpoint_that_holds_no_weights(tmp_path: Path, payload: object, words: str) -> None:
    path = tmp_path / "weights.pt"
    if isinstance(payload, bytes):
        path.write_bytes(payload)
    else:
        torch.save(payload, path)
    text = one_paragraph(run_cli("search", "--config", SMOKE, "--checkpoint", str(path), "--out", str(tmp_path / "r")))
    assert str(path) in text and words in text and "Fix:" in text


# 3. agent policy


@pytest.mark.parametrize(
    ("content", "words"), [(b"garbage policy", "is not a readable torch file"), (None, "is not an amc agent state")]
)
def test_garbage_policy_file(tmp_path: Path, content: bytes | None, words: str) -> None:
    path = tmp_path / "agent.pt"
    if content is None:
        torch.save({"actor": torch.zeros(2)}, path)
    else:
        path.write_bytes(content)
    text = one_paragraph(run_cli("search", "--config", SMOKE, "--policy", str(path), "--out", str(tmp_path / "r")))
    assert str(path) in text and words in text and "agent/agent.pt" in text
    assert not (tmp_path / "r").exists()  # refused before the run folder was started


# 4. --out


@pytest.mark.parametrize("kind", ["folder", "file"])
def test_output_helper_refuses_files_and_unwritable_places(tmp_path: Path, kind: str) -> None:
    existing = tmp_path / "taken"
    existing.write_text("x") if kind == "folder" else existing.mkdir()
    with pytest.raises(UserError, match=f"--out {existing} is an existing"):
        check_output_path(existing, kind=kind)
    blocker = tmp_path / "plain-file"
    blocker.write_text("x")
    with pytest.raises(UserError, match="is a file, not a folder") as error:
        check_output_path(blocker / "sub" / "out", kind=kind)
    assert "writable place" in error.value.fix
    with pytest.raises(UserError, match="is not writable"):
        check_output_path(Path("/proc/amc-out") / "x", kind=kind)
    check_output_path(tmp_path / "new" / "deeper", kind=kind)  # a path that can be made passes
    assert not (tmp_path / "new").exists()  # ... and is not created by the check


@pytest.mark.parametrize(
    "command",
    [
        ["search", "--config", SMOKE],
        ["train", "--config", SMOKE, "--epochs", "1"],
        ["prune", "tiny", "--keep", "0.5"],
        ["compare", "RUN"],
    ],
)
def test_every_command_checks_out_first(tmp_path: Path, command: list[str]) -> None:
    out = tmp_path / "taken"
    if command[0] == "train":  # its --out is a checkpoint file (an old one is overwritten): a folder is wrong
        out.mkdir()
    else:
        out.write_text("precious")
    run = tmp_path / "run"
    run.mkdir()
    args = [str(run) if word == "RUN" else word for word in command]
    text = one_paragraph(run_cli(*args, "--out", str(out)))
    assert f"--out {out} is an existing" in text and "writable place" in text
    assert out.is_dir() or out.read_text() == "precious"


# 5. compare on a corrupt summary.json


@pytest.mark.parametrize(
    ("content", "words"), [('{"budget": {"value": 1', "is not valid JSON"), ("[1, 2]", "JSON list")]
)
def test_compare_with_a_corrupt_summary(tmp_path: Path, content: str, words: str) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "summary.json").write_text(content)
    with pytest.raises(UserError) as error:
        check_summary(tmp_path / "run")
    assert str(tmp_path / "run" / "summary.json") in message(error) and words in message(error)
    text = one_paragraph(run_cli("compare", str(tmp_path / "run"), "--out", str(tmp_path / "cmp")))
    assert "summary.json" in text and words in text and "--resume" in text


# 6. an unreachable Optuna storage


@pytest.mark.parametrize(
    ("storage", "words"),
    [
        ("sqlite:///{tmp}/missing-dir/study.db", "missing-dir does not exist"),
        ("postgresql://amc@127.0.0.1:1/optuna", "cannot be opened"),
        ("nosuchdb://x", "cannot be opened"),
    ],
)
def test_unreachable_study_storage(tmp_path: Path, storage: str, words: str) -> None:
    pytest.importorskip("optuna")
    url = storage.format(tmp=tmp_path)
    text = one_paragraph(
        run_cli(
            "search", "--config", SMOKE, "--method", "bayes", "--set", f"search.bayes.storage={url}",
            "--out", str(tmp_path / "r"),
        )
    )  # fmt: skip
    assert "search.bayes.storage" in text and url in text and words in text and "sqlite:///runs/study.db" in text
    assert not (tmp_path / "r").exists()


def test_binary_inputs_and_counts_are_refused(tmp_path: Path) -> None:
    binary = tmp_path / "config.yaml"
    binary.write_bytes(bytes(range(256)))
    with pytest.raises(UserError, match=f"config {binary} is not a text file") as error:
        require_text_file(binary, "config", "pass a YAML.")
    assert error.value.fix == "pass a YAML."
    require_text_file(tmp_path / "missing.yaml", "config", "")  # left to the reader, which names it
    for text in ("0", "-5", "x"):
        with pytest.raises(argparse.ArgumentTypeError, match=repr(text)):
            positive_int(text)
    assert positive_int("3") == 3


@pytest.mark.parametrize(
    ("option", "words"),
    [
        (["--model", "nosuch"], "unknown model 'nosuch'"),
        (["--dataset", "nosuch"], "unknown dataset 'nosuch'"),
        (["--checkpoint", "/nonexistent/w.pt"], "/nonexistent/w.pt does not exist"),
        (["--checkpoint", "."], "is a folder, not a file"),
    ],
)
def test_names_and_checkpoint_are_checked_before_data_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, option: list[str], words: str
) -> None:
    def no_data(*args: object, **kwargs: object) -> None:
        raise AssertionError("the dataset was loaded before the config was checked")

    monkeypatch.setattr("amc.data.load_dataset", no_data)
    monkeypatch.setattr("amc.training.base_model.load_dataset", no_data)
    result = run_cli("search", "--config", SMOKE, "--no-progress", "--out", str(tmp_path / "run"), *option)
    assert words in one_paragraph(result)
    assert not (tmp_path / "run").exists()
