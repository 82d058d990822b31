import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from mdsgap import plots  # noqa: E402


def test_seed_band_draws_the_seed_mean_its_band_and_the_reference_dashed():
    summary = pd.DataFrame({"alpha": [0.0, 0.5, 1.0], "value": [1.0, 2.0, 3.0], "low": [0.5, 1.5, 2.5],
                            "high": [1.5, 2.5, 3.5], "main": [4.0, 5.0, 6.0]})
    fig, ax = plt.subplots()
    plots.seed_band(ax, summary, "alpha", "zero-shot", "main", color="crimson")
    seeds_line, main_line = ax.get_lines()
    assert seeds_line.get_label() == "zero-shot (seeds)" and main_line.get_label() == "zero-shot (main)"
    assert np.allclose(seeds_line.get_ydata(), [1, 2, 3]) and np.allclose(main_line.get_ydata(), [4, 5, 6])
    assert main_line.get_linestyle() == "--" and main_line.get_color() == seeds_line.get_color() == "crimson"
    band = ax.collections[0].get_paths()[0].vertices
    assert band[:, 1].min() == 0.5 and band[:, 1].max() == 3.5
    plt.close(fig)


def test_coherence_by_m_draws_a_panel_per_space_and_metric_and_chance_only_for_win_rates():
    rows = [{"space": sp, "tool": t, "m": m, "metric": me, "value": 0.6, "low": 0.5, "high": 0.7}
            for sp in ("CLIP space", "factor space") for t in ("TopK", "NCL") for m in (10, 20)
            for me in ("EmbSim", "WinRate", "vs random SAE")]
    fig = plots.coherence_by_m(pd.DataFrame(rows))
    axes = np.array(fig.axes).reshape(2, 3)
    assert [ax.get_ylabel() for ax in axes[0]] == ["EmbSim", "WinRate", "vs random SAE"]
    assert [ax.get_title() for ax in axes[:, 0]] == ["CLIP space", "factor space"]
    assert all(len(ax.containers) == 2 for ax in axes.flat)  # one errorbar per tool
    chance = [[len([ln for ln in ax.get_lines() if ln.get_linestyle() == ":"]) for ax in row] for row in axes]
    assert chance == [[0, 1, 1], [0, 1, 1]]
    assert list(axes[0, 0].get_xticks()) == [10, 20]
    plt.close(fig)


def test_removal_against_random_puts_each_class_change_beside_its_random_sets():
    rows = [{"rule": r, "readout": me, "class": c, "change": 0.1 * i, "random mean": 0.2,
             "random 2.5%": 0.1, "random 97.5%": 0.3}
            for r in ("mean ± k std", "interval") for me in ("zero-shot", "recall@1")
            for i, c in enumerate(("ImgD", "TxtD", "CMD"))]
    fig = plots.removal_against_random(pd.DataFrame(rows))
    assert [ax.get_title() for ax in fig.axes] == [
        "zero-shot (mean ± k std rule)", "recall@1 (mean ± k std rule)", "zero-shot (interval rule)",
        "recall@1 (interval rule)"]
    drops = fig.axes[0].collections[-1].get_offsets()[:, 1]  # the red points, one per class
    assert np.allclose(drops, [0.0, 0.1, 0.2])
    plt.close(fig)


def test_dose_response_says_so_where_no_dose_has_a_control():
    rows = [{"readout": "zero-shot", "class": "ImgD", "dose": 4, "change": np.nan, "random mean": np.nan,
             "random 2.5%": np.nan, "random 97.5%": np.nan, "note": "no control: 4 latents, 2 outside"}]
    fig = plots.dose_response(pd.DataFrame(rows))
    assert "no dose has a matched control" in [t.get_text() for t in fig.axes[0].texts]
    plt.close(fig)


