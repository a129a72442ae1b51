"""Shipped pretrained models (ONNX fp32 + int8 with a model card each), installed as package data.

`Classifier("gtsrb")` and `edgesight demo` find them by name, so a plain `pip install edgesight`
can classify without downloading anything.
"""
