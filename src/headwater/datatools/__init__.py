"""``headwater.datatools``: data tools for flows (Metaflow's ``metaflow.datatools``):
the ``S3`` client, its request/result types and its errors.
"""

from ..exceptions import (HeadwaterS3AccessDenied, HeadwaterS3Exception, HeadwaterS3InsufficientDiskSpace,
                          HeadwaterS3InvalidRange, HeadwaterS3NotFound, HeadwaterS3URLException)
from .payloads import HeadwaterS3InvalidObject
from .s3 import S3
from .s3objects import RangeInfo, S3GetObject, S3Object, S3PutObject

# Metaflow's names for the same classes, so `except MetaflowS3NotFound` keeps working.
MetaflowS3Exception = HeadwaterS3Exception
MetaflowS3NotFound = HeadwaterS3NotFound
MetaflowS3AccessDenied = HeadwaterS3AccessDenied
MetaflowS3URLException = HeadwaterS3URLException
MetaflowS3InvalidRange = HeadwaterS3InvalidRange
MetaflowS3InsufficientDiskSpace = HeadwaterS3InsufficientDiskSpace
MetaflowS3InvalidObject = HeadwaterS3InvalidObject

__all__ = [
    "HeadwaterS3AccessDenied", "HeadwaterS3Exception", "HeadwaterS3InsufficientDiskSpace", "HeadwaterS3InvalidObject",
    "HeadwaterS3InvalidRange", "HeadwaterS3NotFound", "HeadwaterS3URLException", "MetaflowS3AccessDenied",
    "MetaflowS3Exception", "MetaflowS3InsufficientDiskSpace", "MetaflowS3InvalidObject", "MetaflowS3InvalidRange",
    "MetaflowS3NotFound", "MetaflowS3URLException", "RangeInfo", "S3", "S3GetObject", "S3Object", "S3PutObject",
]