def test_dose_response_draws_a_line_per_class_with_its_random_band():
    rows = [{"readout": me, "class": c, "dose": k, "change": -0.01 * k * (i + 1), "random mean": -0.01 * k,
             "random 2.5%": -0.02 * k, "random 97.5%": 0.0}
            for me in ("zero-shot", "recall@1") for i, c in enumerate(("ImgD", "TxtD")) for k in (1, 2, 4)]
    fig = plots.dose_response(pd.DataFrame(rows))
    ax = fig.axes[0]
    assert [a.get_title() for a in fig.axes] == ["zero-shot", "recall@1"] and ax.get_xscale() == "log"
    solid = [ln for ln in ax.get_lines() if ln.get_linestyle() == "-" and ln.get_label() in ("ImgD", "TxtD")]
    assert [ln.get_label() for ln in solid] == ["ImgD", "TxtD"]
    assert np.allclose(solid[1].get_ydata(), [-0.02, -0.04, -0.08])
    assert len(ax.collections) == 2                              # one band per class
    plt.close(fig)


def test_example_rows_draws_a_row_per_entry_and_says_when_a_feature_fires_on_no_image():
    images = np.zeros((3, 4, 4, 3), dtype=np.uint8)
    fig = plots.example_rows([("feature 1", images, ["a", "b", "c"]), ("feature 2", None, [])], ncols=4)
    assert [sub._suptitle.get_text() for sub in fig.subfigs] == ["feature 1", "feature 2"]
    assert sum(len(ax.images) for ax in fig.axes) == 3
    assert any(t.get_text() == "fires on no image" for ax in fig.axes for t in ax.texts)
    plt.close(fig)


def test_token_plane_puts_orthogonal_sets_on_their_axes():
    import torch

    g = torch.Generator().manual_seed(0)
    text = torch.eye(6)[0] + 0.05 * torch.randn(50, 6, generator=g)
    visual = torch.eye(6)[1] + 0.05 * torch.randn(80, 6, generator=g)
    fig = plots.token_plane(visual, text, n=40)
    ax = fig.axes[0]
    t, v = (c.get_offsets() for c in ax.collections)
    assert len(t) == 40 and len(v) == 40
    assert t[:, 0].mean() > 0.9 and abs(t[:, 1].mean()) < 0.1
    assert v[:, 1].mean() > 0.9 and abs(v[:, 0].mean()) < 0.1
    plt.close(fig)


def test_per_layer_draws_a_band_per_label_and_follow_rates_stacks_to_one():
    d = pd.DataFrame({"layer": [0, 1, 2] * 2, "quantity": ["a"] * 3 + ["b"] * 3,
                      "value": [0.1, 0.2, 0.3, 0.5, 0.5, 0.5], "low": [0.0, 0.1, 0.2, 0.4, 0.4, 0.4],
                      "high": [0.2, 0.3, 0.4, 0.6, 0.6, 0.6]})
    fig = plots.per_layer(d, ("a", "b"), ylabel="share")
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.get_lines()] == ["a", "b"] and len(ax.collections) == 2
    assert list(ax.get_xticks()) == [0, 1, 2]
    plt.close(fig)
    rows = pd.DataFrame([{"factor": f, "intervention": i, "quantity": q, "value": v, "low": v, "high": v}
                         for f in ("colour", "shape") for i in ("none", "x2")
                         for q, v in (("image", 0.5), ("text", 0.3), ("other", 0.2))])
    fig = plots.follow_rates(rows)
    tops = [p.get_y() + p.get_height() for p in fig.axes[0].patches]
    assert len(fig.axes) == 2 and max(tops) == 1.0
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["follows the image", "follows the text",
                                                                  "neither"]
    plt.close(fig)


def test_class_effects_fills_the_decided_points_and_draws_intervals():
    rows = [{"labelling": name, "class": c, "factor": f, "value": 0.1 * i, "low": 0.1 * i - 0.05,
             "high": 0.1 * i + 0.05, "verdict": "above" if (c, f) == ("CMD", "shape") else "within"}
            for name in ("mds", "partner") for i, c in enumerate(("ImgD", "TxtD", "CMD"))
            for f in ("shape", "size")]
    fig = plots.class_effects(pd.DataFrame(rows))
    assert [ax.get_title() for ax in fig.axes] == ["paper's MDS", "probe partner"]  # labels, not identifiers
    filled = [c for c in fig.axes[0].collections if len(c.get_offsets()) and len(c.get_facecolor())
              and c.get_facecolor()[0][:3].sum() < 2.9]
    assert sum(len(c.get_offsets()) for c in filled) == 1   # only CMD's shape is decided
    plt.close(fig)
