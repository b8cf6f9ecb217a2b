"""Deployment of candidates to TFLite Micro: int8 conversion, operator order, memory plans,
measurement with the TFLM interpreter, firmware export and a latency model.

Modules import TensorFlow only inside the functions that convert models, so the
measurement and flatbuffer tools load quickly. `utils` re-exports the main entry points.
"""
