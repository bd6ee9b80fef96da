import pytest

from lowlight import config

SMOKE, QUICK, FULL = (config.PROFILES[k] for k in ("smoke", "quick", "full"))


def test_profiles_are_complete_and_ordered():
    assert set(config.PROFILES) == {"smoke", "quick", "full"}
    s, q, f = (config.PROFILES[k].data for k in ("smoke", "quick", "full"))
    assert s.n_test < q.n_test < f.n_test == 200          # the article's N = 200 on full
    assert f.image_size == 512 and FULL.training.batch_size == 16 and FULL.training.stage_epochs == (10, 20, 30)
    assert s.image_size % 32 == 0 and q.image_size % 32 == 0


def test_profile_values_are_the_courses():
    """Every setting of the three profiles, flat: the numbers the committed notebooks were run with."""
    def flat(p):
        return {f"{part}.{k}": v for part in ("data", "training", "finetune") for k, v in vars(getattr(p, part)).items()
                } | {k: getattr(p, k) for k in ("amp", "threads", "seed")}

    common = {"training.lr_scale": 10.0, "finetune.processed_fraction": 0.5, "finetune.crop": None,
              "amp": False, "threads": 2, "seed": 0}
    assert flat(SMOKE) == common | {
        "data.image_size": 64, "data.eval_size": 64, "data.n_train": 16, "data.n_val": 8, "data.n_test": 8,
        "data.num_workers": 0, "training.batch_size": 4, "training.stage_epochs": (1, 1, 1),
        "training.baseline_epochs": 1, "training.steps_per_epoch": 2, "training.llie_pretrain_steps": 3,
        "finetune.size": 64, "finetune.portraits": (8, 4, 6), "finetune.scene_crops": 1, "finetune.batch_size": 2,
        "finetune.steps": (2, 2, 2), "finetune.epochs": (1, 1, 1), "finetune.seeds": (0,)}
    assert flat(QUICK) == common | {
        "data.image_size": 128, "data.eval_size": 128, "data.n_train": 384, "data.n_val": 48, "data.n_test": 64,
        "data.num_workers": 0, "training.batch_size": 8, "training.stage_epochs": (2, 3, 3),
        "training.baseline_epochs": 8, "training.steps_per_epoch": None, "training.llie_pretrain_steps": 100,
        "finetune.size": 256, "finetune.crop": 192, "finetune.portraits": (160, 16, 24), "finetune.scene_crops": 10,
        "finetune.batch_size": 4, "finetune.steps": (20, 20, 20), "finetune.epochs": (1, 1, 1),
        "finetune.seeds": (0, 1, 2)}
    assert flat(FULL) == common | {
        "data.image_size": 512, "data.eval_size": 512, "data.n_train": 2000, "data.n_val": 100, "data.n_test": 200,
        "data.num_workers": 8, "training.batch_size": 16, "training.stage_epochs": (10, 20, 30),
        "training.baseline_epochs": 20, "training.steps_per_epoch": None, "training.llie_pretrain_steps": 2000,
        "training.lr_scale": 1.0, "finetune.size": 512, "finetune.portraits": (1000, 50, 200),
        "finetune.scene_crops": 40, "finetune.batch_size": 16, "finetune.steps": (625, 1250, 1875),
        "finetune.epochs": (10, 20, 30), "finetune.seeds": (0, 1, 2), "amp": True, "threads": None}
    assert FULL.to_dict()["finetune"]["steps"] == (625, 1250, 1875)


def test_default_profile_from_env(monkeypatch):
    monkeypatch.delenv(config.ENV_PROFILE, raising=False)
    assert config.get_profile().name == "quick"
    monkeypatch.setenv(config.ENV_PROFILE, "smoke")
    assert config.get_profile().name == "smoke"
    assert config.get_profile("full").name == "full"   # the parameter wins over the environment


def test_unknown_profile_lists_valid_ones(monkeypatch):
    with pytest.raises(ValueError, match="smoke, quick, full"):
        config.get_profile("fast")
    monkeypatch.setenv(config.ENV_PROFILE, "tiny")
    with pytest.raises(ValueError, match="LOWLIGHT_PROFILE"):
        config.get_profile()


