"""Hostile inputs and faults of the third round: outputs into input folders, NaN and inf in params, YAML
bombs, out-of-range seeds, encrypted and bomb archives, 16-bit and broken-link images, over-long ids, a
read-only or full disk, leftovers of killed writers.

Each probe runs the real `spcreid` entry point (or `snakemake -n` in a copy of the workflow) and asserts one
error line naming the file or field with what to do, the exit status, and the files left behind. The disk
faults use a small tmpfs (mounted read-only, or filled) and are skipped where mounting is not permitted.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
import uuid
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import test_engine_train
from hostile_helpers import assert_refused, leftovers, snapshot, spcreid
from test_data_trees import TREES, VCCLOTHES_FILES, build_tree, write_image
from test_hostile_train import tiny_params, train
from workflow_helpers import copy_workflow, snakemake

toy = test_engine_train.toy
oracle_clusters = test_engine_train.oracle_clusters
REPO = Path(__file__).resolve().parents[1]
PARAMS = (REPO / "params.yaml").read_text()
PUBLISHED = REPO / "results/published"
EMBEDDED_METRICS = REPO / "results/embedded/metrics"


def make_tables(capsys, params: Path | str, out: Path, *extra):
    return spcreid(
        capsys,
        "make-tables",
        "--params",
        params,
        "--metrics-dir",
        EMBEDDED_METRICS,
        "--paper-dir",
        PUBLISHED,
        "--out",
        out,
        *extra,
    )


def params_with(tmp_path: Path, old: str, new: str) -> Path:
    assert old in PARAMS, old
    path = tmp_path / "params.yaml"
    path.write_text(PARAMS.replace(old, new, 1))
    return path


# ---------------------------------------------------------------------------- outputs into input folders


@pytest.mark.parametrize("command", ["make-tables", "make-plots"])
@pytest.mark.parametrize("where", ["published", "published/sub", "metrics"])
def test_output_into_an_input_folder_is_refused_and_nothing_changes(command, where, tmp_path, capsys):
    # A copy of the real layout: the paper's values and the embedded metrics under one results/ folder.
    results = tmp_path / "results"
    shutil.copytree(PUBLISHED, results / "published")
    shutil.copytree(EMBEDDED_METRICS, results / "metrics")
    before = snapshot(results)
    out = results / where
    outcome = spcreid(
        capsys,
        command,
        "--params",
        REPO / "params.yaml",
        "--metrics-dir",
        results / "metrics",
        "--paper-dir",
        results / "published",
        "--out",
        out,
    )
    assert_refused(outcome, command, f"--out {out}", "must stay as it is")
    assert snapshot(results) == before


def test_output_into_the_repository_published_folder_is_refused(tmp_path, capsys, monkeypatch):
    # The reported case: --out results/published from the repository root, --paper-dir elsewhere.
    monkeypatch.chdir(tmp_path)
    shutil.copytree(PUBLISHED, tmp_path / "results/published")
    paper = tmp_path / "paper"
    shutil.copytree(PUBLISHED, paper)
    before = snapshot(tmp_path / "results")
    outcome = spcreid(
        capsys,
        "make-tables",
        "--params",
        REPO / "params.yaml",
        "--metrics-dir",
        EMBEDDED_METRICS,
        "--paper-dir",
        paper,
        "--out",
        "results/published",
    )
    assert_refused(outcome, "make-tables", "results/published", "the paper's published values")
    assert snapshot(tmp_path / "results") == before


def test_label_quality_output_into_a_run_folder_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    outcome = spcreid(capsys, "make-label-quality", "--runs", run, "--out", run / "plots")
    assert_refused(outcome, "make-label-quality", f"--runs {run}")
    assert not (run / "plots").exists()


# ---------------------------------------------------------------------------- NaN / inf / huge values in params

NON_FINITE = {
    "eps .nan": ("  eps: 0.4\n", "  eps: .nan\n", "method.eps", "nan"),
    "momentum .nan": ("  momentum: 0.3", "  momentum: .nan", "method.momentum", "nan"),
    "lr .inf": ("  lr: ", "  lr: .inf #", "method.lr", "inf"),
    "experiment eps -.inf": ("  full_eps0.2:    {eps: 0.2}", "  full_eps0.2:    {eps: -.inf}", "experiments", "-inf"),
}


@pytest.mark.parametrize("probe", sorted(NON_FINITE))
def test_non_finite_numbers_are_refused_at_validation(probe, tmp_path, capsys):
    old, new, field, shown = NON_FINITE[probe]
    params = params_with(tmp_path, old, new)
    out = tmp_path / "tables"
    line = assert_refused(make_tables(capsys, params, out), "make-tables", params, field, f"is {shown}")
    assert "not a finite number" in line
    assert not out.exists()


def test_non_finite_value_is_refused_by_the_dag_before_any_job(tmp_path):
    workdir = copy_workflow(tmp_path / "wf")
    params = workdir / "params.yaml"
    params.write_text(params.read_text().replace("  eps: 0.4\n", "  eps: .nan\n", 1))
    result = snakemake(workdir, "-n")
    log = result.stdout + result.stderr
    assert result.returncode == 1
    assert "field 'method.eps' is nan, not a finite number" in log and "Traceback" not in log
    assert not (workdir / "work").exists()


def test_seed_beyond_the_generators_range_is_refused_in_params(tmp_path, capsys):
    params = tmp_path / "params.yaml"
    text = PARAMS
    start = text.index("seeds:", text.index("embedded:"))
    end = text.index("\n", start)
    params.write_text(text[:start] + f"seeds: [{2**64}]" + text[end:])
    line = assert_refused(make_tables(capsys, params, tmp_path / "t"), "make-tables", "seeds.0")
    assert "maximum of 4294967295" in line


@pytest.mark.parametrize("seed", [2**64, -1])
def test_seed_beyond_the_generators_range_is_refused_on_the_command_line(seed, toy, tmp_path, capsys):
    run = tmp_path / "run"
    outcome = spcreid(
        capsys,
        "train",
        "--params",
        tiny_params(tmp_path / "params.yaml"),
        "--dataset",
        "prcc",
        "--experiment",
        "baseline",
        "--seed",
        seed,
        "--manifest",
        toy["manifest"],
        "--out",
        run,
        "--threads",
        1,
    )
    assert_refused(outcome, "train", f"--seed {seed}", "4294967295")
    assert not run.exists()


@pytest.mark.parametrize("method", [{"momentum": float("nan")}, {"lr": float("inf")}], ids=["momentum nan", "lr inf"])
def test_non_finite_method_value_stops_training_before_any_epoch(method, toy, tmp_path, capsys):
    (name,) = method
    params = tiny_params(tmp_path / "params.yaml", **method)
    run = tmp_path / "run"
    line = assert_refused(train(capsys, toy, params, run), "train", f"method.{name}", "not a finite number")
    assert "temperature" not in line
    assert not (run / "model.pt").exists() and not (run / "metrics.json").exists()


# ---------------------------------------------------------------------------- YAML bombs


def test_deep_yaml_nesting_is_one_line_not_a_recursion_error(tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text(PARAMS + "deep: " + "[" * 20000 + "]" * 20000 + "\n")
    line = assert_refused(make_tables(capsys, params, tmp_path / "t"), "make-tables", params, "nesting deeper than")
    assert len(line) < 500


def test_yaml_alias_bomb_is_refused_small_and_fast(tmp_path, capsys):
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    params = tmp_path / "params.yaml"
    params.write_text(PARAMS + "bomb:\n" + "".join(f"  {level}\n" for level in levels))
    assert params.stat().st_size < 20_000
    started = time.process_time()
    line = assert_refused(make_tables(capsys, params, tmp_path / "t"), "make-tables", params, "alias bomb")
    assert len(line) < 500
    # 9**10 values if anything expanded them; refused on the node graph instead (a generous bound, not a timing)
    assert time.process_time() - started < 30


def test_schema_message_is_bounded_for_a_huge_wrong_value(tmp_path, capsys):
    params = params_with(tmp_path, "  eps: 0.4\n", "  eps: [" + ", ".join(["123456"] * 5000) + "]\n")
    line = assert_refused(make_tables(capsys, params, tmp_path / "t"), "make-tables", "method.eps", "value shortened")
    assert len(line) < 1000


# ---------------------------------------------------------------------------- --configfile through Snakemake


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("method:\n  eps: 0.5\n  eps: 0.6\n", "key 'eps' appears twice in one mapping (lines 2 and 3)"),
        ("method:\n  eps: .nan\n", "field 'method.eps' is nan, not a finite number"),
    ],
    ids=["duplicate key", "NaN"],
)
def test_configfile_is_checked_like_params_yaml(text, fragment, tmp_path):
    workdir = copy_workflow(tmp_path / "wf")
    (workdir / "extra.yaml").write_text(text)
    result = snakemake(workdir, "-n", "--configfile", "extra.yaml")
    log = result.stdout + result.stderr
    assert result.returncode == 1, log[-2000:]
    assert fragment in log and "Traceback" not in log
    assert not (workdir / "work").exists()


# ---------------------------------------------------------------------------- archives


def many_train_images(count: int):
    """An extra for prcc_zip: ``count`` small train members, so that extraction takes long enough to interrupt."""

    def add(zf):
        for i in range(count):
            zf.writestr(f"prcc/rgb/train/001/A_cropped_rgb{i + 1000:05d}.jpg", b"\xff\xd8" + bytes(2000))

    return add


def prcc_zip(tmp_path: Path, extra=()) -> Path:
    source = build_tree(tmp_path / "src", TREES["prcc"])
    path = tmp_path / "prcc.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in sorted(source.rglob("*")):
            zf.write(file, file.relative_to(source).as_posix())
        for write in extra:
            write(zf)
    return path


def fetch(capsys, archive: Path, dest: Path):
    return spcreid(capsys, "fetch-data", "--dataset", "prcc", "--archive", archive, "--dest", dest)


def mark_encrypted(archive: Path, name: str) -> None:
    """Set the 'encrypted' flag of member ``name`` in both of its headers, as `zip -e` leaves it (zipfile
    cannot write encrypted members)."""
    data = bytearray(archive.read_bytes())
    encoded = name.encode()
    for signature, flag_at, name_at in ((b"PK\x03\x04", 6, 30), (b"PK\x01\x02", 8, 46)):
        start = 0
        while (start := data.find(signature, start)) != -1:
            if data[start + name_at : start + name_at + len(encoded)] == encoded:
                data[start + flag_at] |= 0x1
            start += 4
    archive.write_bytes(bytes(data))


def test_password_protected_zip_is_one_line(tmp_path, capsys):
    member = "prcc/rgb/train/001/A_cropped_rgb999.jpg"
    archive = prcc_zip(tmp_path, [lambda zf: zf.writestr(member, b"\x00" * 64)])
    mark_encrypted(archive, member)
    with zipfile.ZipFile(archive) as zf, pytest.raises(RuntimeError, match="password required"):
        zf.read(member)
    dest = tmp_path / "raw"
    assert_refused(fetch(capsys, archive, dest), "fetch-data", archive, "is encrypted", "password")
    assert snapshot(dest) == {} and not leftovers(tmp_path)


def test_zip_bomb_is_refused_before_anything_is_written(tmp_path, capsys):
    def bomb(zf):
        info = zipfile.ZipInfo("prcc/padding.bin")
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w") as handle:
            chunk = b"\x00" * (1 << 20)
            for _ in range(120):
                handle.write(chunk)

    archive = prcc_zip(tmp_path, [bomb])
    assert archive.stat().st_size < 1 << 20
    dest = tmp_path / "raw"
    assert_refused(fetch(capsys, archive, dest), "fetch-data", archive, "zip bomb")
    assert snapshot(dest) == {} and not leftovers(tmp_path)


# ---------------------------------------------------------------------------- images and names


def verify(capsys, dataset: str, root: Path):
    return spcreid(capsys, "verify-data", "--dataset", dataset, "--root", root, "--no-counts", "--workers", "1")


def problems_of(outcome) -> list[str]:
    assert "Traceback" not in outcome.err
    return [line.strip() for line in outcome.err.splitlines() if line.startswith("  ")]


def test_sixteen_bit_png_fails_verification(tmp_path, capsys):
    root = build_tree(tmp_path / "raw", TREES["ltcc"])
    image = next((root / "LTCC_ReID/train").glob("*.png"))
    Image.fromarray(np.full((16, 8), 3000, dtype=np.uint16)).save(image)  # dark, as 16 bits
    with Image.open(image) as opened:
        assert opened.mode.startswith("I")
    outcome = verify(capsys, "ltcc", root)
    assert outcome.code == 1
    assert any(line.startswith(f"{image}: image has mode I") and "convert it" in line for line in problems_of(outcome))


@pytest.mark.parametrize("kind", ["dangling", "self-referencing"])
@pytest.mark.parametrize("dataset", ["vcclothes", "prcc"])
def test_broken_symlinked_image_is_reported_not_skipped(kind, dataset, tmp_path, capsys):
    root = build_tree(tmp_path / "raw", TREES[dataset])
    folder = root / ("VC-Clothes/train" if dataset == "vcclothes" else "prcc/rgb/train/001")
    link = folder / ("0009-01-01-01.jpg" if dataset == "vcclothes" else "A_cropped_rgb999.jpg")
    link.symlink_to(link if kind == "self-referencing" else tmp_path / "gone.jpg")
    outcome = verify(capsys, dataset, root)
    assert outcome.code == 1
    assert any(line.startswith(f"{link}: broken symbolic link") for line in problems_of(outcome))
    manifest = tmp_path / "manifest.csv"
    outcome = spcreid(capsys, "prepare-data", "--dataset", dataset, "--root", root, "--out", manifest)
    assert_refused(outcome, "prepare-data", link, "broken symbolic link")
    assert not manifest.exists()


def test_twenty_digit_person_id_is_named_by_verify_data(tmp_path, capsys):
    root = build_tree(tmp_path / "raw", VCCLOTHES_FILES)
    image = root / "VC-Clothes/train/12345678901234567890-01-01-01.jpg"
    write_image(image)
    outcome = verify(capsys, "vcclothes", root)
    assert outcome.code == 1
    assert any(line.startswith(f"{image}: a number in its name exceeds") for line in problems_of(outcome))
    manifest = tmp_path / "manifest.csv"
    outcome = spcreid(capsys, "prepare-data", "--dataset", "vcclothes", "--root", root, "--out", manifest)
    line = assert_refused(outcome, "prepare-data", image)
    assert "<in memory>" not in line and not manifest.exists()


def test_prcc_person_folder_with_twenty_digits_is_not_a_person_id(tmp_path, capsys):
    root = build_tree(tmp_path / "raw", TREES["prcc"])
    folder = root / "prcc/rgb/train/12345678901234567890"
    write_image(folder / "A_cropped_rgb001.jpg")
    outcome = verify(capsys, "prcc", root)
    assert outcome.code == 1
    assert any(line.startswith(f"{folder}: folder name is not a person id") for line in problems_of(outcome))


# ---------------------------------------------------------------------------- disk faults (tmpfs)


@contextlib.contextmanager
def tmpfs(where: Path, size: str, read_only: bool = False):
    where.mkdir(parents=True, exist_ok=True)
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root on Linux")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(where: Path, keep: int) -> None:
    """Fill the file system at ``where`` but for about ``keep`` bytes."""
    fd = os.open(where / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\x00" * 4096)
    finally:
        os.close(fd)
    os.truncate(where / "filler", max(0, (where / "filler").stat().st_size - keep))


def remount_read_only(where: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True)


def test_read_only_output_folder_is_one_line(tmp_path, capsys):
    with tmpfs(tmp_path / "ro", "4m") as ro:
        remount_read_only(ro)
        out = ro / "tables"
        outcome = make_tables(capsys, REPO / "params.yaml", out)
        assert_refused(outcome, "make-tables", str(ro), "read-only")
        toy = spcreid(capsys, "make-toy-data", "--out", ro / "toy", "--identities", 4)
        assert_refused(toy, "make-toy-data", "read-only")


def test_disk_full_while_writing_tables_leaves_the_previous_set_whole(tmp_path, capsys):
    with tmpfs(tmp_path / "small", "64k") as small:
        out = small / "tables"
        out.mkdir()
        (out / "table1.csv").write_text("previous\n")
        fill(small, keep=6000)  # the first file or two fit, the set does not
        outcome = make_tables(capsys, REPO / "params.yaml", out)
        assert_refused(outcome, "make-tables", "No space left on device", "free space")
        assert sorted(p.name for p in out.iterdir()) == ["table1.csv"]
        assert (out / "table1.csv").read_text() == "previous\n"


def test_disk_full_while_synthesizing_is_one_line_and_resumable(tmp_path, capsys):
    toy = tmp_path / "toy"
    assert spcreid(capsys, "make-toy-data", "--out", toy, "--identities", 4, "--test-identities", 2).code == 0
    manifest = tmp_path / "manifest.csv"
    assert spcreid(capsys, "prepare-data", "--dataset", "toy", "--root", toy, "--out", manifest).code == 0
    with tmpfs(tmp_path / "small", "96k") as small:
        out = small / "synth"
        argv = ["synthesize", "--manifest", manifest, "--out", out, "--copies", 2]
        outcome = spcreid(capsys, *argv)
        line = assert_refused(outcome, "synthesize", "No space left on device", "free space")
        assert "AttributeError" not in line
        assert not leftovers(small)


# ---------------------------------------------------------------------------- leftovers of killed writers


def test_temporary_file_of_a_killed_writer_is_removed_by_the_next_write(tmp_path):
    from spcreid.io import STALE_SECONDS, write_text

    # A writer that died (a pid no process has) mid-save, long enough ago, and a live writer's file.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".summary.json.{dead.pid}.abcd1234.tmp"
    stale.write_text("half")
    old = time.time() - STALE_SECONDS - 60
    os.utime(stale, (old, old))
    live = tmp_path / f".summary.json.{os.getppid()}.efgh5678.tmp"
    live.write_text("in progress")
    os.utime(live, (old, old))
    fresh = tmp_path / f".other.csv.{dead.pid}.ijkl9012.tmp"
    fresh.write_text("maybe on another host")
    unrelated = tmp_path / f".notes.{dead.pid}.backup"
    unrelated.write_text("mine")
    os.utime(unrelated, (old, old))
    write_text(tmp_path / f"{uuid.uuid4().hex}.txt", "new")
    assert not stale.exists()
    assert live.exists() and fresh.exists() and unrelated.exists()


def test_sigkill_during_a_save_leaves_a_temp_file_that_the_rerun_removes(tmp_path):
    from spcreid.io import STALE_SECONDS

    script = (
        "import sys, time\n"
        "from spcreid.io import atomic_write\n"
        "with atomic_write(sys.argv[1]) as handle:\n"
        "    handle.write('partial'); handle.flush(); print('writing', flush=True); time.sleep(60)\n"
    )
    target = tmp_path / "metrics.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen([sys.executable, "-c", script, str(target)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert child.stdout.readline().strip() == "writing"
        child.kill()
    finally:
        child.wait()
    temps = leftovers(tmp_path)
    assert len(temps) == 1 and not target.exists()
    old = time.time() - STALE_SECONDS - 1
    os.utime(tmp_path / temps[0], (old, old))
    rerun = subprocess.run(
        [sys.executable, "-c", "import sys; from spcreid.io import write_json; write_json(sys.argv[1], {})", target],
        env=env,
        check=True,
    )
    assert rerun.returncode == 0 and target.exists() and leftovers(tmp_path) == []


# ---------------------------------------------------------------------------- tables, protocols, model files


def test_two_rows_of_one_table_with_the_same_label_are_refused(tmp_path, capsys):
    params = params_with(
        tmp_path,
        "      - {row: Average sample, dataset: prcc, setting: cc, experiment: ca_ci_average}",
        "      - {row: No sample, dataset: prcc, setting: cc, experiment: ca_ci_average}",
    )
    out = tmp_path / "tables"
    line = assert_refused(make_tables(capsys, params, out), "make-tables", "tables.table3.rows[1]", "rows[0]")
    assert "'No sample'" in line and not out.exists()


@pytest.fixture
def trained_run(toy, oracle_clusters, tmp_path, capsys):
    run = tmp_path / "run"
    assert train(capsys, toy, tiny_params(tmp_path / "params.yaml"), run, "--skip-evaluation").code == 0
    return run


def evaluate(capsys, toy, run: Path, out: Path, protocol: str = "vcclothes"):
    argv = ["evaluate", "--run", run, "--manifest", toy["manifest"], "--protocol", protocol, "--out", out]
    return spcreid(capsys, *argv, "--threads", 1, "--workers", 0)


def test_evaluate_under_another_datasets_protocol_is_refused(toy, trained_run, tmp_path, capsys):
    out = tmp_path / "metrics.json"
    line = assert_refused(evaluate(capsys, toy, trained_run, out, "prcc"), "evaluate", "protocol 'prcc'", "camera")
    assert "--protocol vcclothes" in line
    assert not out.exists() and not out.with_suffix(".per_query.npz").exists()


def test_model_file_whose_metadata_names_another_architecture(toy, trained_run, tmp_path, capsys):
    import torch

    model = trained_run / "model.pt"
    payload = torch.load(model, weights_only=True)
    payload["meta"]["arch"] = "resnet50" if payload["meta"]["arch"] != "resnet50" else "resnet18"
    torch.save(payload, model)
    out = tmp_path / "metrics.json"
    assert_refused(evaluate(capsys, toy, trained_run, out), "evaluate", model, "do not fit", "resnet")
    assert not out.exists()


# ---------------------------------------------------------------------------- unclear messages


def npz_with_long_header(path: Path) -> Path:
    """An .npz whose one member has an .npy header over numpy's safe limit (10,000 bytes), nothing pickled."""
    buffer = bytearray()
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }"
    header += " " * (20000 - len(header)) + "\n"
    buffer += b"\x93NUMPY\x02\x00" + len(header).to_bytes(4, "little") + header.encode()
    buffer += np.zeros(2).tobytes()
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("distmat.npy", bytes(buffer))
    return path


