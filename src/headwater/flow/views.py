"""``headwater.view(self, "name")``: a stored artifact read only as far as it is indexed (flow layer).

Beyond Metaflow: in a step, ``self.big`` loads the whole value (lazily paged locally,
downloaded whole from S3); ``headwater.view(self, "big")[:1000]`` fetches and verifies
only the chunks those rows live in (see ``headwater.store.views``). It works on ``self``
and on a join's inputs (``headwater.view(inputs[3], "big")``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..exceptions import DataCorruptionError, DataMissingError, HeadwaterException

if TYPE_CHECKING:
    from ..store.views import ArtifactView
    from .spec import FlowSpec


class ArtifactNotFound(HeadwaterException, AttributeError):
    """``headwater.view`` was asked for an artifact the step does not have."""

    headline = "No such artifact"


def view(flow: FlowSpec, name: str) -> ArtifactView:
    """A view of artifact ``name`` of ``flow`` (``self`` in a step, or one of a join's inputs).

    Parameters
    ----------
    flow : FlowSpec
        The flow object whose artifact to view.
    name : str
        The artifact's name.

    Returns
    -------
    ArtifactView
        Index it like the array (``v[:1000]``, ``v[3, 2:5]``) to read only those bytes;
        ``v.load()`` or ``numpy.asarray(v)`` reads it whole. A value set in this step, or
        already loaded, is viewed in memory; an artifact that is not a large numpy array
        loads whole on first use.

    Raises
    ------
    ArtifactNotFound
        ``flow`` has no artifact ``name``.

    Examples
    --------
    >>> first_rows = headwater.view(self, "big")[:1000]  # doctest: +SKIP
    """
    from ..store.views import ArtifactView

    d = flow.__dict__
    if name in d and not name.startswith("_hw_"):
        return ArtifactView(value=d[name])
    refs = d.get("_hw_refs") or {}
    viewer = d.get("_hw_viewer")
    if name not in refs or viewer is None:
        raise ArtifactNotFound(
            f"Step {d.get('_hw_step_name')!r} has no artifact {name!r} to view.",
            hint="headwater.view(self, name) views an artifact the step inherited or set; "
            + ("a join sees its inputs' artifacts through inputs: headwater.view(inputs[i], name)."
               if d.get("_hw_is_join") else "check the name."),
        )
    try:
        return viewer(refs[name])  # type: ignore[no-any-return]
    except (DataMissingError, DataCorruptionError) as e:
        raise type(e)(f"Cannot view artifact {name!r} (step {d.get('_hw_step_name')!r}): {e.message}",
                      hint=e.hint) from None
