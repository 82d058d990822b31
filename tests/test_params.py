import pytest

from mdsgap import config, experiment
from mdsgap.book import params


def test_profiles_exist_and_unknown_profile_lists_them():
    assert {"ci", "full", "tiny"} <= set(params.list_profiles())
    with pytest.raises(ValueError, match=r"Available profiles: \["):
        params.profile_blocks("fast", "01_measuring_gap")


def test_profile_merges_common_and_notebook_blocks():
    common, own = params.profile_blocks("tiny", "01_measuring_gap")
    assert common["clip_model"] == "mdsgap-tiny" and common["profile"] == "tiny" and "n_reference" in own


def test_experiment_config_rejects_wrong_types_with_the_fix():
    with pytest.raises(TypeError, match=r"ExperimentConfig.n_test must be int, got str '100'"):
        experiment.ExperimentConfig(n_test="100")
    with pytest.raises(TypeError, match="learn_temperature must be bool"):
        experiment.ExperimentConfig(learn_temperature=1)
    assert experiment.ExperimentConfig(temperature=1).temperature == 1  # an int is a fine float


def test_check_params_names_unknown_and_mistyped():
    with pytest.raises(TypeError, match="Unknown parameter"):
        params.check_params({"n_tset": 3}, {"n_test": int})
    with pytest.raises(TypeError, match="must be int"):
        params.check_params({"n_test": 3.5}, {"n_test": int})


def test_book_checks_profile_types_against_notebook_defaults():
    from mdsgap import book

    with pytest.raises(book.BuildError, match="must be int"):
        book.check_profile_types("nb", {"n_test": "many"}, {"n_test": 10})
    with pytest.raises(book.BuildError, match="unknown parameter"):
        book.check_profile_types("nb", {"n_tset": 3}, {"n_test": 10})
    book.check_profile_types("nb", {"temperature": 1}, {"temperature": 0.5})


def test_check_declared_reads_the_namespace_and_names_the_bad_one():
    ns = {"n_seeds": 3, "band": "wide"}
    assert params.check_declared(ns, {"n_seeds": int}) == {"n_seeds": 3}
    with pytest.raises(TypeError, match="'band' must be float"):
        params.check_declared(ns, {"n_seeds": int, "band": float})


def test_from_namespace_picks_only_the_fields():
    from mdsgap import features
    ex = config.from_namespace(features.ExtractorsConfig, {"sae_k": 4, "unrelated": 1})
    assert ex.sae_k == 4 and ex.sae_latents == features.ExtractorsConfig().sae_latents


def test_papermill_stays_quiet_about_parameters_a_chapter_accepts_through_a_shared_group():
    import logging

    from mdsgap.book.build import _AcceptedParameters

    quiet = _AcceptedParameters({"seed", "n_train"})
    record = lambda p: logging.LogRecord("papermill", logging.WARNING, "", 0,  # noqa: E731
                                         f"Passed unknown parameter: {p}", None, None)
    assert not quiet.filter(record("seed")) and not quiet.filter(record("n_train"))
    assert quiet.filter(record("sead"))          # a typo still warns
    assert quiet.filter(logging.LogRecord("papermill", logging.INFO, "", 0, "Input Notebook: x", None, None))
