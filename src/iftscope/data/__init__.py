"""Multiple-choice data: loaders with precise validation, a checker, and the micro-world."""

from iftscope.data.loaders import load_questions
from iftscope.data.problems import DataValidationError, Problem

__all__ = ["DataValidationError", "Problem", "load_questions"]
