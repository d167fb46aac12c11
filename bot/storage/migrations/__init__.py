"""Schema migrations, shipped as package data: ``NNNN_slug.sql``, numbered without gaps.

Found through :func:`importlib.resources.files`, so they load from an installed wheel too.
Add a new file with the next number; never edit one that has been released.
"""
