"""R1CS gadgets for the ZKIR compiler.

Every gadget comes as a pair: ``*_constraints`` allocates variables and adds
constraints to a :class:`~teeprover.zkir.gadgets.lc.ConstraintBuilder`, and
``*_witness`` pushes the values of exactly those variables, in the same order,
to a :class:`~teeprover.zkir.gadgets.lc.WitnessBuilder`.  Keeping both halves
side by side in one module is what keeps compile and witness generation in step.
"""
