"""A local stand-in for Amazon (LWA, Feeds API 2021-06-30, presigned S3) for demos and tests."""

from crossship.sandbox.server import SandboxOptions, SandboxServer

__all__ = ["SandboxOptions", "SandboxServer"]
