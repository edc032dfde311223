"""A user module the Ray test flows import (it must travel in the code package)."""


def greeting(who: str) -> str:
    return f"hello from {who}"