def test_long_npy_header_is_not_called_python_objects(tmp_path, capsys):
    path = npz_with_long_header(tmp_path / "d.npz")
    outcome = spcreid(capsys, "evaluate-dist", path)
    line = assert_refused(outcome, "evaluate-dist", path, "header")
    assert "Python objects" not in line and "allow_pickle" not in line


def test_folder_given_as_the_npz_is_called_a_folder(tmp_path, capsys):
    folder = tmp_path / "d.npz"
    folder.mkdir()
    line = assert_refused(spcreid(capsys, "evaluate-dist", folder), "evaluate-dist", folder, "is a folder")
    assert "does not exist" not in line


class NotWeights:
    pass


def test_refused_pickle_does_not_advise_weights_only_false(tmp_path, capsys):
    import torch

    source = tmp_path / "evil.pth"
    torch.save({"x": NotWeights()}, source)
    dest = tmp_path / "w" / "w.pth"
    outcome = spcreid(capsys, "fetch-weights", "--name", "pise-texture", "--dest", dest, "--file", source)
    line = assert_refused(outcome, "fetch-weights", source, "pickled Python objects")
    assert "weights_only" not in line and not dest.exists()


def test_pack_images_on_an_unfinished_cache_says_to_rerun_synthesize(toy, tmp_path, capsys):
    from spcreid.synthesis.cache import read_index, write_index

    cache = tmp_path / "synth"
    shutil.copytree(toy["synth"], cache)
    index = read_index(cache)
    write_index(cache, index[index["source"] != index["source"].iloc[0]])  # as a killed synthesize leaves it
    argv = ["pack-images", "--manifest", toy["manifest"], "--synthesis", cache, "--copies", 2]
    outcome = spcreid(capsys, *argv, "--height", 32, "--width", 16, "--out", tmp_path / "packed.pt")
    assert_refused(outcome, "pack-images", "rerun it with the same arguments (it resumes)")
    assert not (tmp_path / "packed.pt").exists()


