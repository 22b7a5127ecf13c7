"""The methods cvmatch is compared with, each a :class:`benchmarks.protocol.Method`.

One module per method; :mod:`benchmarks.registry` names them for the scripts.
"""
