"""S3 (and S3-compatible) storage (internal): the connection to a bucket shared by the
S3 datastore and the ``headwater.S3`` data tools. Imported only when an ``s3://`` root
or the S3 tools are used; obstore is an optional dependency (``headwater[s3]``).
"""
