"""Extraction, interpolation, codes, fitting and their CLI forms on a tiny model of two meshes."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
from compact_sdf.checkpoint import load_model
from compact_sdf.cli import main
from compact_sdf.codes_io import decoder_hash, export_codes, import_codes, read_codes
from compact_sdf.config import ExtractConfig, get_preset
from compact_sdf.data import prepare_mesh
from compact_sdf.data.normalize import Normalization
from compact_sdf.errors import InputError
from compact_sdf.evaluate import ABLATION
from compact_sdf.extract.band_check import COVERAGE_GOAL, band_coverage, generalization_set
from compact_sdf.extract.fusion import extract_shape
from compact_sdf.extract.interpolate import interpolate_shapes, path_weights
from compact_sdf.extract.manifold import defects
from compact_sdf.extract.mesh import MeshArrays
from compact_sdf.metrics import point_metrics
from compact_sdf.training.add_shape import fit_shape
from compact_sdf.training.train import train

BOX_EXTENTS = np.array([2.8, 1.6, 1.2])  # own units; normalised (longest side 1.8): 1.8, 1.03, 0.77


def write_meshes(folder: Path) -> dict[str, Path]:
    """A sphere and a box away from the origin and not unit-sized, as PLY files named by shape."""
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=0.3)
    sphere.apply_translation((1.0, 2.0, 3.0))
    box = trimesh.creation.box(extents=BOX_EXTENTS)
    box.apply_translation((-1.0, 0.0, 0.0))
    paths = {"sphere": folder / "sphere.ply", "box": folder / "box.ply"}
    sphere.export(paths["sphere"])
    box.export(paths["box"])
    return paths


@dataclass
class Trained:
    model_dir: Path
    meshes: dict[str, Path]
    cache: Path

    def copy(self, dest: Path) -> Path:
        shutil.copytree(self.model_dir, dest)
        return dest


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Trained:
    root = tmp_path_factory.mktemp("model")
    meshes = write_meshes(root)
    cfg = get_preset("tiny")
    cfg = replace(cfg, train=replace(cfg.train, device="cpu"))
    shapes = [prepare_mesh(p, cfg=cfg.sampling, cache_dir=root / "cache") for p in meshes.values()]
    train(root / "two", shapes, cfg, sources={k: str(v) for k, v in meshes.items()})
    return Trained(root / "two", meshes, root / "cache")


def norm_of(loaded, name: str) -> Normalization:
    return loaded.shapes[loaded.shape_index(name)].normalization


def unit_metrics(a: MeshArrays, b: MeshArrays, norm: Normalization) -> dict[str, float]:
    """Sample-based metrics in unit coordinates for two meshes in the own coordinates of ``norm``."""
    pa = norm.to_unit(a.to_trimesh().sample(20_000, seed=0))
    pb = norm.to_unit(b.to_trimesh().sample(20_000, seed=1))
    return point_metrics(pa, pb)


def test_extract_shape_in_own_coordinates(trained: Trained) -> None:
    loaded = load_model(trained.model_dir)
    cfg = ExtractConfig(resolution=40)
    sphere = extract_shape(loaded, "sphere", cfg)
    radii = np.linalg.norm(sphere.vertices - np.array([1.0, 2.0, 3.0]), axis=1)
    assert abs(np.median(radii) - 0.3) < 0.04
    box = extract_shape(loaded, "box", cfg)
    assert np.allclose(np.ptp(box.vertices, axis=0), BOX_EXTENTS, rtol=0.15)
    assert np.allclose(box.vertices.mean(axis=0), (-1.0, 0.0, 0.0), atol=0.15)
    for mode in ("generalization", "overfitting"):
        other = extract_shape(loaded, "box", cfg, mode=mode)
        assert unit_metrics(other, box, norm_of(loaded, "box"))["chamfer"] < 0.02
    with pytest.raises(InputError, match="this model knows"):
        extract_shape(loaded, "teapot", cfg)
    with pytest.raises(InputError, match="mode"):
        extract_shape(loaded, "box", cfg, mode="both")


def test_interpolation_endpoints_reproduce_the_shapes(trained: Trained) -> None:
    loaded = load_model(trained.model_dir)
    cfg = ExtractConfig(resolution=32)
    ends = [extract_shape(loaded, n, cfg) for n in ("sphere", "box")]
    for mode in ("linear", "slerp"):
        path = interpolate_shapes(loaded, ["sphere", "box"], 3, mode, cfg)
        assert len(path) == 3
        for got, want in ((path[0], ends[0]), (path[-1], ends[1])):
            assert np.array_equal(got.faces, want.faces) and np.allclose(
                got.vertices, want.vertices, atol=1e-5
            )
        middle = path[1].vertices.mean(axis=0)
        assert np.all((middle > np.array([-1.2, -0.2, -0.2])) & (middle < np.array([1.2, 2.2, 3.2])))


def test_in_betweens_use_the_between_mode_and_ends_the_extract_mode(trained: Trained) -> None:
    from compact_sdf.extract.blend import extract_blend
    from compact_sdf.extract.connect import JOIN_GAP
    from compact_sdf.extract.interpolate import interpolate_codes, interpolate_normalizations

    loaded = load_model(trained.model_dir)
    cfg = ExtractConfig(resolution=32)
    names = ["sphere", "box"]
    mid = interpolate_codes(torch.stack([loaded.code(n) for n in names]), 3)[1]
    place = interpolate_normalizations([norm_of(loaded, n) for n in names], path_weights(2, 3))[1]
    for between in ("blend", "generalization", "fused", "same"):
        path = interpolate_shapes(loaded, names, 3, "linear", cfg, between_mode=between)
        if between == "blend":  # the default: s_g at the code plus each end's faded residual
            want_mid = extract_blend(loaded, names, mid, path_weights(2, 3)[1], cfg, place, join_gap=JOIN_GAP)
        else:
            want_mid = extract_shape(
                loaded, mid, cfg, "fused" if between == "same" else between, normalization=place
            )
        assert np.allclose(path[1].vertices, want_mid.vertices, atol=1e-5)
        want_end = extract_shape(loaded, "box", cfg, "fused")
        assert np.allclose(path[2].vertices, want_end.vertices, atol=1e-5)
    with pytest.raises(InputError, match="between_mode"):
        interpolate_shapes(loaded, names, 3, between_mode="blurry")


def test_every_extraction_path_is_manifold(trained: Trained) -> None:
    """Reconstruct (each mode and fusion), interpolate, live blend (weights): no duplicated face and
    no edge with more than two faces; the fit path is checked in the fit test."""
    loaded = load_model(trained.model_dir)
    cfg = ExtractConfig(resolution=48)
    meshes = [extract_shape(loaded, "box", cfg, mode=m) for m in ("fused", "generalization", "overfitting")]
    meshes.append(extract_shape(loaded, "sphere", replace(cfg, fusion="paper")))
    meshes += interpolate_shapes(loaded, ["sphere", "box"], 3, "slerp", cfg)
    meshes += interpolate_shapes(loaded, ["sphere", "box"], [[0.3, 0.7], [0.8, 0.2]], "linear", cfg)
    for mesh in meshes:
        assert len(mesh.faces) > 100 and defects(mesh.faces).manifold


def test_codes_export_import_round_trip(trained: Trained, tmp_path: Path) -> None:
    loaded = load_model(trained.model_dir)
    out = export_codes(loaded, tmp_path / "codes.npz")
    names, codes, meta = read_codes(out)
    assert names == ["sphere", "box"] and codes.shape == (2, loaded.model.cfg.code_dim)
    assert meta["code_size"] == codes.shape[1] and meta["model_hash"] == decoder_hash(
        loaded.model.state_dict()
    )
    assert meta["shapes"]["box"]["normalization"] == norm_of(loaded, "box").to_dict()
    single = export_codes(loaded, tmp_path / "codes.json")
    assert np.allclose(json.loads(single.read_text())["codes"], codes)

    # A copy of the model whose codes were scrambled gets its shapes back from the export.
    copy = trained.copy(tmp_path / "copy")
    data = torch.load(copy / "checkpoint.pt", weights_only=True)
    data["model"]["codes.weight"] = torch.randn_like(data["model"]["codes.weight"])
    torch.save(data, copy / "checkpoint.pt")
    assert json.loads((copy / "model.json").read_text())["band_coverage"].keys() == {"sphere", "box"}
    assert import_codes(copy, out) == ["sphere", "box"]
    assert json.loads((copy / "model.json").read_text())["band_coverage"] == {}  # measured for other codes
    restored = load_model(copy)
    assert torch.equal(restored.model.codes.weight, loaded.model.codes.weight)
    cfg = ExtractConfig(resolution=32)
    a, b = extract_shape(restored, "box", cfg), extract_shape(loaded, "box", cfg)
    assert np.array_equal(a.faces, b.faces) and np.allclose(a.vertices, b.vertices)

    # Under a new name the code is appended as a new shape with its placement.
    meta["names"] = ["sphere", "ball"]
    meta["shapes"]["ball"] = meta["shapes"].pop("box")
    np.savez(tmp_path / "renamed.npz", codes=codes, names=np.array(["sphere", "ball"]))
    (tmp_path / "renamed.json").write_text(json.dumps(meta))
    import_codes(copy, tmp_path / "renamed.npz")
    grown = load_model(copy)
    assert grown.names == ["sphere", "box", "ball"]
    assert torch.equal(grown.code("ball"), loaded.code("box"))
    assert norm_of(grown, "ball") == norm_of(loaded, "box")

    np.savez(tmp_path / "wide.npz", codes=np.zeros((1, 99), np.float32), names=np.array(["x"]))
    with pytest.raises(InputError, match="size 99"):
        import_codes(copy, tmp_path / "wide.npz")


def test_code_fit_recovers_a_training_shape(trained: Trained, tmp_path: Path) -> None:
    copy = trained.copy(tmp_path / "fit")
    cfg = load_model(copy).config
    cfg = replace(cfg, train=replace(cfg.train, samples_per_shape=1000, device="cpu"))
    samples = prepare_mesh(trained.meshes["box"], name="box_again", cfg=cfg.sampling, cache_dir=trained.cache)
    result = fit_shape(copy, samples, cfg, mode="code", iterations=150)
    assert result.mode == "code" and np.isfinite(result.loss_gen)
    loaded = load_model(copy)
    assert loaded.names == ["sphere", "box", "box_again"]
    # the band check of the fit measures the new code's row, not the first ones
    rows = band_coverage(
        loaded.model, [generalization_set(samples, torch.device("cpu"))] * 3, loaded.config, [0, 1, 2]
    )
    # the box measured on the sphere's row is far outside the band, on its own two rows inside
    assert rows[0].share < 0.9 and min(rows[1].share, rows[2].share) >= COVERAGE_GOAL
    assert result.band_misses == {} and result.band_advice == ""
    recorded = json.loads((copy / "model.json").read_text())["band_coverage"]
    assert recorded["box_again"]["share"] == pytest.approx(rows[2].share)
    # the fit starts from the code that explains the shape best: the box holds after one iteration
    once = fit_shape(
        trained.copy(tmp_path / "once"), replace(samples, name="box_once"), cfg, mode="code", iterations=1
    )
    assert once.band_misses == {}
    # and a fit that stops improving ends early: two looks without progress, not all 800 iterations
    early = fit_shape(trained.copy(tmp_path / "early"), replace(samples, name="box_early"), cfg, mode="code")
    assert early.band_misses == {} and early.iterations < 800
    # a shape unlike both (a thin ring) does not, and the advice says what to do
    ring = tmp_path / "ring.ply"
    trimesh.creation.torus(0.5, 0.08).export(ring)
    ring_samples = prepare_mesh(ring, name="ring", cfg=cfg.sampling, cache_dir=trained.cache)
    unfit = fit_shape(trained.copy(tmp_path / "unfit"), ring_samples, cfg, mode="code", iterations=1)
    assert unfit.band_misses["ring"] < COVERAGE_GOAL and "--mode full" in unfit.band_advice
    cfg = ExtractConfig(resolution=32)
    fitted, box, sphere = (extract_shape(loaded, n, cfg) for n in ("box_again", "box", "sphere"))
    assert defects(fitted.faces).manifold
    box_norm = norm_of(loaded, "box")
    sphere_here = box_norm.from_unit(norm_of(loaded, "sphere").to_unit(sphere.vertices)).astype(np.float32)
    to_box = unit_metrics(fitted, box, box_norm)
    to_sphere = unit_metrics(fitted, MeshArrays(sphere_here, sphere.faces, sphere.normals), box_norm)
    assert to_box["chamfer"] < 0.25 * to_sphere["chamfer"]
    assert to_box["fscore@0.01"] > to_sphere["fscore@0.01"]
    with pytest.raises(InputError, match="already has a shape named 'box'"):
        fit_shape(
            copy,
            prepare_mesh(trained.meshes["box"], cfg=load_model(copy).config.sampling),
            mode="code",
            iterations=5,
        )


@pytest.mark.slow
def test_cli_forms(trained: Trained, tmp_path: Path, capsys) -> None:
    model = str(trained.model_dir)
    out = tmp_path / "box.ply"
    assert (
        main(["extract", model, "--shape", "box", "--resolution", "32", "--band", "3", "--out", str(out)])
        == 0
    )
    assert len(trimesh.load(out).faces) > 100
    assert main(["extract", model, "--shape", "box", "--resolution", "24", "--mode", "generalization",
                 "--out", str(tmp_path / "box.obj")]) == 0  # fmt: skip
    assert main(["extract", model, "--shape", "nope", "--out", str(out)]) == 2
    assert "this model knows: sphere, box" in capsys.readouterr().err

    steps = tmp_path / "steps"
    args = ["interpolate", model, "--from", "sphere", "--to", "box", "--steps", "3", "--mode", "slerp"]
    assert main([*args, "--resolution", "24", "--out", str(steps)]) == 0
    assert sorted(p.name for p in steps.iterdir()) == ["step_000.ply", "step_001.ply", "step_002.ply"]

    codes = tmp_path / "codes.npz"
    assert main(["codes", "export", model, "--out", str(codes)]) == 0
    assert np.load(codes)["codes"].shape == (2, 16)
    copy = trained.copy(tmp_path / "copy")
    assert main(["codes", "import", str(copy), str(codes)]) == 0

    metrics = tmp_path / "m.json"
    args = ["evaluate", model, "--shape", "box", "--mesh", str(trained.meshes["box"]), "--resolution", "32"]
    assert main([*args, "--samples", "20000", "--json", str(metrics)]) == 0
    values = json.loads(metrics.read_text())
    assert 0 < values["chamfer"] < 0.01 and values["fscore@0.01"] > 0.3

    ablation = tmp_path / "ablate.json"
    args = ["ablate", model, "--shape", "box", "--mesh", str(trained.meshes["box"]), "--resolution", "24"]
    assert main([*args, "--samples", "5000", "--json", str(ablation)]) == 0
    table = json.loads(ablation.read_text())
    assert list(table) == list(ABLATION) == ["generalization", "overfitting", "paper_n3", "fused"]
    assert all({"chamfer", "fscore@0.005", "fscore@0.01"} <= set(entry) for entry in table.values())

    assert (
        main(
            [
                "fit",
                str(copy),
                str(trained.meshes["box"]),
                "--name",
                "box2",
                "--mode",
                "code",
                "--iterations",
                "10",
            ]
        )
        == 0
    )
    assert load_model(copy).names == ["sphere", "box", "box2"]
    args = ["fit", str(copy), str(trained.meshes["sphere"]), "--name", "ball", "--full", "--steps", "3"]
    assert main([*args, "--cache", str(trained.cache)]) == 0
    grown = load_model(copy)
    assert grown.names == ["sphere", "box", "box2", "ball"] and grown.step == 103


def test_the_default_fit_of_an_unlike_shape_fine_tunes_and_holds_it_or_warns(
    trained: Trained, tmp_path: Path
) -> None:
    """Add to Model's default (auto) on a ring, a shape unlike the model's sphere and box: the code fit
    alone (one iteration, so it surely misses the band) does not hold it, so the model is fine-tuned
    with the ring added; what comes out either holds every shape or says what to do."""
    from compact_sdf import tasks

    copy = trained.copy(tmp_path / "auto")
    ring = tmp_path / "ring.ply"
    trimesh.creation.torus(major_radius=0.8, minor_radius=0.25).export(ring)
    before = load_model(copy).step
    req = tasks.FitRequest(str(copy), str(ring), iterations=1, extra_steps=20, cache_dir=str(trained.cache))
    assert req.mode == "auto"
    seen: list[tuple[str, float]] = []
    result = tasks.fit(req, progress=lambda stage, f: seen.append((stage, f)))
    fractions = [f for _, f in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0  # one bar: sampling, code, fine-tune
    assert any(stage.startswith("fine-tune step 20/20") for stage, _ in seen)
    assert set(result.code_misses) == {"ring"} and result.code_misses["ring"] < COVERAGE_GOAL
    assert result.mode == "full" and result.iterations == 20
    grown = load_model(copy)
    assert grown.names == ["sphere", "box", "ring"] and grown.step == before + 20
    assert not result.band_misses or "train longer" in result.band_advice
    kept = json.loads((copy / "model.json").read_text())["band_coverage"]
    assert set(kept) == {"sphere", "box", "ring"}


@pytest.mark.parametrize(
    ("content", "suffix", "why"),
    [
        (b"not json at all", ".json", "is not valid JSON (line 1, column 1)"),
        (b'{"names": ["a"]}', ".json", "it has no 'codes' entry"),
        (b"PK\x03\x04 cut short", ".npz", "is not a complete .npz archive"),
        (b'{"names": ["a"], "codes": [[1.0, NaN]]}', ".json", "codes that are not numbers"),
    ],
)
def test_a_bad_codes_file_is_refused_in_words_naming_the_users_file(
    tmp_path: Path, content: bytes, suffix: str, why: str
) -> None:
    """The service imports a temporary copy: messages name the file the user chose, and say what is
    wrong without Python's exception names."""
    copy = tmp_path / f"codes{suffix}"
    copy.write_bytes(content)
    with pytest.raises(InputError) as caught:
        read_codes(copy, "my shapes" + suffix)
    message = str(caught.value)
    assert f"'my shapes{suffix}'" in message and why in message
    assert f"codes{suffix}" not in message  # not the temporary copy's name
    assert not any(word in message for word in ("Error", "Exception", "Traceback"))


