"""What a refused rerun says changed (``xvertfast.resume.settings_changes``)."""

from __future__ import annotations

from xvertfast.resume import settings_changes


def test_plain_settings_show_old_and_new_values():
    assert settings_changes({"mode": "spine", "tile": 512}, {"mode": "full", "tile": 512}) == "mode 'spine' -> 'full'"
    assert settings_changes(None, {"mode": "full"}) == "the recorded settings are unreadable"


def test_methods_show_as_the_specs_typed_not_as_dicts():
    # evaluate's refusal printed "methods [{'spec': 'identity'}, ...] -> [...]"
    before = {"methods": [{"spec": "identity"}, {"spec": "clahe"}], "metrics": ["entropy"]}
    now = {"methods": [{"spec": "identity"}, {"spec": "clahe"}, {"spec": "farbman"}], "metrics": ["entropy"]}
    assert settings_changes(before, now) == "methods identity, clahe -> identity, clahe, farbman"
    # the same methods, one of them changed: which, and what in it
    retrained = {"methods": [{"spec": "identity"}, {"spec": "xvertnet", "model": "abc"}]}
    again = {"methods": [{"spec": "identity"}, {"spec": "xvertnet", "model": "def"}]}
    assert settings_changes(retrained, again).startswith("methods xvertnet: another model (")
    assert settings_changes(retrained, again).endswith("model 'abc' -> 'def'")


def test_a_model_digest_is_said_in_words_and_short():
    # enhance's refusal after a retrain printed two 64-digit fingerprints named "model", nothing more
    before, now = {"model": "3f" * 32, "mode": "spine"}, {"model": "9c" * 32, "mode": "spine"}
    said = settings_changes(before, now)
    assert said.startswith("another model (") and "weights" in said
    assert said.endswith(f"model '{'3f' * 8}' -> '{'9c' * 8}'")  # 16 digits each, as an output's description gives it
