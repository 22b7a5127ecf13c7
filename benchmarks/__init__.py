"""Benchmarks that compare cvmatch with other ways of recognising a cover photo."""
