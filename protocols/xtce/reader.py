"""XTCE document -> Spacecraft (placeholder while the writer is checked)."""
from protocols.errors import DefinitionError


class XtceError(DefinitionError):
    pass


def from_xtce(data, **kwargs):
    raise NotImplementedError
