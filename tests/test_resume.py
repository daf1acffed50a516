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
    assert settings_changes(retrained, again) == "methods xvertnet: model 'abc' -> 'def'"
