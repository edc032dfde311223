"""Production tokens of Argo deployments, as Metaflow handles them (internal).

A deployment carries a production token (the WorkflowTemplate's annotation). Whoever
deployed it, or anyone who presents its token, may deploy a new version, delete it, or
terminate/suspend its runs; ``create`` makes a token on the first deployment (or with
``--generate-new-token``) or takes one (``--new-token``).

A token is presented with ``--authorize TOKEN``, or remembered: every token a user
deploys with or authorizes with is kept in that user's own home,
``$HEADWATER_HOME/tokens/<deployment>.json`` (Metaflow keeps it under
``$METAFLOW_HOME``). Nothing shared holds it, so another user (another home) has to be
given the token once.
"""

from __future__ import annotations

import json
import os
import secrets
import string
from dataclasses import dataclass

from ...exceptions import HeadwaterException

#: The folder of ``HEADWATER_HOME`` that keeps the user's production tokens, one file per deployment.
TOKENS_DIR = "tokens"
#: How a token is written when it names a namespace (``namespace("production:<token>")``).
NAMESPACE_PREFIX = "production:"
_TOKEN_KEY = "production_token"


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


def token_path(home: str, prefix: str) -> str:
    """The file that remembers the user's token of the deployment ``prefix``."""
    return os.path.join(os.path.expanduser(home), TOKENS_DIR, f"{prefix}.json")


def load_token(home: str, prefix: str) -> str | None:
    """The token of ``prefix`` remembered in the user's ``home``, if any (an unreadable file is none)."""
    try:
        with open(token_path(home, prefix), encoding="utf-8") as f:
            token = json.load(f).get(_TOKEN_KEY)
    except (OSError, ValueError, AttributeError):
        return None
    return token if isinstance(token, str) else None


def store_token(home: str, prefix: str, token: str) -> None:
    """Remember ``token`` for ``prefix`` in the user's ``home`` (written whole, then renamed into place)."""
    path = token_path(home, prefix)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({_TOKEN_KEY: token}, f)
    os.replace(tmp, path)


def check_authorized(deployment: Deployment | None, *, user: str, authorize: str | None, stored: str | None,
                     what: str, command: str) -> None:
    """Raise ``IncorrectProductionToken`` unless ``user`` may change ``deployment``.

    The owner always may; anyone else needs the token recorded on the deployment, given with
    ``--authorize`` or remembered in their own home (``stored``, see ``load_token``).

    Parameters
    ----------
    deployment : Deployment or None
        Owner and token recorded on the deployed template (or run); None: nothing deployed yet.
    user : str
        Who asks.
    authorize : str, optional
        ``--authorize``: a token, or its namespace ``production:<token>``.
    stored : str, optional
        The token remembered in the user's home.
    what : str
        The deployment as the message names it.
    command : str
        The command to run again with ``--authorize`` (the hint names it).
    """
    if deployment is None:
        return
    given = strip_namespace(authorize) if authorize else stored
    if deployment.owner == user or given == deployment.token:
        return
    raise IncorrectProductionToken(
        f"There is an existing version of {what} on Argo Workflows which was deployed by the user "
        f"*{deployment.owner}*. To change it, you need to use the same production token that they used.",
        hint=f"Please reach out to them to get the token. Once you have it, call this command:\n"
             f"    {command} --authorize MY_TOKEN\n"
             "Try again with the correct production token.")
