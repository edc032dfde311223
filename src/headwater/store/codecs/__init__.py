"""Typed artifact codecs (storage layer, internal): fast, zero-copy formats for the
values of a few well-known types, chosen by type inside the pickle stream.

``registry`` maps a type to its codec and rebuilds values on load; one module per
library holds that library's codec and is imported only when a value of its type
is saved or a blob that needs it is loaded.
"""
