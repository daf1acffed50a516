"""The shipped default model (``default/``) and its model card (``MODEL_CARD.md``)."""
