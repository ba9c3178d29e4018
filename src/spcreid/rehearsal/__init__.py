"""The rehearsal profile's inputs: tiny dataset archives in the real layouts and stand-in weights.

The rehearsal runs the paper profile's rules unchanged on CPU. Only what cannot exist here is replaced: the
datasets (people rendered by the toy generator, renamed into the PRCC, VC-Clothes and LTCC layouts and packed
as the archives a user downloads) and the pretrained networks (randomly initialised, saved in the real
checkpoint formats).
"""
