"""docs/argo-examples/ holds what `argo-workflows create --only-json` prints for the examples
today (regenerate with `python tests/compute/argo_examples.py --write`)."""

from __future__ import annotations

import pytest

from compute.argo_examples import BUCKET, DOCS, EXAMPLES, compile_example, without_package_key
from s3server import S3Server


@pytest.mark.parametrize("example", EXAMPLES)
def test_docs_show_todays_output(example: str, s3_server: S3Server) -> None:
    try:
        s3_server.boto3().create_bucket(Bucket=BUCKET)
    except Exception as e:  # made by an earlier case
        assert "BucketAlready" in type(e).__name__ or "BucketAlready" in str(e), e
    doc = DOCS / example.replace(".py", ".json")
    assert doc.exists(), f"{doc} is missing: run python tests/compute/argo_examples.py --write"
    fresh = compile_example(example, s3_server.env())
    assert without_package_key(doc.read_text()) == without_package_key(fresh), \
        f"{doc.name} is stale: run python tests/compute/argo_examples.py --write"
