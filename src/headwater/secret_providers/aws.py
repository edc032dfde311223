"""The ``aws-secrets-manager`` secrets provider (boto3, the optional extra ``aws``).

A secret whose string is a JSON object gives one variable per key (keys made
into variable names as Metaflow does: ``-``, ``.`` and ``/`` become ``_``);
otherwise, or with ``options={"json": False}``, one variable named after the
secret (or ``options["env_var_name"]``); a binary secret is base64-encoded.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from .base import SecretsError, SecretsProvider, missing_dependency

#: Settings keys: the region used when neither the ARN nor options name one, and a default role.
DEFAULT_REGION_KEY = "HEADWATER_AWS_SECRETS_MANAGER_DEFAULT_REGION"
DEFAULT_ROLE_KEY = "HEADWATER_AWS_SECRETS_MANAGER_DEFAULT_ROLE"

_ARN_REGION = re.compile(r"arn:aws:secretsmanager:([^:]+):")


def env_var_name(key: str) -> str:
    """A secret's key as an environment variable name (Metaflow's rule)."""
    return key.replace("-", "_").replace(".", "_").replace("/", "_")


class AwsSecretsManagerProvider(SecretsProvider):
    """Secrets from AWS Secrets Manager, by name or ARN."""

    TYPE = "aws-secrets-manager"
    EXTRA = "aws"

    def get_secret_as_dict(self, secret_id: str, options: dict[str, Any] | None = None,
                           role: str | None = None) -> dict[str, str]:
        from ..config import load_settings

        options = options or {}
        settings = load_settings().extra
        m = _ARN_REGION.match(secret_id)
        region = m.group(1) if m else options.get("region") or settings.get(DEFAULT_REGION_KEY)
        role = role or settings.get(DEFAULT_ROLE_KEY)
        try:
            import boto3
            import botocore.exceptions
        except ImportError as e:
            raise missing_dependency(self, e) from None
        try:
            session = boto3.session.Session(region_name=region)
            if role:
                creds = session.client("sts").assume_role(RoleArn=role, RoleSessionName="headwater-secrets")
                c = creds["Credentials"]
                session = boto3.session.Session(
                    aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"],
                    aws_session_token=c["SessionToken"], region_name=region)
            response = session.client("secretsmanager").get_secret_value(SecretId=secret_id)
        except botocore.exceptions.NoRegionError:
            raise SecretsError(
                f"No AWS region is known for secret {secret_id!r}.",
                hint=f"Set {DEFAULT_REGION_KEY}, pass options={{'region': ...}}, or use the secret's ARN.",
            ) from None
        except botocore.exceptions.ClientError as e:
            err = e.response.get("Error", {})
            raise SecretsError(
                f"AWS Secrets Manager could not read secret {secret_id!r}: "
                f"{err.get('Code', 'error')}: {err.get('Message', e)}",
                hint="Check the secret's name and region, and that your credentials (or role) may read it.",
            ) from None
        except botocore.exceptions.BotoCoreError as e:
            raise SecretsError(f"AWS Secrets Manager could not read secret {secret_id!r}: {e}") from None
        return _variables(secret_id, response, options)


def _variables(secret_id: str, response: dict[str, Any], options: dict[str, Any]) -> dict[str, str]:
    name = str(response.get("Name") or secret_id)
    out: dict[str, str] = {}

    def add(key: str, value: str) -> None:
        var = env_var_name(key)
        if var in out:
            raise SecretsError(f"Secret {secret_id!r} has two keys that both become variable {var!r}.",
                               hint="Rename one of the keys in the secret.")
        out[var] = value

    single = options.get("env_var_name") or name
    if "SecretString" in response:
        text = response["SecretString"]
        if not options.get("json", True):
            add(single, text)
            return out
        try:
            obj = json.loads(text)
        except ValueError:
            raise SecretsError(
                f"Secret {secret_id!r} is not JSON, so its keys cannot become variables.",
                hint="Store a JSON object in it, or pass options={'json': False} to get it as one variable.",
            ) from None
        if not isinstance(obj, dict):
            raise SecretsError(
                f"Secret {secret_id!r} holds a JSON {type(obj).__name__}, not an object of names to values.",
                hint="Store a JSON object in it, or pass options={'json': False} to get it as one variable.",
            )
        for key, value in obj.items():
            add(str(key), value if isinstance(value, str) else str(value))
        return out
    if "SecretBinary" in response:
        add(single, base64.b64encode(response["SecretBinary"]).decode())
        return out
    raise SecretsError(f"AWS Secrets Manager returned neither a string nor a binary value for {secret_id!r}.")
