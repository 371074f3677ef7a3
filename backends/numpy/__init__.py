"""The NumPy backend plugin: `numpy` (fast, BLAS) and `numpy-exact` (Darknet's order)."""

from tdn.backends.numpy.backend import ExactNumpyBackend, NumpyBackend

from tdn.hookspecs import hookimpl


@hookimpl
def tdn_register_backends(register):
    register("numpy", NumpyBackend)
    register("numpy-exact", ExactNumpyBackend)
