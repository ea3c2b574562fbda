"""Study: a recipe runs every stage into one run folder and reports."""
