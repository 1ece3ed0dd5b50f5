"""``crnn label``: a local web page to label a folder of crops fast, with the model's reading pre-filled.

- :mod:`crnn.label.store`: what is written into OUT (label-named copies or labels.tsv), atomically;
- :mod:`crnn.label.session`: the queue (least confident first), checks, progress, undo;
- :mod:`crnn.label.retrain`: background fine-tunes on the labels so far;
- :mod:`crnn.label.app` / :mod:`crnn.label.page`: the FastAPI app and its page; :mod:`crnn.label.cli`: the command.

>>> from crnn.label.store import LabelStore                      # doctest: +SKIP
>>> from crnn.label.session import LabelSession                  # doctest: +SKIP
>>> s = LabelSession(LabelStore("crops/", "labelled/"), Recognizer.load("builtin:en"))  # doctest: +SKIP
>>> s.submit(s.current(), "HELLO")                               # doctest: +SKIP
"""
