import pytest

from lowlight import config


def test_profiles_are_complete_and_ordered():
    assert set(config.PROFILES) == {"smoke", "quick", "full"}
    s, q, f = (config.PROFILES[k] for k in ("smoke", "quick", "full"))
    assert s.n_test < q.n_test < f.n_test == 200          # the article's N = 200 on full
    assert f.image_size == 512 and f.batch_size == 16 and f.stage_epochs == (10, 20, 30)
    assert s.image_size % 32 == 0 and q.image_size % 32 == 0


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
    s, q, f = (config.PROFILES[k] for k in ("smoke", "quick", "full"))
    for p in (s, q, f):
        assert len(p.ft_n) == len(p.ft_steps) == len(p.ft_epochs) == 3
        assert p.ft_size % 32 == 0 and p.ft_batch >= 1 and p.ft_scene_crops >= 1 and len(p.seeds) >= 1
        assert all(st >= ep >= 1 for st, ep in zip(p.ft_steps, p.ft_epochs))   # at least one step per epoch
        assert p.ft_batch <= p.ft_n[0]
    assert s.ft_size < q.ft_size <= f.ft_size == 512 and f.ft_batch == 16 and f.ft_epochs == (10, 20, 30)
    assert sum(s.ft_steps) < sum(q.ft_steps) < sum(f.ft_steps)
    assert s.threads == q.threads == 2 and f.threads is None     # fixed on CPU (determinism), free on a GPU


def test_as_profile_accepts_profiles_names_and_none(monkeypatch):
    monkeypatch.setenv(config.ENV_PROFILE, "smoke")
    p = config.PROFILES["full"]
    assert config.as_profile(p) is p
    assert config.as_profile("quick") is config.PROFILES["quick"]
    assert config.as_profile(None) is config.PROFILES["smoke"]
    with pytest.raises(ValueError, match="valid profiles"):
        config.as_profile("tiny")


def test_run_layout_knows_where_runs_live(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "RUNS_DIR", tmp_path / "runs")
    lay = config.RunLayout.of("smoke")
    root = tmp_path / "runs" / "smoke"
    assert lay.profile == "smoke" and lay.root == root
    assert lay.llie_checkpoint == root / "llie" / "zerodce.pt"
    assert lay.train_dir("modnet", "staged", 1) == root / "train" / "modnet-staged" / "seed1"
    assert lay.checkpoint("modnet", "onestage", 0, "full") == (
        root / "train" / "modnet-onestage" / "seed0" / "full" / "last.pt")
    assert lay.eval_dir == root / "eval" and lay.executed_dir == root / "executed"
    assert config.RunLayout.of(config.PROFILES["quick"]).root == tmp_path / "runs" / "quick"
    assert config.RunLayout.of("smoke", root=tmp_path / "x").llie_checkpoint == tmp_path / "x" / "llie" / "zerodce.pt"
    assert not root.exists()            # a layout only names paths, it creates nothing


def test_set_threads_follows_the_profile():
    import torch

    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert config.set_threads("smoke") == 2 == torch.get_num_threads()
        torch.set_num_threads(1)
        assert config.set_threads("full") == 1          # threads=None leaves torch's setting alone
    finally:
        torch.set_num_threads(old)


def test_paths(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "RUNS_DIR", tmp_path / "runs")
    monkeypatch.setattr(config, "FIGURES_DIR", tmp_path / "figures")
    assert config.run_dir("smoke") == tmp_path / "runs" / "smoke" and (tmp_path / "runs" / "smoke").is_dir()
    assert config.figures_dir("quick") == tmp_path / "figures"
    assert config.figures_dir("smoke") == tmp_path / "runs" / "smoke" / "figures"


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
    p1 = viz.save_fig(fig, "x", "smoke")
    b1 = p1.read_bytes()
    p2 = viz.save_fig(fig, "x", "smoke")
    assert p1 == p2 == tmp_path / "smoke" / "figures" / "x.png" and p2.read_bytes() == b1
    assert [f.name for f in p1.parent.iterdir()] == ["x.png"]  # no temp files left
    with pytest.raises(ValueError, match="plain file stem"):
        viz.save_fig(fig, "../x", "smoke")
    plt.close(fig)
