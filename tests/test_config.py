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
