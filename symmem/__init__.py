"""symmem: exact symbolic formulas for the parameters and memory of neural networks.

>>> import symmem
>>> m = symmem.load("gpt2")          # a bundled example, a .mem file or a config.json
>>> int(m.params().total)
124439808
"""

from symmem.errors import SymmemError
from symmem.model import Model, ParamsResult, Quantity, load, parse

__all__ = ["Model", "ParamsResult", "Quantity", "SymmemError", "load", "parse"]
__version__ = "0.1.0"