@pytest.mark.parametrize(
    "option, fragment",
    [
        ("method={eps: -2}", "field 'method.eps': -2 is less than"),
        ("method={eps: .nan}", "field 'method.eps' is nan, not a finite number"),
        ("method={sampling: sideways}", "field 'method.sampling': 'sideways' is not one of"),
    ],
    ids=["negative number", "NaN", "string"],
)
def test_nested_config_values_keep_their_yaml_types(option, fragment, tmp_path):
    workdir = copy_workflow(tmp_path / "wf")
    result = snakemake(workdir, "-n", "--config", option)
    log = result.stdout + result.stderr
    assert result.returncode == 1, log[-2000:]
    assert fragment in log and "Traceback" not in log and "is not of type 'number'" not in log


def test_nested_config_number_is_accepted_as_a_number(tmp_path):
    workdir = copy_workflow(tmp_path / "wf")
    result = snakemake(workdir, "-n", "--config", "method={eps: 0.5}")
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-2000:]


# ---------------------------------------------------------------------------- rule logs


def test_no_progress_bar_redraws_when_stderr_is_a_file(toy, tmp_path, capsys):
    # capsys's stderr is not a terminal, as a rule's `log:` file is not: one line per epoch, no bar redraws.
    outcome = train(capsys, toy, tiny_params(tmp_path / "params.yaml"), tmp_path / "run", "--skip-evaluation")
    assert outcome.code == 0, outcome.err
    assert "\r" not in outcome.err and "kNN" not in outcome.err and "Jaccard" not in outcome.err
    archive = prcc_zip(tmp_path)
    outcome = fetch(capsys, archive, tmp_path / "raw")
    assert outcome.code == 0 and "extracting" not in outcome.err and "\r" not in outcome.err


