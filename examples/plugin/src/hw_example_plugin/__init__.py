"""An example headwater plugin package (see docs/extending.md).

Nothing here is imported by headwater until a flow uses one of its plugins by name.
"""