def test_profiles_carry_the_modnet_fine_tune():
    s, q, f = (config.PROFILES[k].finetune for k in ("smoke", "quick", "full"))
    for p in (s, q, f):
        assert len(p.portraits) == len(p.steps) == len(p.epochs) == 3
        assert p.size % 32 == 0 and p.batch_size >= 1 and p.scene_crops >= 1 and len(p.seeds) >= 1
        assert all(st >= ep >= 1 for st, ep in zip(p.steps, p.epochs))   # at least one step per epoch
        assert p.batch_size <= p.portraits[0]
    assert s.size < q.size <= f.size == 512 and f.batch_size == 16 and f.epochs == (10, 20, 30)
    assert sum(s.steps) < sum(q.steps) < sum(f.steps)
    assert SMOKE.threads == QUICK.threads == 2 and FULL.threads is None   # fixed on CPU (determinism), free on a GPU


def test_library_functions_take_a_resolved_profile_only(monkeypatch):
    monkeypatch.setenv(config.ENV_PROFILE, "smoke")
    assert config.require_profile(FULL) is FULL
    for bad in ("quick", None, FULL.data):
        with pytest.raises(TypeError, match=r"RunLayout.of: argument 'profile' must be a lowlight.config.Profile"):
            config.RunLayout.of(bad)
    with pytest.raises(TypeError, match=r"get_profile\('quick'\)"):       # the message says how to get one
        config.run_dir("quick")
    with pytest.raises(TypeError, match="argument 'prof'"):
        config.require_profile("smoke", "prof")


def test_run_layout_knows_where_runs_live(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "RUNS_DIR", tmp_path / "runs")
    lay = config.RunLayout.of(SMOKE)
    root = tmp_path / "runs" / "smoke"
    assert lay.profile == "smoke" and lay.root == root
    assert lay.llie_checkpoint == root / "llie" / "zerodce.pt"
    assert lay.train_dir("modnet", "staged", 1) == root / "train" / "modnet-staged" / "seed1"
    assert lay.checkpoint("modnet", "onestage", 0, "full") == (
        root / "train" / "modnet-onestage" / "seed0" / "full" / "last.pt")
    assert lay.eval_dir == root / "eval" and lay.executed_dir == root / "executed"
    assert config.RunLayout.of(QUICK).root == tmp_path / "runs" / "quick"
    assert config.RunLayout.of(SMOKE, root=tmp_path / "x").llie_checkpoint == tmp_path / "x" / "llie" / "zerodce.pt"
    assert not root.exists()            # a layout only names paths, it creates nothing


def test_set_threads_follows_the_profile():
    import torch

    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert config.set_threads(SMOKE) == 2 == torch.get_num_threads()
        torch.set_num_threads(1)
        assert config.set_threads(FULL) == 1          # threads=None leaves torch's setting alone
    finally:
        torch.set_num_threads(old)


def test_paths(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "RUNS_DIR", tmp_path / "runs")
    monkeypatch.setattr(config, "FIGURES_DIR", tmp_path / "figures")
    assert config.run_dir(SMOKE) == tmp_path / "runs" / "smoke" and (tmp_path / "runs" / "smoke").is_dir()
    assert config.figures_dir(QUICK) == tmp_path / "figures"
    assert config.figures_dir(SMOKE) == tmp_path / "runs" / "smoke" / "figures"


def test_device_cpu_and_missing_cuda():
    import torch

    assert config.get_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        assert config.get_device().type == "cpu"
        with pytest.raises(ValueError, match="CUDA"):
            config.get_device("cuda")


def test_save_fig_is_atomic_and_deterministic(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lowlight import viz

    monkeypatch.setattr(config, "RUNS_DIR", tmp_path)
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    p1 = viz.save_fig(fig, "x", SMOKE)
    b1 = p1.read_bytes()
    p2 = viz.save_fig(fig, "x", SMOKE)
    assert p1 == p2 == tmp_path / "smoke" / "figures" / "x.png" and p2.read_bytes() == b1
    assert [f.name for f in p1.parent.iterdir()] == ["x.png"]  # no temp files left
    with pytest.raises(ValueError, match="plain file stem"):
        viz.save_fig(fig, "../x", SMOKE)
    plt.close(fig)
