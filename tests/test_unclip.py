"""The Stable unCLIP path on a tiny randomly initialised pipeline built from configs (no download)."""
import numpy as np
import pytest
import torch


def test_an_edited_embedding_goes_through_stable_unclip(tmp_path, tiny_unclip):
    from mdsgap import world
    from mdsgap.edit import editing, unclip
    from mdsgap.features import sae

    pipe = unclip.load_pipeline(tiny_unclip(tmp_path))
    images = world.generate(world.WorldConfig(), 4, seed=0).images
    emb = unclip.image_embeds(pipe, images)
    assert emb.shape == (4, 32)
    model = sae.SparseAutoencoder(32, sae.SAEConfig(n_latents=64, activation=sae.TopK(4)))
    edited = unclip.rescale(editing.without_latents(model, emb, [0, 1, 2]), emb)
    assert torch.allclose(edited.norm(dim=1), emb.norm(dim=1), atol=1e-4)
    drawn = unclip.draw(pipe, edited, steps=2, guidance=2.0, seed=0)
    assert len(drawn) == 4 and drawn[0].size == (16, 16)
    again = unclip.draw(pipe, edited, steps=2, guidance=2.0, seed=0)
    assert np.array_equal(np.asarray(drawn[0]), np.asarray(again[0]))
    with pytest.raises(ValueError, match=r"must be \(n, 32\)"):
        unclip.draw(pipe, torch.randn(2, 16))
    labels = np.array(["ImgD"] * 10 + ["CMD"] * 10 + ["none"] * 44)
    grid, names = unclip.draw_edits(pipe, model, emb[:2], labels, steps=2, seed=0)
    assert len(grid) == 6 and names == ["nothing removed"] * 2 + ["ImgD removed"] * 2 + ["CMD removed"] * 2


def test_a_folder_that_is_no_pipeline_is_refused_with_the_fix(tmp_path):
    from mdsgap.edit import unclip

    with pytest.raises(FileNotFoundError, match="save_pretrained"):
        unclip.load_pipeline(tmp_path)
