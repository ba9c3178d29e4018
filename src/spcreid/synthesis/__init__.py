"""Clothing-change synthesis: backends, the precomputed cache, and ``spcreid synthesize``.

* ``base``          the Synthesizer interface, input checks, the backend registry
* ``parsing_swap``  built-in CPU backend (``parsing-swap``)
* ``pise``          the paper's PISE backend, run in its container (``pise``)
* ``donors``        deterministic donor choice
* ``precompute``    fills a cache folder for one manifest split (resumable)
* ``cache``         ``SynthesisCache(folder).copies(source)``, what training reads
* ``preview``       contact sheet of sources and their copies

Nothing is imported here, so ``spcreid --help`` stays fast; import the submodules directly.
"""
