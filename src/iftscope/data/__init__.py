"""Multiple-choice data: loaders with precise validation and a checker."""

from iftscope.data.loaders import load_questions
from iftscope.data.problems import DataValidationError, Problem

__all__ = ["DataValidationError", "Problem", "load_questions"]
