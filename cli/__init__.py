"""The ``kdrec`` command line: the composition root that wires settings into every layer."""
