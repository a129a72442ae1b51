"""Shipped sign locators (where signs are in a road scene), installed as package data.

Kept apart from `models/`: a locator file is not a classifier and does not follow the model-file
contract (no classes, a grid output); its own metadata is described in runtime/learned_locate.py.
`--locator sign-locator` finds it by name.
"""
