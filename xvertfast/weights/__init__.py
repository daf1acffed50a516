"""The shipped default model (``default/``) and its model card (``MODEL_CARD.md``)."""

#: No Python names: the package holds files (see xvertfast.model.DEFAULT_MODEL_DIR).
__all__: list[str] = []
