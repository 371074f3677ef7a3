"""Interpret mode of the CUDA backend: kernels/*.cu compiled for the CPU and run under an
emulation of CUDA's execution model (execution.h, ptx.h), for testing without a GPU."""