# ---------------------------------------------------------------------------- a newcomer's first run


def test_paper_dry_run_says_vcclothes_needs_an_archive_by_request(tmp_path):
    workdir = copy_workflow(tmp_path / "wf")
    result = snakemake(workdir, "-n", "--config", "profile=paper")
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-2000:]
    assert "datasets.vcclothes (vcclothes) is given out on request only" in log
    assert "--config fetch_vcclothes='--archive PATH'" in log
    assert "datasets.prcc (prcc) is given out" not in log  # PRCC has a public copy
    with_archive = snakemake(workdir, "-n", "--config", "profile=paper", "fetch_vcclothes=--archive x.zip")
    assert "given out on request only" not in with_archive.stdout + with_archive.stderr


def test_end_of_run_summary_names_every_output_folder():
    from spcreid.report.run_summary import summary

    lines = summary("embedded", str(REPO / "results/embedded"), str(REPO / "work/embedded"))
    text = "\n".join(lines)
    assert f"tables:     {REPO}/results/embedded/tables/ (table1.md, table2.md, table3.md, table4.md" in text
    assert f"{REPO}/results/embedded/plots/" in text and f"{REPO}/results/embedded/metrics/" in text
    assert f"snakemake --report {REPO}/results/embedded/report.html" in text


@pytest.mark.parametrize("target", ["reproduce", "rehearsal"])
def test_make_targets_rerun_incomplete_jobs_after_an_interruption(target):
    make = subprocess.run(
        ["make", "-n", "-W", ".venv/bin/.installed", "BIN=/nonexistent", target],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if make.returncode != 0 and "No rule" in make.stderr:
        pytest.skip(make.stderr)
    lines = [line for line in make.stdout.splitlines() if "/snakemake " in line]
    assert lines and all("--rerun-incomplete" in line for line in lines), make.stdout


# ---------------------------------------------------------------------------- own probes: faults


def spcreid_child(*argv) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    code = "import sys; from spcreid.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.Popen(
        [sys.executable, "-c", code, *map(str, argv)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )


def wait_for(condition, child: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.02)


def age(path: Path) -> None:
    """Make ``path`` older than the age below which a leftover may still belong to a live writer elsewhere."""
    from spcreid.io import STALE_SECONDS

    old = time.time() - STALE_SECONDS - 60
    os.utime(path, (old, old))


def test_sigkill_during_make_toy_data_then_rerun_leaves_nothing_behind(tmp_path, capsys):
    out = tmp_path / "toy"
    child = spcreid_child("make-toy-data", "--out", out, "--identities", 24, "--test-identities", 8, "--quiet")
    try:
        wait_for(lambda: any(p.name.endswith(".staging") and any(p.rglob("*.png")) for p in tmp_path.iterdir()), child)
        child.kill()
    finally:
        child.wait()
    (staging,) = [p for p in tmp_path.iterdir() if p.name.endswith(".staging")]
    assert not out.exists()
    age(staging)
    argv = ["make-toy-data", "--out", out, "--identities", 4, "--test-identities", 2, "--quiet"]
    assert spcreid(capsys, *argv).code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toy"]


def test_sigkill_during_extraction_then_rerun_extracts_cleanly(tmp_path, capsys):
    archive = prcc_zip(tmp_path, [many_train_images(3000)])
    dest = tmp_path / "raw"
    child = spcreid_child("fetch-data", "--dataset", "prcc", "--archive", archive, "--dest", dest)
    try:
        wait_for(lambda: len(list((dest / ".prcc.extracting").rglob("*.jpg"))) > 50, child)
        child.kill()
    finally:
        child.wait()
    assert (dest / ".prcc.extracting").exists() and not (dest / "prcc").exists()
    assert fetch(capsys, archive, dest).code == 0
    assert not leftovers(dest) and len(list((dest / "prcc/rgb/train/001").glob("*.jpg"))) > 3000


def test_two_fetch_data_runs_into_one_folder_at_once(tmp_path, capsys):
    archive = prcc_zip(tmp_path, [many_train_images(1500)])
    dest = tmp_path / "raw"
    first = spcreid_child("fetch-data", "--dataset", "prcc", "--archive", archive, "--dest", dest)
    second = spcreid_child("fetch-data", "--dataset", "prcc", "--archive", archive, "--dest", dest)
    outs = [child.communicate(timeout=300) for child in (first, second)]
    assert (first.returncode, second.returncode) == (0, 0), outs
    assert any(b"already extracted" in out for out, _ in outs)
    assert not leftovers(dest) and len(list((dest / "prcc/rgb/train/001").glob("*.jpg"))) > 1500


def test_two_make_tables_into_one_folder_at_once(tmp_path):
    out = tmp_path / "tables"
    argv = ["make-tables", "--params", REPO / "params.yaml", "--metrics-dir", EMBEDDED_METRICS]
    argv += ["--paper-dir", PUBLISHED, "--out", out]
    children = [spcreid_child(*argv) for _ in range(2)]
    outs = [child.communicate(timeout=300) for child in children]
    assert [child.returncode for child in children] == [0, 0], outs
    assert snapshot(out) == snapshot(REPO / "results/embedded/tables") and not leftovers(out)


def test_disk_full_during_extraction_leaves_no_staging(tmp_path, capsys):
    archive = prcc_zip(tmp_path)
    with tmpfs(tmp_path / "small", "256k") as small:
        fill(small, keep=20_000)
        dest = small / "raw"
        assert_refused(fetch(capsys, archive, dest), "fetch-data", "check free space")
        assert not leftovers(small) and not (dest / "prcc").exists()


def test_disk_full_during_make_toy_data(tmp_path, capsys):
    with tmpfs(tmp_path / "small", "256k") as small:
        fill(small, keep=30_000)
        argv = ["make-toy-data", "--out", small / "toy", "--identities", 8, "--test-identities", 4, "--quiet"]
        assert_refused(spcreid(capsys, *argv), "make-toy-data", "No space left on device", "free space")
        assert not (small / "toy").exists() and not leftovers(small)


def test_disk_full_while_writing_evaluate_dist_output(tmp_path, capsys):
    npz = tmp_path / "d.npz"
    np.savez(npz, distmat=np.arange(12, dtype=np.float32).reshape(3, 4), q_pids=np.array([1, 2, 3]))
    with zipfile.ZipFile(npz, "a") as zf:
        for key, value in {"g_pids": [1, 2, 3, 4], "q_camids": [0, 0, 0], "g_camids": [1, 1, 1, 1]}.items():
            with zf.open(f"{key}.npy", "w") as handle:
                np.lib.format.write_array(handle, np.array(value))
    with tmpfs(tmp_path / "small", "64k") as small:
        fill(small, keep=0)
        out = small / "m.json"
        assert_refused(spcreid(capsys, "evaluate-dist", npz, "--out", out), "evaluate-dist", "free space")
        assert not out.exists() and not leftovers(small)


@pytest.mark.parametrize("command", ["fetch-data", "prepare-data", "make-toy-data"])
def test_read_only_destination(command, tmp_path, capsys):
    source = build_tree(tmp_path / "src", TREES["prcc"])
    archive = prcc_zip(tmp_path)
    with tmpfs(tmp_path / "ro", "1m") as ro:
        remount_read_only(ro)
        argv = {
            "fetch-data": ["fetch-data", "--dataset", "prcc", "--archive", archive, "--dest", ro / "raw"],
            "prepare-data": ["prepare-data", "--dataset", "prcc", "--root", source, "--out", ro / "m.csv"],
            "make-toy-data": ["make-toy-data", "--out", ro / "toy", "--identities", 4, "--quiet"],
        }[command]
        assert_refused(spcreid(capsys, *argv), command, str(ro))


def test_output_path_under_a_file_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "afile"
    blocker.write_text("not a folder")
    outcome = make_tables(capsys, REPO / "params.yaml", blocker / "tables")
    assert_refused(outcome, "make-tables", blocker, "is a file, not a folder")
    archive = prcc_zip(tmp_path)
    assert_refused(fetch(capsys, archive, blocker), "fetch-data", blocker, "is a file, not a folder")
    assert blocker.read_text() == "not a folder"


# ---------------------------------------------------------------------------- own probes: inputs


def test_params_file_that_is_not_utf8(tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_bytes(PARAMS.replace("title: ", "title: caf\xe9 ", 1).encode("latin-1"))
    assert_refused(make_tables(capsys, params, tmp_path / "t"), "make-tables", params, "not UTF-8", "save it as UTF-8")


def test_params_path_that_is_a_folder(tmp_path, capsys):
    assert_refused(make_tables(capsys, tmp_path, tmp_path / "t"), "make-tables", tmp_path, "is a folder")


def test_params_with_a_byte_order_mark_is_read(tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text("\ufeff" + PARAMS)
    assert make_tables(capsys, params, tmp_path / "t").code == 0


def test_params_indented_with_a_tab_is_one_line(tmp_path, capsys):
    params = params_with(tmp_path, "  eps: 0.4\n", "\teps: 0.4\n")
    line = assert_refused(make_tables(capsys, params, tmp_path / "t"), "make-tables", params, "not valid YAML")
    assert "line" in line


@pytest.mark.parametrize(
    "old, new, field",
    [
        ("  min_samples: 4\n", "  min_samples: 4.0\n", "method.min_samples"),
        ("\n  P: 8\n", "\n  P: 8.0\n", "method.P"),
    ],
    ids=["min_samples 4.0", "P 8.0"],
)
def test_integer_fields_written_as_floats_are_refused(old, new, field, tmp_path, capsys):
    params = params_with(tmp_path, old, new)
    line = assert_refused(make_tables(capsys, params, tmp_path / "t"), "make-tables", f"field '{field}'")
    assert "is not of type 'integer'" in line


def test_float_seed_is_refused_not_turned_into_seed1_0(tmp_path, capsys):
    params = tmp_path / "params.yaml"
    start = PARAMS.index("seeds:", PARAMS.index("embedded:"))
    end = PARAMS.index("\n", start)
    params.write_text(PARAMS[:start] + "seeds: [1.0, 2, 3]" + PARAMS[end:])
    line = assert_refused(make_tables(capsys, params, tmp_path / "t"), "make-tables", "seeds.0")
    assert "1.0 is not of type 'integer'" in line


def metrics_copy(tmp_path: Path) -> tuple[Path, Path]:
    metrics = tmp_path / "metrics"
    shutil.copytree(EMBEDDED_METRICS, metrics)
    return metrics, sorted((metrics / "prcc/full").glob("seed*.json"))[0]


@pytest.mark.parametrize(
    "content, fragment",
    [
        ("[" * 20000 + "]" * 20000, "nested too deep"),
        (b'{"cc": "caf\xe9"}', "is not valid JSON"),
    ],
    ids=["20,000-deep JSON", "not UTF-8"],
)
def test_unreadable_metrics_file_is_one_line(content, fragment, tmp_path, capsys):
    metrics, victim = metrics_copy(tmp_path)
    victim.write_bytes(content if isinstance(content, bytes) else content.encode())
    out = tmp_path / "t"
    outcome = spcreid(capsys, "make-tables", "--metrics-dir", metrics, "--paper-dir", PUBLISHED, "--out", out)
    assert_refused(outcome, "make-tables", victim, fragment)
    assert not out.exists()


@pytest.mark.parametrize(
    "edit, fragment",
    [
        (lambda t: t.replace("29.6", "abc", 1), "rank1 = 'abc', not a percentage"),
        (lambda t: t.replace("29.6", "2960", 1), "not a percentage in [0, 100]"),
        (lambda t: t.replace("27.4", "-1", 1), "mAP = '-1.0', not a percentage"),
    ],
    ids=["text", "typo 2960", "negative"],
)
def test_bad_paper_value_is_refused(edit, fragment, tmp_path, capsys):
    paper = tmp_path / "published"
    shutil.copytree(PUBLISHED, paper)
    (paper / "table2.csv").write_text(edit((PUBLISHED / "table2.csv").read_text()))
    out = tmp_path / "t"
    args = ["make-tables", "--metrics-dir", EMBEDDED_METRICS, "--paper-dir", paper, "--out", out]
    assert_refused(spcreid(capsys, *args), "make-tables", paper / "table2.csv", "row 'Baseline'", fragment)
    assert not out.exists()


def test_paper_csv_that_is_not_utf8(tmp_path, capsys):
    paper = tmp_path / "published"
    shutil.copytree(PUBLISHED, paper)
    (paper / "table3.csv").write_bytes(b"\xff\xfe" + (PUBLISHED / "table3.csv").read_bytes())
    args = ["make-tables", "--metrics-dir", EMBEDDED_METRICS, "--paper-dir", paper, "--out", tmp_path / "t"]
    assert_refused(spcreid(capsys, *args), "make-tables", paper / "table3.csv", "not a readable CSV")


def test_tar_gz_bomb_is_refused(tmp_path, capsys):
    import io
    import tarfile

    source = build_tree(tmp_path / "src", TREES["prcc"])
    archive = tmp_path / "prcc.tar.gz"

    class Zeros(io.RawIOBase):
        def __init__(self, size):
            self.left = size

        def readable(self):
            return True

        def readinto(self, buffer):
            n = min(len(buffer), self.left)
            buffer[:n] = bytes(n)
            self.left -= n
            return n

    with tarfile.open(archive, "w:gz") as tf:
        tf.add(source / "prcc", arcname="prcc")
        info = tarfile.TarInfo("prcc/padding.bin")
        info.size = 120 << 20
        tf.addfile(info, io.BufferedReader(Zeros(info.size)))
    dest = tmp_path / "raw"
    assert_refused(fetch(capsys, archive, dest), "fetch-data", archive, "zip bomb")
    assert snapshot(dest) == {}


def test_verify_root_that_is_a_file(tmp_path, capsys):
    root = tmp_path / "raw"
    root.write_text("")
    outcome = verify(capsys, "prcc", root)
    assert outcome.code == 1
    assert any("is a file, not a folder" in line for line in problems_of(outcome))


def test_cmyk_jpeg_passes_verification(tmp_path, capsys):
    root = build_tree(tmp_path / "raw", VCCLOTHES_FILES)
    Image.new("CMYK", (8, 16), (10, 20, 30, 40)).save(root / "VC-Clothes/train/0001-01-01-01.jpg")
    assert verify(capsys, "vcclothes", root).code == 0


def test_configfile_alias_bomb_is_refused_before_validation(tmp_path):
    workdir = copy_workflow(tmp_path / "wf")
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    (workdir / "bomb.yaml").write_text("bomb:\n" + "".join(f"  {level}\n" for level in levels))
    result = snakemake(workdir, "-n", "--configfile", "bomb.yaml")
    log = result.stdout + result.stderr
    assert result.returncode == 1 and "alias bomb" in log and len(log) < 20_000


def test_nested_config_keeps_a_string_where_params_yaml_has_one(tmp_path):
    workdir = copy_workflow(tmp_path / "wf")
    result = snakemake(workdir, "-n", "--config", "tables={table4: {compare_to: 0.4}}")
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-2000:]
