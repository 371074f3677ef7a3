"""CUDA C++ sources of the CUDA backend, shipped as package data."""
