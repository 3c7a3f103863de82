"""A tiny module the end-to-end test types into."""


def greet(name: str) -> str:
    return f"Hello, {name}!"