def test_a_fine_tune_lasts_the_presets_steps_not_a_collections_total() -> None:
    from compact_sdf.training.add_shape import fine_tune_steps
    from compact_sdf.training.scale import for_collection

    preview = get_preset("preview")
    assert fine_tune_steps(for_collection(preview, 50)) == preview.train.steps == 600
    assert fine_tune_steps(preview.override({"train.steps": 20})) == 20  # a shorter model's own


def test_a_reconstruction_says_what_it_lost_against_its_source(
    trained: Trained, tmp_path: Path, capsys
) -> None:
    """The model records each source's area, genus and parts; a reconstruction that keeps them says
    nothing, one that does not says what it lost (here: a source recorded with holes the box lacks)."""
    from compact_sdf import tasks
    from compact_sdf.checkpoint import read_checkpoint, save_checkpoint
    from compact_sdf.service.live import mesh_for
    from compact_sdf.service.paths import DataDir

    recorded = {
        s["name"]: s["figures"] for s in json.loads((trained.model_dir / "model.json").read_text())["shapes"]
    }
    assert recorded["sphere"]["genus"] == 0 and recorded["sphere"]["parts"] == 1
    assert recorded["sphere"]["area"] == pytest.approx(4 * np.pi * 0.3**2, rel=0.01)
    kept = tasks.extract(tasks.ExtractRequest(str(trained.model_dir), "sphere", resolution=48, device="cpu"))
    assert kept.lost == () and len(kept.mesh.faces) > 100

    data = DataDir(tmp_path / "data")
    model = trained.copy(data.model_dir("0" * 32))
    payload = read_checkpoint(model)
    box = next(s for s in payload["shapes"] if s["name"] == "box")
    box["figures"] = {**box["figures"], "genus": 3, "area": box["figures"]["area"] * 1.5}
    save_checkpoint(model, {k: v for k, v in payload.items() if k not in ("format", "version")})
    out = tasks.extract(tasks.ExtractRequest(str(model), "box", resolution=48, device="cpu"))
    assert out.lost[0].startswith("genus 0 where the source has 3 (holes narrower than")
    assert out.lost[1].startswith("area -3") and "thin parts lost" in out.lost[1]
    params = {"model_id": "0" * 32, "shapes": ["box"], "weights": None, "resolution": 48, "format": "raw"}
    assert mesh_for(data, "cpu", params)["lost"] == list(out.lost)  # the mesh route's X-Mesh-Lost
    assert (
        main(
            ["extract", str(model), "--shape", "box", "--resolution", "32", "--out", str(tmp_path / "b.ply")]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert (
        "warning: box differs from its source: genus 0 where the source has 3" in err
        and "--preset balanced" in err
    )
