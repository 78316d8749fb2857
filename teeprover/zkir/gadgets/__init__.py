"""R1CS gadgets for the ZKIR synthesizer.

Each gadget is one function over a :class:`~teeprover.zkir.gadgets.lc.Synth`
that allocates its variables (with their values, in prove mode) and adds its
constraints (in setup mode); the same code runs in both modes, so compilation
and witness generation cannot drift.  A gadget's out-of-circuit twin (plain
integers) sits in the same module.
"""
