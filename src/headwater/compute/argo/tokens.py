"""Production tokens of Argo deployments, as Metaflow handles them (internal).

A deployment carries a production token (the WorkflowTemplate's annotation).
Whoever deployed it, or anyone who presents its token (``--authorize``), may
deploy a new version, delete it, or terminate/suspend its runs; ``create``
makes a token on the first deployment (or with ``--generate-new-token``) or
takes one (``--new-token``). Tokens are remembered in the datastore, under
``argo/production-tokens/<deployment>/``, so every machine using the same
datastore can authorize (Metaflow keeps them in a file in the user's home).
Objects are write-once, so each new token is a new key; the newest one counts.
"""

from __future__ import annotations

import secrets
import string
import time
from dataclasses import dataclass

from ...exceptions import HeadwaterException
from ...store.objects import ObjectStore

TOKEN_PREFIX_DIR = "argo/production-tokens"
#: How a token is written when it names a namespace (``namespace("production:<token>")``).
NAMESPACE_PREFIX = "production:"


class IncorrectProductionToken(HeadwaterException):
    """The deployment belongs to someone else and the token given does not match its token."""

    headline = "Incorrect production token"


@dataclass(frozen=True)
class Deployment:
    """Who deployed a flow, and its production token (from the WorkflowTemplate's annotations)."""

    owner: str
    token: str


def new_token(prefix: str) -> str:
    """A fresh token for the deployment ``prefix`` (``<prefix>-<4 random letters>``)."""
    return f"{prefix}-" + "".join(secrets.choice(string.ascii_lowercase) for _ in range(4))


def strip_namespace(token: str) -> str:
    """``production:abc`` -> ``abc`` (a token may be given as its namespace)."""
    return token[len(NAMESPACE_PREFIX):] if token.startswith(NAMESPACE_PREFIX) else token


def _dir(prefix: str) -> str:
    return f"{TOKEN_PREFIX_DIR}/{prefix}"


def load_token(objects: ObjectStore, prefix: str) -> str | None:
    """The newest token stored for ``prefix`` in the datastore's object store, if any."""
    names = objects.list_dir(_dir(prefix))
    if not names:
        return None
    return objects.get(f"{_dir(prefix)}/{names[-1]}").decode()


def store_token(objects: ObjectStore, prefix: str, token: str) -> None:
    """Remember ``token`` as the newest one of ``prefix`` (no-op when it already is)."""
    if load_token(objects, prefix) == token:
        return
    objects.put(f"{_dir(prefix)}/{time.time_ns():020d}", token.encode())


def check_authorized(deployment: Deployment | None, *, user: str, authorize: str | None, stored: str | None,
                     what: str, command: str) -> None:
    """Raise ``IncorrectProductionToken`` unless ``user`` may change ``deployment``.

    The owner always may; anyone else needs the deployment's token, given with ``--authorize`` or
    remembered in the datastore (``stored``).
    """
    if deployment is None:
        return
    given = strip_namespace(authorize) if authorize else stored
    if deployment.owner == user or given == deployment.token:
        return
    raise IncorrectProductionToken(
        f"There is an existing version of {what} on Argo Workflows which was deployed by the user "
        f"{deployment.owner!r}; you ({user!r}) need the production token they used.",
        hint=f"Ask them for the token, then call `{command} --authorize MY_TOKEN`.")
