"""`opendot bench ...`: one module per benchmark, each with `configure(parser)` and `run(args)`.

Heavy libraries are imported inside the functions that measure, so listing the
commands never loads numpy or speech models.
"""
