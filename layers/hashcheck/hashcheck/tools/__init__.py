"""For people, not for the Lambda functions: the `hashcheck` command line (`cli`), the demo (`demo`)
with its generated pictures (`samples`), the stack deployed into an in-process moto (`sandbox`), and a
terminal progress bar (`progress`). Nothing else in the package imports these; the handlers never do."""

__all__ = ["cli", "demo", "progress", "samples", "sandbox"]
