"""Human parsing of real datasets: an 8-class map (spcreid.data.parsing_labels) for every train image.

``schp`` runs the Self-Correction Human Parsing network (LIP, 20 classes) from its pinned source tree,
``standin`` is a tiny network with SCHP's interface for CPU tests and rehearsals, and ``run`` writes the
maps and the manifest that synthesis reads. docs/PARSING.md explains the choice and the label mapping.
"""
