"""The error of evaluation inputs that cannot work together."""

__all__ = ['EvalError']


class EvalError(ValueError):
    """Evaluation inputs that cannot work together; the message names the option or file."""
